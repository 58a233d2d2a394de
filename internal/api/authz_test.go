package api

import (
	"crypto/ed25519"

	"context"
	"fmt"
	"github.com/deconflict/deconflict/internal/partykey"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// fingerprint summarises everything a write could change in the store.
func fingerprint(t *testing.T, st store.Store) string {
	t.Helper()
	var b strings.Builder
	err := st.View(context.Background(), func(tx store.Tx) error {
		last, err := tx.LastEventID()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "events=%d;", last)
		if r, err := tx.LatestRules(); err == nil {
			fmt.Fprintf(&b, "rules=%d;", r.Version)
		}
		if a, err := tx.LastAudit(); err == nil {
			fmt.Fprintf(&b, "audit=%d;", a.Seq)
		}
		vs, err := tx.VolumesChangedSince(0, 1<<20)
		if err != nil {
			return err
		}
		for _, v := range vs {
			fmt.Fprintf(&b, "vol %s@%s;", v.ID, v.Version)
		}
		ps, err := tx.ListParties()
		if err != nil {
			return err
		}
		for _, p := range ps {
			creds, err := tx.ListCredentials(p.Name)
			if err != nil {
				return err
			}
			n := 0
			for _, c := range creds {
				if !c.Revoked {
					n++
				}
			}
			fmt.Fprintf(&b, "party %s disabled=%v tokens=%d;", p.Name, p.Disabled, n)
		}
		for _, p := range []string{"coalition", "russia"} {
			ms, err := tx.MessagesFor(p, "", farPast, 1<<20)
			if err != nil {
				return err
			}
			for _, m := range ms {
				acks, err := tx.AcksFor(m.ID)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "msg %s %s acks=%d;", m.ID, m.State, len(acks))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// matrixCase is one route tried as every kind of caller. owner is the
// party that may do it ("operator" for operator routes, "any" when every
// party may); other is the status for a party that is not the owner.
type matrixCase struct {
	name         string
	method, path string
	body         func() any
	owner        string
	ownerStatus  int
	otherStatus  int
	stream       bool
	// forbid lists strings the answer to a non-owner must not contain
	// (another party's details).
	forbid []string
}

// authzFixture creates what the routes act on: a coalition volume with
// private details, and a third party whose token is revoked.
type authzFixture struct {
	volID, volVersion string
	revoked           string
	extra             map[string]string
}

func setupAuthz(t *testing.T, e *env) authzFixture {
	var f authzFixture
	var v wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35.4, 36.0, "secret-mission-details", nil), 201, &v)
	f.volID, f.volVersion = v.ID, v.Version
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "revoked-party"}, 201, &tok)
	e.mustDo("POST", "/v1/parties/revoked-party/revoke", e.operator, nil, 200, nil)
	f.revoked = tok.Token
	if err := e.svc.PublishLog(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.extra = map[string]string{}
	setupAuthzExtra(t, e, &f)
	return f
}

func authzCases(e *env, f authzFixture) []matrixCase {
	secret := []string{"secret-mission-details"}
	// Creations by different parties must not conflict with each other.
	lon := 90.0
	cases := []matrixCase{
		{name: "me", method: "GET", path: "/v1/me", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "rules", method: "GET", path: "/v1/rules", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "put rules", method: "PUT", path: "/v1/rules", body: func() any { return rules.Default() }, owner: "operator", ownerStatus: 202, otherStatus: 403},
		{name: "list parties", method: "GET", path: "/v1/parties", owner: "operator", ownerStatus: 200, otherStatus: 403},
		{name: "add party", method: "POST", path: "/v1/parties", body: func() any { return map[string]string{"name": "newcomer"} }, owner: "operator", ownerStatus: 201, otherStatus: 403},
		{name: "rotate party", method: "POST", path: "/v1/parties/newcomer/rotate", owner: "operator", ownerStatus: 200, otherStatus: 403},
		{name: "revoke party", method: "POST", path: "/v1/parties/newcomer/revoke", owner: "operator", ownerStatus: 200, otherStatus: 403},
		{name: "tracks", method: "GET", path: "/v1/tracks", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "alerts", method: "GET", path: "/v1/alerts", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "positions", method: "POST", path: "/v1/positions", body: func() any { return map[string]any{"reports": []any{}} }, owner: "any", ownerStatus: 202, otherStatus: 202},
		{name: "get own volume", method: "GET", path: "/v1/volumes/" + f.volID, owner: "coalition", ownerStatus: 200, otherStatus: 200, forbid: secret},
		{name: "list volumes", method: "GET", path: "/v1/volumes", owner: "coalition", ownerStatus: 200, otherStatus: 200, forbid: secret},
		{name: "update volume", method: "PUT", path: "/v1/volumes/" + f.volID, body: func() any {
			b := circleVolume(35.4, 36.0, "secret-mission-details", nil)
			b["version"] = f.volVersion
			return b
		}, owner: "coalition", ownerStatus: 200, otherStatus: 403, forbid: secret},
		{name: "volume state", method: "POST", path: "/v1/volumes/" + f.volID + "/state", body: func() any {
			// The update above changed the version; the owner reads it first.
			return map[string]any{"state": "cancelled", "version": e.volumeVersion(f.volID)}
		}, owner: "coalition", ownerStatus: 200, otherStatus: 403, forbid: secret},
		{name: "create volume", method: "POST", path: "/v1/volumes", body: func() any { lon += 1; return circleVolume(-20, lon, "x", nil) }, owner: "any", ownerStatus: 201, otherStatus: 201},
		{name: "preview volumes", method: "POST", path: "/v1/volumes/preview?format=openair", body: func() any {
			return "AC R\nAN X\nAL GND\nAH FL100\nV X=35:24:00 N 036:00:00 E\nDC 1\n"
		}, owner: "any", ownerStatus: 200, otherStatus: 200, forbid: secret},
		{name: "volume alternatives", method: "POST", path: "/v1/volumes/alternatives", body: func() any { return circleVolume(35.4, 36.0, "x", nil) }, owner: "any", ownerStatus: 200, otherStatus: 200, forbid: secret},
		{name: "audit", method: "GET", path: "/v1/audit", owner: "coalition", ownerStatus: 200, otherStatus: 200, forbid: secret},
		{name: "audit key", method: "GET", path: "/v1/audit/key", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "log key", method: "GET", path: "/v1/log/key", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "log checkpoint", method: "GET", path: "/v1/log/checkpoint", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "log witnesses", method: "GET", path: "/v1/log/witnesses", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "inclusion proof", method: "GET", path: "/v1/log/proof/inclusion?index=0&size=1", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "consistency proof", method: "GET", path: "/v1/log/proof/consistency?from=1&size=2", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "events", method: "GET", path: "/v1/events?after=0", owner: "any", ownerStatus: 200, otherStatus: 200, stream: true},
	}
	cases = append(cases, authzExtraCases(e, f)...)
	// Last: once russia has a key, its writes must be signed.
	return append(cases,
		matrixCase{name: "list keys", method: "GET", path: "/v1/parties/russia/keys", owner: "russia", ownerStatus: 200, otherStatus: 403},
		matrixCase{name: "add key", method: "POST", path: "/v1/parties/russia/keys", body: func() any {
			pub, _, _ := ed25519.GenerateKey(nil)
			return map[string]string{"public_key": partykey.Format(pub)}
		}, owner: "russia", ownerStatus: 201, otherStatus: 403},
		matrixCase{name: "retire key unsigned", method: "POST", path: "/v1/parties/russia/keys/x/retire", owner: "russia", ownerStatus: 401, otherStatus: 403},
	)
}

// volumeVersion reads the current version of a volume as its owner.
func (e *env) volumeVersion(id string) string {
	var v wireVolume
	e.mustDo("GET", "/v1/volumes/"+id, e.tokens["coalition"], nil, 200, &v)
	return v.Version
}

// doStream opens a stream and reports its status, then closes it.
func (e *env) doStream(path, token string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t, Options{})
	f := setupAuthz(t, e)
	callers := []struct {
		name  string
		token string
	}{
		{"no token", ""},
		{"malformed token", "definitely not a token"},
		{"well-formed unknown token", strings.Repeat("A", 43)},
		{"revoked token", f.revoked},
	}
	for _, c := range authzCases(e, f) {
		t.Run(c.name, func(t *testing.T) {
			do := func(token string) (int, string) {
				if c.stream {
					return e.doStream(c.path, token), ""
				}
				var body any
				if c.body != nil {
					body = c.body()
				}
				code, b, _ := e.do(c.method, c.path, token, body)
				return code, string(b)
			}
			before := fingerprint(t, e.st)
			for _, caller := range callers {
				if code, b := do(caller.token); code != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401: %.200s", caller.name, code, b)
				}
			}
			if after := fingerprint(t, e.st); after != before {
				t.Fatalf("unauthenticated calls changed the store:\n%s\n%s", before, after)
			}
			owner, other := e.tokens["coalition"], e.tokens["russia"]
			switch c.owner {
			case "operator":
				owner = e.operator
				other = e.tokens["coalition"]
			case "any":
				other = e.tokens["russia"]
			case "russia":
				owner, other = e.tokens["russia"], e.tokens["coalition"]
			}
			code, b := do(other)
			if code != c.otherStatus {
				t.Errorf("another party: status %d, want %d: %.300s", code, c.otherStatus, b)
			}
			for _, s := range c.forbid {
				if strings.Contains(b, s) {
					t.Errorf("another party sees %q: %.300s", s, b)
				}
			}
			if code >= 400 {
				if after := fingerprint(t, e.st); after != before {
					t.Fatalf("a refused cross-party call changed the store:\n%s\n%s", before, after)
				}
			}
			if code, b := do(owner); code != c.ownerStatus {
				t.Errorf("owner: status %d, want %d: %.300s", code, c.ownerStatus, b)
			}
		})
	}
	// Every route of the handler is in the matrix.
	tried := map[string]bool{}
	for _, c := range authzCases(e, f) {
		tpl, _ := e.checker.template(c.path)
		tried[c.method+" "+tpl] = true
	}
	for _, rt := range e.routesOf() {
		if rt.auth == public {
			continue
		}
		if !tried[rt.method+" "+rt.path] {
			t.Errorf("route %s %s is not in the authorization matrix", rt.method, rt.path)
		}
	}
}

func (e *env) routesOf() []route {
	h := &Handler{}
	rs := h.routes()
	slices.SortFunc(rs, func(a, b route) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	return rs
}
