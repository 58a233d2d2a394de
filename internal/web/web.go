// Package web owns the operations console: the page a party keeps open to
// watch the live map, its alerts and the hotline. The page is built from the
// sources in web/ at the repository root (see scripts/web-build.sh) into
// dist/, which is committed and embedded here, so that the binary serves it
// with no npm and no internet.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed dist
var dist embed.FS

// ContentSecurityPolicy allows the page nothing but its own origin: no
// external scripts, styles, fonts, images or connections, no inline script,
// no framing. And no string is ever parsed as HTML or script (Trusted
// Types, with no policy allowed): the console shows other parties' strings
// as text only, and an assignment to innerHTML, outerHTML,
// insertAdjacentHTML or document.write would throw rather than parse one.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

type asset struct {
	body        []byte
	gzipped     []byte // nil when compression does not pay
	contentType string
	etag        string
	immutable   bool
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// Handler serves the console. Mount it at the root of the service: "/" is
// the page, everything else is one of its files. Only GET and HEAD are
// allowed; unknown paths are 404 (the page is a single document, there is
// no client-side routing to fall back to).
func Handler() http.Handler {
	assets, err := loadDist()
	if err != nil {
		// The files are embedded at build time, so this cannot fail at run
		// time unless the build itself is broken.
		panic(err)
	}
	return handler{assets: assets}
}

// loadDist reads and compresses the embedded files once per process.
var loadDist = sync.OnceValues(func() (map[string]*asset, error) { return load(dist) })

func load(fsys fs.FS) (map[string]*asset, error) {
	sub, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, err
	}
	assets := make(map[string]*asset)
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		a := &asset{
			body:        body,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			// The build puts a content hash in every file name except the
			// page and the notices, so those names never change meaning.
			immutable: name != "index.html" && name != "THIRD_PARTY_NOTICES.txt",
		}
		if len(body) > 1024 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			if buf.Len() < len(body)*9/10 {
				a.gzipped = buf.Bytes()
			}
		}
		assets["/"+name] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if assets["/index.html"] == nil {
		return nil, fmt.Errorf("web: dist has no index.html; run scripts/web-build.sh")
	}
	return assets, nil
}

type handler struct {
	assets map[string]*asset
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path
	if name == "/" || name == "" {
		name = "/index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if a.immutable {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	hdr.Set("ETag", a.etag)
	hdr.Set("Vary", "Accept-Encoding")
	if etagMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	body := a.body
	if a.gzipped != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		hdr.Set("Content-Encoding", "gzip")
		body = a.gzipped
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: its
// first element naming gzip does, unless its weight is zero (RFC 9110
// 12.5.3: q=0, 0., 0.000, the parameter's name in either case, after any
// other parameter). A weight that is no number refuses it too: the file
// as it is suits every client.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		params := strings.Split(part, ";")
		if !strings.EqualFold(strings.TrimSpace(params[0]), "gzip") {
			continue
		}
		for _, p := range params[1:] {
			name, value, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				return err == nil && q > 0
			}
		}
		return true
	}
	return false
}
