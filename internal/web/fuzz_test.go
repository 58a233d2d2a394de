package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandler feeds the handler arbitrary paths and the headers it parses
// (If-None-Match, Accept-Encoding): it must answer every request with the
// security headers and one of its four statuses, and never serve a body
// that is not one of its files.
func FuzzHandler(f *testing.F) {
	f.Add("GET", "/", "", "gzip")
	f.Add("HEAD", "/index.html", `W/"abc", *`, "br;q=1, gzip;q=0")
	f.Add("GET", "/../../etc/passwd", `"`, "gzip;q=0.000")
	f.Add("POST", "/app.js", ",,,", "GZIP; q=0.5")
	f.Add("GET", "/%2e%2e/dist", "", ";;;,gzip")
	h := Handler()
	assets, err := loadDist()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, ifNoneMatch, acceptEncoding string) {
		req, err := http.NewRequest(method, "http://console.test/", nil)
		if err != nil {
			t.Skip()
		}
		req.URL.Path = path
		req.Header.Set("If-None-Match", ifNoneMatch)
		req.Header.Set("Accept-Encoding", acceptEncoding)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("%s %q: no policy", method, path)
		}
		switch rec.Code {
		case http.StatusOK:
			name := path
			if name == "/" || name == "" {
				name = "/index.html"
			}
			a, ok := assets[name]
			if !ok {
				t.Fatalf("%s %q: 200 for a path that is not a file", method, path)
			}
			if method == http.MethodGet && rec.Body.Len() != len(a.body) && rec.Body.Len() != len(a.gzipped) {
				t.Fatalf("%s %q: %d body bytes, the file has %d", method, path, rec.Body.Len(), len(a.body))
			}
		case http.StatusNotModified, http.StatusNotFound, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("%s %q: status %d", method, path, rec.Code)
		}
	})
}
