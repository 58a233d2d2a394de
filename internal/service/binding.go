package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/volume"
)

// BindStatement is the audit.Binder of the records this service writes: it
// checks that the party's records a signed statement covers are those its
// request (method and target URI, and the body where the viewer may read
// it) produces, and say what it asked. Each write route produces records
// of known kinds:
//
//	POST /v1/volumes                          one volume_created, with the body's volume
//	PUT  /v1/volumes/{id}                     one volume_updated of {id}, with the body's volume
//	POST /v1/volumes/{id}/state               one volume_state of {id}, in the body's state
//	POST /v1/hotline/messages                 one message_posted of the body's to, kind, thread, ref, text
//	POST /v1/hotline/messages/{id}/ack        at most one message_acked of {id}, with the body's reply
//	POST /v1/rules/{version}/accept|reject    at most one rules_accepted|rules_rejected of {version},
//	                                          an acceptance with the body's rules_sha256, and the
//	                                          acknowledgments of the proposal's items
//	POST /v1/parties/{name}/keys              one party_key_added of {name}, with the body's key
//	POST /v1/parties/{name}/keys/{keyid}/retire  one party_key_retired of {name} and {keyid}
//
// any other signed request (a position batch) none. The service's own
// records in the same transaction (hotline items, rules in force) are not
// the party's and are not checked here. What the viewer may not read (a
// hidden record, a sealed body or detail) is not compared.
func BindStatement(b audit.Bound) error {
	u, err := url.Parse(b.Statement.TargetURI)
	if err != nil {
		return fmt.Errorf("target URI: %v", err)
	}
	route, args := matchRoute(b.Statement.Method, u.EscapedPath())
	want, ok := bindings[route]
	if !ok {
		if len(b.Records) > 0 {
			return fmt.Errorf("a request %s %s writes no record of the party, but it covers record %d (%s)", b.Statement.Method, u.Path, b.Records[0].Seq, b.Records[0].Kind)
		}
		return nil
	}
	mine := 0
	for _, r := range b.Records {
		if r.Kind != want.kind && !slices.Contains(want.also, r.Kind) {
			return fmt.Errorf("record %d is a %s, which %s does not write", r.Seq, r.Kind, route)
		}
		if r.Kind == want.kind {
			mine++
		}
		if err := want.check(r, args, b.Body); err != nil {
			return fmt.Errorf("record %d (%s): %v", r.Seq, r.Kind, err)
		}
	}
	switch {
	case mine > 1:
		return fmt.Errorf("%d records %s, where %s writes one", mine, want.kind, route)
	case mine == 0 && !want.optional && b.Hidden == 0:
		return fmt.Errorf("no record %s, which %s writes", want.kind, route)
	}
	return nil
}

// binding is what one route writes of the party's: its one record of kind
// (optional: none when the request changed nothing), other kinds it may
// write besides, and the check of each record against the path's
// arguments and the body (nil when the viewer may not read it).
type binding struct {
	kind     string
	also     []string
	optional bool
	check    func(r audit.Record, args []string, body []byte) error
}

var bindings = map[string]binding{
	"POST /v1/volumes":                            {kind: "volume_created", check: bindVolume},
	"PUT /v1/volumes/{id}":                        {kind: "volume_updated", check: bindVolume},
	"POST /v1/volumes/{id}/state":                 {kind: "volume_state", check: bindVolumeState},
	"POST /v1/hotline/messages":                   {kind: "message_posted", check: bindMessage},
	"POST /v1/hotline/messages/{id}/ack":          {kind: "message_acked", optional: true, check: bindAck},
	"POST /v1/rules/{version}/accept":             {kind: "rules_accepted", also: []string{"message_acked"}, optional: true, check: bindRulesAnswer(true)},
	"POST /v1/rules/{version}/reject":             {kind: "rules_rejected", also: []string{"message_acked"}, optional: true, check: bindRulesAnswer(false)},
	"POST /v1/parties/{name}/keys":                {kind: "party_key_added", check: bindKeyAdded},
	"POST /v1/parties/{name}/keys/{keyid}/retire": {kind: "party_key_retired", check: bindKeyRetired},
}

// matchRoute finds the route of bindings a method and escaped path take,
// and the path's arguments (unescaped) in order.
func matchRoute(method, path string) (string, []string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for route := range bindings {
		m, pattern, _ := strings.Cut(route, " ")
		ps := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
		if m != method || len(ps) != len(segs) {
			continue
		}
		if args, ok := matchSegments(ps, segs); ok {
			return route, args
		}
	}
	return "", nil
}

func matchSegments(pattern, segs []string) ([]string, bool) {
	var args []string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			a, err := url.PathUnescape(segs[i])
			if err != nil {
				return nil, false
			}
			args = append(args, a)
		} else if p != segs[i] {
			return nil, false
		}
	}
	return args, true
}

