package asterix

// uapField is one FRN of a user application profile: the item, how long
// it is, and whether a Record keeps its value.
type uapField struct {
	item Item
	f    format
	kept bool
}

// uap is a category's standard user application profile, FRN 1 first.
type uap []uapField

func field(cat, num int, f format) uapField { return uapField{item: item(cat, num), f: f} }

var spareFRN = uapField{f: spare}

// Items decoded into a Record (the others are skipped by their length).
const (
	i021SourceID        Item = 21010
	i021Descriptor      Item = 21040
	i021TrackNumber     Item = 21161
	i021TimePosition    Item = 21071
	i021Position        Item = 21130
	i021PositionHighRes Item = 21131
	i021Address         Item = 21080
	i021TimeReception   Item = 21073
	i021GeometricHeight Item = 21140
	i021Mode3A          Item = 21070
	i021FlightLevel     Item = 21145
	i021BaroVertRate    Item = 21155
	i021GeoVertRate     Item = 21157
	i021GroundVector    Item = 21160
	i021TimeTransmit    Item = 21077
	i021Identification  Item = 21170

	i034SourceID    Item = 34010
	i034MessageType Item = 34000
	i034TimeOfDay   Item = 34030

	i048SourceID       Item = 48010
	i048TimeOfDay      Item = 48140
	i048Polar          Item = 48040
	i048Mode3A         Item = 48070
	i048FlightLevel    Item = 48090
	i048Address        Item = 48220
	i048Identification Item = 48240
	i048TrackNumber    Item = 48161
	i048PolarVelocity  Item = 48200
	i048Capability     Item = 48230

	i062SourceID       Item = 62010
	i062TimeOfTrack    Item = 62070
	i062Position       Item = 62105
	i062Velocity       Item = 62185
	i062Mode3A         Item = 62060
	i062Identification Item = 62245
	i062DerivedData    Item = 62380
	i062TrackNumber    Item = 62040
	i062TrackStatus    Item = 62080
	i062MeasuredFL     Item = 62136
	i062GeometricAlt   Item = 62130
	i062BarometricAlt  Item = 62135
	i062VerticalRate   Item = 62220
	i062FlightPlan     Item = 62390

	i065SourceID    Item = 65010
	i065MessageType Item = 65000
	i065TimeOfDay   Item = 65030
)

// keptItems are the items Record.set reads.
var keptItems = map[Item]bool{
	i021SourceID: true, i021Descriptor: true, i021TrackNumber: true, i021TimePosition: true,
	i021Position: true, i021PositionHighRes: true, i021Address: true, i021TimeReception: true,
	i021GeometricHeight: true, i021Mode3A: true, i021FlightLevel: true, i021BaroVertRate: true,
	i021GeoVertRate: true, i021GroundVector: true, i021TimeTransmit: true, i021Identification: true,
	i034SourceID: true, i034MessageType: true, i034TimeOfDay: true,
	i048SourceID: true, i048TimeOfDay: true, i048Polar: true, i048Mode3A: true, i048FlightLevel: true,
	i048Address: true, i048Identification: true, i048TrackNumber: true, i048PolarVelocity: true,
	i048Capability: true,
	i062SourceID:   true, i062TimeOfTrack: true, i062Position: true, i062Velocity: true, i062Mode3A: true,
	i062Identification: true, i062DerivedData: true, i062TrackNumber: true, i062TrackStatus: true,
	i062MeasuredFL: true, i062GeometricAlt: true, i062BarometricAlt: true, i062VerticalRate: true,
	i062FlightPlan: true,
	i065SourceID:   true, i065MessageType: true, i065TimeOfDay: true,
}

func init() {
	for _, u := range []uap{uap021, uap034, uap048, uap062, uap065} {
		for i := range u {
			u[i].kept = keptItems[u[i].item]
		}
	}
}

