// Tests of the static server: MIME types, precompressed files, caching
// headers, errors, the request log and a clean shutdown.

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// siteDir makes a small site folder.
func siteDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"index.html":                "<!doctype html><title>t</title>",
		"app.js":                    "export {}",
		"style.css":                 "body{}",
		"nli.0123456789ab.wasm":     "\x00asm\x01\x00\x00\x00",
		"models.json":               `{"models": []}`,
		"weights/a.0123456789ab.sz": "weights",
		"sub/index.html":            "sub",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("\x00asm\x01\x00\x00\x00"))
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "nli.0123456789ab.wasm.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandler(t *testing.T) {
	h, err := newHandler(siteDir(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		target, ctype, cache string
		status               int
	}{
		{"/", "text/html; charset=utf-8", "no-cache", 200},
		{"/index.html", "text/html; charset=utf-8", "no-cache", 200},
		{"/app.js", "text/javascript; charset=utf-8", "no-cache", 200},
		{"/style.css", "text/css; charset=utf-8", "no-cache", 200},
		{"/models.json", "application/json", "no-cache", 200},
		{"/nli.0123456789ab.wasm", "application/wasm", "public, max-age=31536000, immutable", 200},
		{"/weights/a.0123456789ab.sz", "application/octet-stream", "public, max-age=31536000, immutable", 200},
		{"/sub/", "text/html; charset=utf-8", "no-cache", 200},
		{"/missing.js", "text/plain; charset=utf-8", "", 404},
		{"/../../etc/passwd", "text/plain; charset=utf-8", "", 404},
		{"/sub", "", "", 301},
	}
	for _, c := range cases {
		res := get(t, h, "GET", c.target, nil)
		if res.StatusCode != c.status || c.ctype != "" && res.Header.Get("Content-Type") != c.ctype || res.Header.Get("Cache-Control") != c.cache {
			t.Errorf("GET %s: %d %q %q, want %d %q %q", c.target, res.StatusCode, res.Header.Get("Content-Type"),
				res.Header.Get("Cache-Control"), c.status, c.ctype, c.cache)
		}
	}
	if res := get(t, h, "POST", "/", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", res.StatusCode)
	}
	if res := get(t, h, "HEAD", "/app.js", nil); res.StatusCode != 200 || res.ContentLength != int64(len("export {}")) {
		t.Errorf("HEAD: %d, length %d", res.StatusCode, res.ContentLength)
	}
}

func TestHandlerGzip(t *testing.T) {
	h, err := newHandler(siteDir(t))
	if err != nil {
		t.Fatal(err)
	}
	res := get(t, h, "GET", "/nli.0123456789ab.wasm", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Content-Type") != "application/wasm" {
		t.Fatalf("gzip: headers %v", res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if string(body) != "\x00asm\x01\x00\x00\x00" {
		t.Errorf("gzip body %q", body)
	}
	for _, ae := range []string{"", "br", "gzip;q=0"} {
		res = get(t, h, "GET", "/nli.0123456789ab.wasm", map[string]string{"Accept-Encoding": ae})
		body, _ = io.ReadAll(res.Body)
		if res.Header.Get("Content-Encoding") != "" || string(body) != "\x00asm\x01\x00\x00\x00" {
			t.Errorf("Accept-Encoding %q: encoding %q, body %q", ae, res.Header.Get("Content-Encoding"), body)
		}
	}
	// Revalidation: the ETag answers 304.
	res = get(t, h, "GET", "/app.js", nil)
	res2 := get(t, h, "GET", "/app.js", map[string]string{"If-None-Match": res.Header.Get("ETag")})
	if res2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", res2.StatusCode)
	}
}

func TestLogRequests(t *testing.T) {
	h, err := newHandler(siteDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var recs []requestLog
	lh := logRequests(slog.New(slog.NewTextHandler(&buf, nil)), h, func(r requestLog) { recs = append(recs, r) })
	get(t, lh, "GET", "/style.css", nil)
	get(t, lh, "GET", "/nope", nil)
	if len(recs) != 2 || recs[0].Bytes != int64(len("body{}")) || recs[0].Status != 200 || recs[1].Status != 404 {
		t.Errorf("records %+v", recs)
	}
	if !strings.Contains(buf.String(), "path=/style.css status=200 bytes=6") {
		t.Errorf("log %q", buf.String())
	}
}

func TestRunShutdown(t *testing.T) {
	dir := siteDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--dir", dir}, &syncWriter{w: &logs}, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr + "/nli.0123456789ab.wasm")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Content-Type") != "application/wasm" {
		t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown within 10 s")
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

func TestRunBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--dir", filepath.Join(t.TempDir(), "none")}, &out, nil); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("missing dir: %v", err)
	}
	if err := run(context.Background(), []string{"--bogus"}, &out, nil); err == nil {
		t.Error("unknown flag accepted")
	}
}