// content decodes a record's content into v.
func content(r audit.Record, v any) error {
	if err := json.Unmarshal(r.Content, v); err != nil {
		return fmt.Errorf("content: %v", err)
	}
	return nil
}

// revealed is the clear form of the sealed reference ref in r, when the
// viewer may read it.
func revealed(r audit.Record, ref json.RawMessage) (json.RawMessage, bool) {
	var s struct {
		Sealed struct {
			SHA256 string `json:"sha256"`
		} `json:"sealed"`
	}
	if json.Unmarshal(ref, &s) != nil || s.Sealed.SHA256 == "" {
		return nil, false
	}
	for _, v := range r.Sealed {
		if v.SHA256 == s.Sealed.SHA256 {
			return v.Details, true
		}
	}
	return nil, false
}

// sameJSON reports whether two JSON values are the same in canonical form.
func sameJSON(a, b any) bool {
	ca, err := audit.Canonical(a)
	if err != nil {
		return false
	}
	cb, err := audit.Canonical(b)
	return err == nil && bytes.Equal(ca, cb)
}

var errMismatch = errors.New("differs from the request")

func mismatch(field string, recorded, asked any) error {
	return fmt.Errorf("%s %v %w (%v)", field, recorded, errMismatch, asked)
}

type volumeRecord struct {
	Volume struct {
		ID        string          `json:"id"`
		State     volume.State    `json:"state"`
		Priority  int             `json:"priority"`
		Footprint json.RawMessage `json:"footprint"`
		AltLowerM float64         `json:"alt_lower_m"`
		AltUpperM float64         `json:"alt_upper_m"`
		Start     time.Time       `json:"start"`
		End       time.Time       `json:"end"`
	} `json:"volume"`
	Details json.RawMessage `json:"details"`
}

func bindVolume(r audit.Record, args []string, body []byte) error {
	var c volumeRecord
	if err := content(r, &c); err != nil {
		return err
	}
	if len(args) == 1 && c.Volume.ID != args[0] {
		return mismatch("volume", c.Volume.ID, args[0])
	}
	if body == nil {
		return nil
	}
	in, err := volume.ParseInput(body)
	if err != nil {
		return fmt.Errorf("the signed body is not a volume: %v", err)
	}
	switch {
	case !sameJSON(c.Volume.Footprint, in.Footprint):
		return mismatch("footprint", string(c.Volume.Footprint), "the body's")
	case c.Volume.AltLowerM != in.AltLowerM:
		return mismatch("alt_lower_m", c.Volume.AltLowerM, in.AltLowerM)
	case c.Volume.AltUpperM != in.AltUpperM:
		return mismatch("alt_upper_m", c.Volume.AltUpperM, in.AltUpperM)
	case !c.Volume.Start.Equal(in.Start):
		return mismatch("start", c.Volume.Start, in.Start)
	case !c.Volume.End.Equal(in.End):
		return mismatch("end", c.Volume.End, in.End)
	case c.Volume.Priority != in.Priority:
		return mismatch("priority", c.Volume.Priority, in.Priority)
	case c.Volume.State != in.State:
		return mismatch("state", c.Volume.State, in.State)
	}
	if len(c.Details) == 0 {
		if len(in.Details) > 0 {
			return mismatch("details", "none", "the body's")
		}
		return nil
	}
	if d, ok := revealed(r, c.Details); ok && !sameJSON(d, in.Details) {
		return mismatch("details", string(d), string(in.Details))
	}
	return nil
}

func bindVolumeState(r audit.Record, args []string, body []byte) error {
	var c volumeRecord
	if err := content(r, &c); err != nil {
		return err
	}
	if c.Volume.ID != args[0] {
		return mismatch("volume", c.Volume.ID, args[0])
	}
	if body == nil {
		return nil
	}
	var in struct {
		State volume.State `json:"state"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return fmt.Errorf("the signed body: %v", err)
	}
	if c.Volume.State != in.State {
		return mismatch("state", c.Volume.State, in.State)
	}
	return nil
}

func bindMessage(r audit.Record, _ []string, body []byte) error {
	if body == nil {
		return nil
	}
	var c struct {
		To     []string        `json:"to"`
		Thread string          `json:"thread"`
		Kind   string          `json:"kind"`
		Ref    *hotline.Ref    `json:"ref"`
		Text   json.RawMessage `json:"text"`
	}
	if err := content(r, &c); err != nil {
		return err
	}
	var in hotline.NewMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return fmt.Errorf("the signed body: %v", err)
	}
	if !sameSet(c.To, in.To) {
		return mismatch("to", c.To, in.To)
	}
	if c.Kind != in.Kind {
		return mismatch("kind", c.Kind, in.Kind)
	}
	if in.Thread != "" && c.Thread != in.Thread {
		return mismatch("thread", c.Thread, in.Thread)
	}
	if in.Ref != nil {
		var got hotline.Ref
		if c.Ref != nil {
			got = *c.Ref
		}
		if (in.Ref.VolumeID != "" && got.VolumeID != in.Ref.VolumeID) || (in.Ref.VolumeVersion != "" && got.VolumeVersion != in.Ref.VolumeVersion) ||
			(in.Ref.AlertID != "" && got.AlertID != in.Ref.AlertID) || (in.Ref.RulesVersion != 0 && got.RulesVersion != in.Ref.RulesVersion) {
			return mismatch("ref", got, *in.Ref)
		}
	}
	if t, ok := revealed(r, c.Text); ok && !sameJSON(t, in.Text) {
		return mismatch("text", string(t), in.Text)
	}
	return nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func bindAck(r audit.Record, args []string, body []byte) error {
	var c struct {
		ID    string          `json:"id"`
		Reply json.RawMessage `json:"reply"`
	}
	if err := content(r, &c); err != nil {
		return err
	}
	if c.ID != args[0] {
		return mismatch("message", c.ID, args[0])
	}
	if body == nil {
		return nil
	}
	var in struct {
		Reply string `json:"reply"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return fmt.Errorf("the signed body: %v", err)
		}
	}
	if len(c.Reply) == 0 {
		if in.Reply != "" {
			return mismatch("reply", "none", in.Reply)
		}
		return nil
	}
	if t, ok := revealed(r, c.Reply); ok && !sameJSON(t, in.Reply) {
		return mismatch("reply", string(t), in.Reply)
	}
	return nil
}