// uap062 is CAT062 edition 1.18, section 5.3 (the UAP of editions 1.12 to
// 1.20).
var uap062 = uap{
	field(62, 10, fixed(2)), // Data Source Identifier
	spareFRN,
	field(62, 15, fixed(1)),  // Service Identification
	field(62, 70, fixed(3)),  // Time Of Track Information
	field(62, 105, fixed(8)), // Calculated Position In WGS-84 Co-ordinates
	field(62, 100, fixed(6)), // Calculated Track Position (Cartesian)
	field(62, 185, fixed(4)), // Calculated Track Velocity (Cartesian)
	field(62, 210, fixed(2)), // Calculated Acceleration (Cartesian)
	field(62, 60, fixed(2)),  // Track Mode 3/A Code
	field(62, 245, fixed(7)), // Target Identification
	field(62, 380, i062AircraftDerivedData),
	field(62, 40, fixed(2)),       // Track Number
	field(62, 80, extended(1, 1)), // Track Status
	field(62, 290, compound( // System Track Update Ages
		fixed(1), fixed(1), fixed(1), fixed(1), // TRK, PSR, SSR, MDS
		fixed(2),                                         // ADS (ADS-C age)
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), // ES, VDL, UAT, LOP, MLT
	)),
	field(62, 200, fixed(1)), // Mode of Movement
	field(62, 295, compound( // Track Data Ages: 31 subfields of one octet
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
		fixed(1), fixed(1), fixed(1),
	)),
	field(62, 136, fixed(2)), // Measured Flight Level
	field(62, 130, fixed(2)), // Calculated Track Geometric Altitude
	field(62, 135, fixed(2)), // Calculated Track Barometric Altitude
	field(62, 220, fixed(2)), // Calculated Rate Of Climb/Descent
	field(62, 390, i062FlightPlanData),
	field(62, 270, extended(1, 1)), // Target Size & Orientation
	field(62, 300, fixed(1)),       // Vehicle Fleet Identification
	field(62, 110, compound( // Mode 5 Data reports & Extended Mode 1 Code
		fixed(1), fixed(4), fixed(6), fixed(2), fixed(2), fixed(1), fixed(1), // SUM PMN POS GA EM1 TOS XP
	)),
	field(62, 120, fixed(2)),       // Track Mode 2 Code
	field(62, 510, extended(3, 3)), // Composed Track Number
	field(62, 500, compound( // Estimated Accuracies
		fixed(4), fixed(2), fixed(4), fixed(1), fixed(1), fixed(2), fixed(2), fixed(1), // APC COV APW AGA ABA ATV AA ARC
	)),
	field(62, 340, compound( // Measured Information
		fixed(2), fixed(4), fixed(2), fixed(2), fixed(2), fixed(1), // SID POS HEIGHT MDC MDA TYP
	)),
	spareFRN, spareFRN, spareFRN, spareFRN, spareFRN,
	field(62, reExpansion, explicit()),
	field(62, specialPurpose, explicit()),
}

// i062AircraftDerivedData is I062/380 (edition 1.18; the 28 subfields are
// the same from edition 1.12 on).
var i062AircraftDerivedData = compound(
	fixed(3),       // 1 ADR target address
	fixed(6),       // 2 ID target identification
	fixed(2),       // 3 MHG magnetic heading
	fixed(2),       // 4 IAS indicated airspeed / Mach
	fixed(2),       // 5 TAS true airspeed
	fixed(2),       // 6 SAL selected altitude
	fixed(2),       // 7 FSS final state selected altitude
	extended(1, 1), // 8 TIS trajectory intent status
	repetitive(15), // 9 TID trajectory intent data
	fixed(2),       // 10 COM communications/ACAS capability and flight status
	fixed(2),       // 11 SAB status reported by ADS-B
	fixed(7),       // 12 ACS ACAS resolution advisory report
	fixed(2),       // 13 BVR barometric vertical rate
	fixed(2),       // 14 GVR geometric vertical rate
	fixed(2),       // 15 RAN roll angle
	fixed(2),       // 16 TAR track angle rate
	fixed(2),       // 17 TAN track angle
	fixed(2),       // 18 GS ground speed
	fixed(1),       // 19 VUN velocity uncertainty
	fixed(8),       // 20 MET meteorological data
	fixed(1),       // 21 EMC emitter category
	fixed(6),       // 22 POS position
	fixed(2),       // 23 GAL geometric altitude
	fixed(1),       // 24 PUN position uncertainty
	repetitive(8),  // 25 MB Mode S MB data
	fixed(2),       // 26 IAR indicated airspeed
	fixed(2),       // 27 MAC Mach number
	fixed(2),       // 28 BPS barometric pressure setting
)

