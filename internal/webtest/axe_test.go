package webtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deconflict/deconflict/internal/testutil/nodejs"
)

// axe-core, pinned in internal/testutil/nodejs/npm and installed by
// scripts/install-test-deps.sh, checks each view of the console the way
// accessibility audits do. The console's security policy refuses every
// script that is not its own, so it is evaluated through the DevTools
// protocol (which the policy does not govern) rather than added as a
// script element: the tested pages keep their policy, and the test that
// nothing was blocked still means something.

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

func axeScript(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		var b []byte
		b, axeErr = os.ReadFile(filepath.Join(nodejs.Modules(t), "axe-core", "axe.min.js"))
		axeSource = string(b)
	})
	if axeErr != nil {
		t.Fatalf("axe-core: %v", axeErr)
	}
	return axeSource
}

// axeViolation is one rule broken, with the elements that break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// checkAccessible runs axe-core on the page as it is and fails the test on
// every serious or critical violation; view names the view in messages.
// It returns how many rules passed, so that a caller can tell a check that
// looked at something from one that did not.
func checkAccessible(t *testing.T, tb *tab, view string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 90*time.Second)
	defer cancel()
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe === 'object'`))
	if err != nil {
		t.Fatalf("%s: %v", view, err)
	}
	if !loaded {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](axeScript(t))); err != nil {
			t.Fatalf("%s: loading axe-core: %v", view, err)
		}
	}
	// Every rule axe-core has for WCAG 2.x A and AA and its best practices.
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {
			runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
			resultTypes: ['violations'],
		}).then(r => JSON.stringify({violations: r.violations, passes: r.passes.length}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: running axe-core: %v", view, err)
	}
	var out struct {
		Violations []axeViolation `json:"violations"`
		Passes     int            `json:"passes"`
	}
	if err := json.Unmarshal([]byte(res), &out); err != nil {
		t.Fatalf("%s: %v", view, err)
	}
	for _, v := range out.Violations {
		var where []string
		for _, n := range v.Nodes {
			b, _ := json.Marshal(n.Target)
			where = append(where, string(b)+": "+strings.ReplaceAll(n.Summary, "\n", " "))
		}
		switch v.Impact {
		case "serious", "critical":
			t.Errorf("%s (%s): axe %s %s: %s\n\t%s", tb.party, view, v.Impact, v.ID, v.Help, strings.Join(where, "\n\t"))
		default:
			t.Logf("%s (%s): axe %s %s: %s (%d elements)", tb.party, view, v.Impact, v.ID, v.Help, len(v.Nodes))
		}
	}
	if out.Passes == 0 {
		t.Errorf("%s (%s): axe-core passed no rule at all: it checked nothing", tb.party, view)
	}
	return out.Passes
}
