package service

import "testing"

// TestAlertIDOf: the id of an alert event's body, read from its first
// field as the service writes it, or from anywhere in an object written
// otherwise; none from what is not an alert's object.
func TestAlertIDOf(t *testing.T) {
	for _, tc := range []struct {
		body string
		id   string
		ok   bool
	}{
		{`{"id":"a1","kind":"conflict","resolution":{"id":"not this"}}`, "a1", true},
		{`{"kind":"conflict","id":"a2"}`, "a2", true},
		{` { "id" : "a3" } `, "a3", true},
		{`{"id":7}`, "", false},
		{`{"kind":"conflict"}`, "", false},
		{`[1,2]`, "", false},
		{`null`, "", false},
		{``, "", false},
	} {
		id, ok := alertIDOf([]byte(tc.body))
		if id != tc.id || ok != tc.ok {
			t.Errorf("alertIDOf(%s) = %q, %v; want %q, %v", tc.body, id, ok, tc.id, tc.ok)
		}
	}
}