// i062FlightPlanData is I062/390 (edition 1.18).
var i062FlightPlanData = compound(
	fixed(2),      // 1 TAG FPPS identification tag
	fixed(7),      // 2 CSN callsign (ASCII)
	fixed(4),      // 3 IFI IFPS flight id
	fixed(1),      // 4 FCT flight category
	fixed(4),      // 5 TAC type of aircraft
	fixed(1),      // 6 WTC wake turbulence category
	fixed(4),      // 7 DEP departure airport
	fixed(4),      // 8 DST destination airport
	fixed(3),      // 9 RDS runway designation
	fixed(2),      // 10 CFL current cleared flight level
	fixed(2),      // 11 CTL current control position
	repetitive(4), // 12 TOD time of departure / arrival
	fixed(6),      // 13 AST aircraft stand
	fixed(1),      // 14 STS stand status
	fixed(7),      // 15 STD standard instrument departure
	fixed(7),      // 16 STA standard instrument arrival
	fixed(2),      // 17 PEM pre-emergency Mode 3/A
	fixed(7),      // 18 PEC pre-emergency callsign
)

// uap021 is CAT021 editions 2.1 to 2.6, section 5.3.
var uap021 = uap{
	field(21, 10, fixed(2)),       // Data Source Identification
	field(21, 40, extended(1, 1)), // Target Report Descriptor
	field(21, 161, fixed(2)),      // Track Number
	field(21, 15, fixed(1)),       // Service Identification
	field(21, 71, fixed(3)),       // Time of Applicability for Position
	field(21, 130, fixed(6)),      // Position in WGS-84 co-ordinates
	field(21, 131, fixed(8)),      // Position in WGS-84 co-ordinates, high resolution
	field(21, 72, fixed(3)),       // Time of Applicability for Velocity
	field(21, 150, fixed(2)),      // Air Speed
	field(21, 151, fixed(2)),      // True Air Speed
	field(21, 80, fixed(3)),       // Target Address
	field(21, 73, fixed(3)),       // Time of Message Reception for Position
	field(21, 74, fixed(4)),       // Time of Message Reception of Position, high precision
	field(21, 75, fixed(3)),       // Time of Message Reception for Velocity
	field(21, 76, fixed(4)),       // Time of Message Reception of Velocity, high precision
	field(21, 140, fixed(2)),      // Geometric Height
	field(21, 90, extended(1, 1)), // Quality Indicators
	field(21, 210, fixed(1)),      // MOPS Version
	field(21, 70, fixed(2)),       // Mode 3/A Code
	field(21, 230, fixed(2)),      // Roll Angle
	field(21, 145, fixed(2)),      // Flight Level
	field(21, 152, fixed(2)),      // Magnetic Heading
	field(21, 200, fixed(1)),      // Target Status
	field(21, 155, fixed(2)),      // Barometric Vertical Rate
	field(21, 157, fixed(2)),      // Geometric Vertical Rate
	field(21, 160, fixed(4)),      // Airborne Ground Vector
	field(21, 165, fixed(2)),      // Track Angle Rate
	field(21, 77, fixed(3)),       // Time of ASTERIX Report Transmission
	field(21, 170, fixed(6)),      // Target Identification
	field(21, 20, fixed(1)),       // Emitter Category
	field(21, 220, compound(fixed(2), fixed(2), fixed(2), fixed(1))), // Met Information: WS WD TMP TRB
	field(21, 146, fixed(2)),                                 // Selected Altitude
	field(21, 148, fixed(2)),                                 // Final State Selected Altitude
	field(21, 110, compound(extended(1, 1), repetitive(15))), // Trajectory Intent: TIS TID
	field(21, 16, fixed(1)),                                  // Service Management
	field(21, 8, fixed(1)),                                   // Aircraft Operational Status
	field(21, 271, extended(1, 1)),                           // Surface Capabilities and Characteristics
	field(21, 132, fixed(1)),                                 // Message Amplitude
	field(21, 250, repetitive(8)),                            // Mode S MB Data
	field(21, 260, fixed(7)),                                 // ACAS Resolution Advisory Report
	field(21, 400, fixed(1)),                                 // Receiver ID
	field(21, 295, compound( // Data Ages: 23 subfields of one octet
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
		fixed(1), fixed(1),
	)),
	spareFRN, spareFRN, spareFRN, spareFRN, spareFRN,
	field(21, reExpansion, explicit()),
	field(21, specialPurpose, explicit()),
}

