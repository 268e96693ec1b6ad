// The file handler and the request logger of serve.

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"regexp"
	"strings"
	"time"
)

// contentTypes fixes the MIME type of every file type the site uses, so the
// answer does not depend on the host's mime tables (browsers refuse
// instantiateStreaming without application/wasm, and module scripts without
// a JavaScript type).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".json": "application/json",
	".wasm": "application/wasm",
	".sz":   "application/octet-stream", // snappy-framed weights (.nliw.sz)
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
	".map":  "application/json",
}

// contentType returns the MIME type of name, or "" to let net/http sniff.
func contentType(name string) string {
	return contentTypes[strings.ToLower(path.Ext(name))]
}

// hashedName matches file names carrying a content hash (name.<12 hex>.ext),
// which never change and so may be cached for a year.
var hashedName = regexp.MustCompile(`\.[0-9a-f]{12}\.`)

// handler serves the files under one folder.
type handler struct {
	root *os.Root // confines every open to the folder (no .., no symlinks out)
}

func newHandler(dir string) (*handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("--dir %s: %w", dir, err)
	}
	return &handler{root: root}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := path.Clean("/" + r.URL.Path)
	if strings.HasSuffix(r.URL.Path, "/") {
		name = path.Join(name, "index.html")
	} else if st, err := h.root.Stat(strings.TrimPrefix(name, "/")); err == nil && st.IsDir() {
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
		return
	}
	rel := strings.TrimPrefix(name, "/")
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	if ct := contentType(rel); ct != "" {
		hdr.Set("Content-Type", ct)
	}
	if hashedName.MatchString(path.Base(rel)) {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache") // revalidate (Last-Modified / ETag)
	}

	// A precompressed sibling (file.gz) is sent when the client takes gzip.
	f, st, err := h.open(rel)
	if err != nil {
		h.fail(w, err)
		return
	}
	defer f.Close()
	hdr.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		if gz, gst, err := h.open(rel + ".gz"); err == nil {
			defer gz.Close()
			f.Close()
			hdr.Set("Content-Encoding", "gzip")
			hdr.Set("ETag", etag(gst, "gz"))
			http.ServeContent(w, r, rel, st.ModTime(), gz)
			return
		}
	}
	hdr.Set("ETag", etag(st, ""))
	http.ServeContent(w, r, rel, st.ModTime(), f)
}

// open opens a regular file under the root.
func (h *handler) open(rel string) (*os.File, fs.FileInfo, error) {
	f, err := h.root.Open(rel)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, st, nil
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	w.Header().Del("Cache-Control")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, "404 not found", http.StatusNotFound)
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, "403 forbidden", http.StatusForbidden)
	default: // e.g. a path that would leave the root
		http.Error(w, "400 bad request", http.StatusBadRequest)
	}
}

func etag(st fs.FileInfo, tag string) string {
	return fmt.Sprintf(`"%x-%x%s"`, st.ModTime().UnixNano(), st.Size(), tag)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}

// requestLog is what logRequests records of one request.
type requestLog struct {
	Method, Path string
	Status       int
	Bytes        int64 // body bytes written (compressed size when gzip)
	Duration     time.Duration
}

// logRequests logs every request through logger and, when observe is
// non-nil, hands it the record too (tests count bytes with it).
func logRequests(logger *slog.Logger, next http.Handler, observe func(requestLog)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(cw, r)
		rec := requestLog{Method: r.Method, Path: r.URL.Path, Status: cw.status, Bytes: cw.n, Duration: time.Since(t0)}
		if logger != nil {
			logger.Info("request", "method", rec.Method, "path", rec.Path, "status", rec.Status,
				"bytes", rec.Bytes, "ms", float64(rec.Duration.Microseconds())/1000, "remote", r.RemoteAddr)
		}
		if observe != nil {
			observe(rec)
		}
	})
}

// countingWriter records the status and counts body bytes.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
