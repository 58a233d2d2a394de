package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var refPattern = regexp.MustCompile(`(?:src|href|content)="([^"]+\.(?:js|css|json))"`)

// The page must reference only files that are served, with the right types,
// and must not need anything the policy forbids.
func TestIndexReferencesServedAssets(t *testing.T) {
	h := Handler()
	rec := get(t, h, http.MethodGet, "/", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET / Content-Type = %q", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("GET / Cache-Control = %q, want no-cache so a new build is picked up", cc)
	}
	page := rec.Body.String()
	if strings.Contains(page, "{{") {
		t.Errorf("index.html still has a build placeholder")
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(page) {
		t.Errorf("index.html has an inline script, which the policy blocks")
	}
	if regexp.MustCompile(`\sstyle="`).MatchString(page) {
		t.Errorf("index.html has an inline style attribute, which the policy blocks")
	}
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".json": "application/json"}
	refs := refPattern.FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d assets, want the script, the style and the atlas", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.Contains(ref, "//") {
			t.Errorf("index.html references %q on another origin", ref)
			continue
		}
		rec := get(t, h, http.MethodGet, "/"+ref, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET /%s = %d", ref, rec.Code)
			continue
		}
		ext := ref[strings.LastIndex(ref, "."):]
		if ct := rec.Header().Get("Content-Type"); ct != want[ext] {
			t.Errorf("GET /%s Content-Type = %q, want %q", ref, ct, want[ext])
		}
		if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET /%s Cache-Control = %q, want immutable for a hashed name", ref, cc)
		}
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/", "/index.html", "/missing.js", "/THIRD_PARTY_NOTICES.txt"} {
		rec := get(t, h, http.MethodGet, target, nil)
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s: Content-Security-Policy = %q", target, csp)
		}
		if strings.Contains(csp, "http") || strings.Contains(csp, "*") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: policy allows more than the own origin: %q", target, csp)
		}
		if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q", target, got)
		}
	}
}

func TestMethodsAndMissingFiles(t *testing.T) {
	h := Handler()
	if rec := get(t, h, http.MethodPost, "/", nil); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := get(t, h, http.MethodGet, "/v2/anything", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET unknown path = %d, want 404", rec.Code)
	}
	if rec := get(t, h, http.MethodGet, "/../go.mod", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET path outside dist = %d, want 404", rec.Code)
	}
	head := get(t, h, http.MethodHead, "/", nil)
	full := get(t, h, http.MethodGet, "/", nil)
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") != full.Header().Get("Content-Length") {
		t.Errorf("HEAD / = %d with %d body bytes, Content-Length %q vs GET %q", head.Code, head.Body.Len(), head.Header().Get("Content-Length"), full.Header().Get("Content-Length"))
	}
}

func TestConditionalAndCompressed(t *testing.T) {
	h := Handler()
	assets, err := loadDist()
	if err != nil {
		t.Fatal(err)
	}
	compressed := 0
	for name, a := range assets {
		first := get(t, h, http.MethodGet, name, nil)
		etag := first.Header().Get("ETag")
		if etag == "" || !bytes.Equal(first.Body.Bytes(), a.body) {
			t.Errorf("%s: ETag %q, body %d bytes want %d", name, etag, first.Body.Len(), len(a.body))
			continue
		}
		if again := get(t, h, http.MethodGet, name, map[string]string{"If-None-Match": etag}); again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Errorf("%s: If-None-Match with its ETag = %d, %d bytes", name, again.Code, again.Body.Len())
		}
		if other := get(t, h, http.MethodGet, name, map[string]string{"If-None-Match": `"stale"`}); other.Code != http.StatusOK {
			t.Errorf("%s: If-None-Match with another ETag = %d", name, other.Code)
		}
		gz := get(t, h, http.MethodGet, name, map[string]string{"Accept-Encoding": "br, gzip"})
		if gz.Header().Get("Content-Encoding") != "gzip" {
			continue
		}
		compressed++
		zr, err := gzip.NewReader(gz.Body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(plain, a.body) {
			t.Errorf("%s: gzip body does not decompress to the file (%v)", name, err)
		}
		if refused := get(t, h, http.MethodGet, name, map[string]string{"Accept-Encoding": "gzip;q=0"}); refused.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s: gzip sent although refused with q=0", name)
		}
	}
	if compressed == 0 {
		t.Errorf("no asset was served compressed; the atlas alone should be")
	}
}

func TestAcceptsGzip(t *testing.T) {
	cases := map[string]bool{
		"":                    false,
		"gzip":                true,
		"deflate, gzip;q=1.0": true,
		"GZIP":                true,
		"gzip;q=0":            false,
		"gzip; q=0.000":       false,
		"br":                  false,
		"x-gzip":              false,
	}
	for header, want := range cases {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