// uap048 is CAT048 edition 1.31, section 5.3 (unchanged since 1.15).
var uap048 = uap{
	field(48, 10, fixed(2)),       // Data Source Identifier
	field(48, 140, fixed(3)),      // Time-of-Day
	field(48, 20, extended(1, 1)), // Target Report Descriptor
	field(48, 40, fixed(4)),       // Measured Position in Slant Polar Coordinates
	field(48, 70, fixed(2)),       // Mode-3/A Code in Octal Representation
	field(48, 90, fixed(2)),       // Flight Level in Binary Representation
	field(48, 130, compound( // Radar Plot Characteristics: SRL SRR SAM PRL PAM RPD APD
		fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1), fixed(1),
	)),
	field(48, 220, fixed(3)),                          // Aircraft Address
	field(48, 240, fixed(6)),                          // Aircraft Identification
	field(48, 250, repetitive(8)),                     // BDS Register Data
	field(48, 161, fixed(2)),                          // Track Number
	field(48, 42, fixed(4)),                           // Calculated Position in Cartesian Coordinates
	field(48, 200, fixed(4)),                          // Calculated Track Velocity in Polar Representation
	field(48, 170, extended(1, 1)),                    // Track Status
	field(48, 210, fixed(4)),                          // Track Quality
	field(48, 30, extended(1, 1)),                     // Warning/Error Conditions
	field(48, 80, fixed(2)),                           // Mode-3/A Code Confidence Indicator
	field(48, 100, fixed(4)),                          // Mode-C Code and Confidence Indicator
	field(48, 110, fixed(2)),                          // Height Measured by 3D Radar
	field(48, 120, compound(fixed(2), repetitive(6))), // Radial Doppler Speed: CAL RDS
	field(48, 230, fixed(2)),                          // Communications / ACAS Capability and Flight Status
	field(48, 260, fixed(7)),                          // ACAS Resolution Advisory Report
	field(48, 55, fixed(1)),                           // Mode-1 Code in Octal Representation
	field(48, 50, fixed(2)),                           // Mode-2 Code in Octal Representation
	field(48, 65, fixed(1)),                           // Mode-1 Code Confidence Indicator
	field(48, 60, fixed(2)),                           // Mode-2 Code Confidence Indicator
	field(48, specialPurpose, explicit()),
	field(48, reExpansion, explicit()),
}

// uap034 is CAT034 edition 1.29, section 5.3.
var uap034 = uap{
	field(34, 10, fixed(2)), // Data Source Identifier
	field(34, 0, fixed(1)),  // Message Type
	field(34, 30, fixed(3)), // Time-of-Day
	field(34, 20, fixed(1)), // Sector Number
	field(34, 41, fixed(2)), // Antenna Rotation Period
	field(34, 50, compound(fixed(1), spare, spare, fixed(1), fixed(1), fixed(2))), // System Configuration and Status: COM - - PSR SSR MDS
	field(34, 60, compound(fixed(1), spare, spare, fixed(1), fixed(1), fixed(1))), // System Processing Mode: COM - - PSR SSR MDS
	field(34, 70, repetitive(2)), // Message Count Values
	field(34, 100, fixed(8)),     // Generic Polar Window
	field(34, 110, fixed(1)),     // Data Filter
	field(34, 120, fixed(8)),     // 3D-Position of Data Source
	field(34, 90, fixed(2)),      // Collimation Error
	field(34, reExpansion, explicit()),
	field(34, specialPurpose, explicit()),
}

// uap065 is CAT065 edition 1.6, section 5.3 (as in 1.3).
var uap065 = uap{
	field(65, 10, fixed(2)), // Data Source Identifier
	field(65, 0, fixed(1)),  // Message Type
	field(65, 15, fixed(1)), // Service Identification
	field(65, 30, fixed(3)), // Time of Message
	field(65, 20, fixed(1)), // Batch Number
	field(65, 40, fixed(1)), // SDPS Configuration and Status
	field(65, 50, fixed(1)), // Service Status Report
	spareFRN, spareFRN, spareFRN, spareFRN, spareFRN,
	field(65, reExpansion, explicit()),
	field(65, specialPurpose, explicit()),
}
