package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/hotline"
)

// A volume write refused for conflicting with more volumes than the
// hotline tells of in one write is a 422 naming the key, not a 500.
func TestTooManyConflictsIsA422NamingTheKey(t *testing.T) {
	err := fmt.Errorf("writing: %w", &hotline.TooManyConflictsError{Conflicts: 2001, Limit: hotline.MaxVolumeConflictsPerWrite})
	p := domainProblem(err)
	if p == nil || p.Status != http.StatusUnprocessableEntity || p.Field != "key" || !strings.HasSuffix(p.Type, "/too-many-conflicts") ||
		!strings.Contains(p.Detail, "2001") {
		t.Fatalf("problem %+v, want a 422 too-many-conflicts naming key and the count", p)
	}
}
