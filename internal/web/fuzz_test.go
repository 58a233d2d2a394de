package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
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
			// The file itself, gzipped exactly when the client accepts
			// gzip (RFC 9110 12.5.3: a qvalue of 0 refuses it).
			gzipped := rec.Header().Get("Content-Encoding") == "gzip"
			want := a.body
			if gzipped {
				want = a.gzipped
			}
			if method == http.MethodGet && !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("%s %q: %d body bytes, not the file's %d (gzipped: %v)", method, path, rec.Body.Len(), len(want), gzipped)
			}
			if accepts, known := referenceAcceptsGzip(acceptEncoding); known && gzipped != (accepts && a.gzipped != nil) {
				t.Fatalf("%s %q: gzipped %v for Accept-Encoding %q", method, path, gzipped, acceptEncoding)
			}
		case http.StatusNotModified, http.StatusNotFound, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("%s %q: status %d", method, path, rec.Code)
		}
	})
}

// qvalue is RFC 9110's weight: 0 to 1, at most three decimals.
var qvalue = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

// referenceAcceptsGzip reads Accept-Encoding by RFC 9110 (12.5.3): the
// first element naming gzip (case-insensitive) accepts it unless its
// weight is 0; parameter names are case-insensitive and white space
// around the ';' and '=' optional. known is false when the element's
// parameters are not of the grammar: the server may read them either way.
func referenceAcceptsGzip(header string) (accepts, known bool) {
	for _, part := range strings.Split(header, ",") {
		params := strings.Split(part, ";")
		if !strings.EqualFold(strings.Trim(params[0], " \t"), "gzip") {
			continue
		}
		weight := "1"
		for _, p := range params[1:] {
			name, value, ok := strings.Cut(strings.Trim(p, " \t"), "=")
			if !ok || name == "" || strings.ContainsAny(name+value, " \t\"") {
				return false, false
			}
			if strings.EqualFold(name, "q") {
				weight = value
			}
		}
		if !qvalue.MatchString(weight) {
			return false, false
		}
		return strings.Trim(weight, "0.") != "", true
	}
	return false, true
}