// bindRulesAnswer checks an answer's record (its version, and a
// rejection's reason) and the acknowledgments of the proposal's items that
// come with it (replying "accepted", or "rejected" with the reason).
func bindRulesAnswer(accept bool) func(audit.Record, []string, []byte) error {
	return func(r audit.Record, args []string, body []byte) error {
		var in struct {
			Reason      string `json:"reason"`
			RulesSHA256 string `json:"rules_sha256"`
		}
		if body != nil && len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				return fmt.Errorf("the signed body: %v", err)
			}
		}
		if r.Kind == "message_acked" {
			var c struct {
				Reply json.RawMessage `json:"reply"`
			}
			if err := content(r, &c); err != nil {
				return err
			}
			t, ok := revealed(r, c.Reply)
			if !ok || body == nil {
				return nil
			}
			var reply string
			if err := json.Unmarshal(t, &reply); err != nil {
				return fmt.Errorf("reply: %v", err)
			}
			want := "accepted"
			if !accept {
				want = "rejected"
				if in.Reason != "" {
					want += ": " + in.Reason
				}
			}
			if reply != want {
				return mismatch("reply", reply, want)
			}
			return nil
		}
		var c struct {
			Version     int64           `json:"version"`
			Reason      json.RawMessage `json:"reason"`
			RulesSHA256 string          `json:"rules_sha256"`
		}
		if err := content(r, &c); err != nil {
			return err
		}
		// Read as the server read the path when it answered: before it
		// refused them, "02" and "+2" were answered as version 2, and the
		// records of such answers hold 2 under a statement that says "02".
		if asked, err := strconv.ParseInt(args[0], 10, 64); err != nil || asked != c.Version {
			return mismatch("version", c.Version, args[0])
		}
		// The digest of the content accepted is the one the party
		// signed (an acceptance recorded before it existed names none,
		// and its body none either); audit verify checks it against
		// the rules recorded for the version.
		if accept && body != nil && c.RulesSHA256 != in.RulesSHA256 {
			return mismatch("rules_sha256", c.RulesSHA256, in.RulesSHA256)
		}
		if !accept && body != nil {
			if t, ok := revealed(r, c.Reason); ok && !sameJSON(t, in.Reason) {
				return mismatch("reason", string(t), in.Reason)
			}
		}
		return nil
	}
}

func bindKeyAdded(r audit.Record, args []string, body []byte) error {
	var c struct {
		Party     string `json:"party"`
		PublicKey string `json:"public_key"`
	}
	if err := content(r, &c); err != nil {
		return err
	}
	if c.Party != args[0] {
		return mismatch("party", c.Party, args[0])
	}
	if body == nil {
		return nil
	}
	var in struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return fmt.Errorf("the signed body: %v", err)
	}
	got, err1 := partykey.ParseText(c.PublicKey)
	asked, err2 := partykey.ParseText(in.PublicKey)
	if err1 != nil || err2 != nil || !got.Equal(asked) {
		return mismatch("public_key", c.PublicKey, in.PublicKey)
	}
	return nil
}

func bindKeyRetired(r audit.Record, args []string, _ []byte) error {
	var c struct {
		Party string `json:"party"`
		KeyID string `json:"keyid"`
	}
	if err := content(r, &c); err != nil {
		return err
	}
	if c.Party != args[0] || c.KeyID != args[1] {
		return mismatch("party and keyid", c.Party+" "+c.KeyID, args[0]+" "+args[1])
	}
	return nil
}
