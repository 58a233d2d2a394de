// Package fielderr is the one shape of a refusal of bad input: the field at
// fault, by its JSON path ("reports[3].lat", "ref.volume_id",
// "levels[1].name"), and why.
//
// Every package that validates input returns a *Error for it (built with
// New or Errorf), and the API matches it with errors.As and answers 400
// problem+json naming Field. A package never defines a field error of its
// own: one the API does not know would fall through to a 500.
package fielderr

import "fmt"

// Error names the field of the input at fault. Field is empty when the
// input is refused as a whole.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// New returns the refusal of field for msg.
func New(field, msg string) *Error { return &Error{Field: field, Msg: msg} }

// Errorf returns the refusal of field with a formatted message.
func Errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}
