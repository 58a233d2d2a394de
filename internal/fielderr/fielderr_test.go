package fielderr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/deconflict/deconflict/internal/fielderr"
)

func TestMatchedThroughWrapping(t *testing.T) {
	err := fmt.Errorf("service: %w", fielderr.Errorf("reports[3].lat", "%g outside [-90, 90]", 91.0))
	var fe *fielderr.Error
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As found no *fielderr.Error in %v", err)
	}
	if fe.Field != "reports[3].lat" || fe.Msg != "91 outside [-90, 90]" {
		t.Errorf("got field %q msg %q", fe.Field, fe.Msg)
	}
	if got, want := err.Error(), "service: reports[3].lat: 91 outside [-90, 90]"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestWholeInput(t *testing.T) {
	if got := fielderr.New("", "empty body").Error(); got != "empty body" {
		t.Errorf("Error() = %q, want the message alone", got)
	}
}
