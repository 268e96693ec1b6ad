// Command serve is a small static file server for the NLI site (or any
// folder): correct MIME types (application/wasm included, which
// WebAssembly.instantiateStreaming requires), precompressed .gz siblings
// served with Content-Encoding: gzip, long-lived caching for content-hashed
// file names and revalidation for the rest, one log line per request, and a
// clean shutdown on Ctrl-C.
//
//	go run ./serve --addr 127.0.0.1:8080 --dir bin/site
//
// ./build.sh serve builds the site and runs this.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
		os.Exit(2)
	}
}

// observeRequests, when set (by tests, before run), sees every request's
// log record.
var observeRequests func(requestLog)

// run parses flags, serves until ctx is done, then shuts down gracefully
// (in-flight requests get --grace, 5 s by default, then connections close). If ready is non-nil it receives the
// listening address once the server accepts connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address HOST:PORT (port 0 picks a free one)")
	dir := fs.String("dir", "bin/site", "folder to serve")
	quiet := fs.Bool("quiet", false, "do not log each request")
	grace := fs.Duration("grace", 5*time.Second, "on shutdown, how long in-flight requests may finish")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	st, err := os.Stat(*dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("--dir %s: not a folder (build the site with ./build.sh site)", *dir)
	}
	if _, err := os.Stat(filepath.Join(*dir, "index.html")); err != nil {
		logger.Warn("no index.html in the served folder", "dir", *dir)
	}
	h, err := newHandler(*dir)
	if err != nil {
		return err
	}
	reqLogger := logger
	if *quiet {
		reqLogger = nil
	}
	handler := logRequests(reqLogger, h, observeRequests)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", "dir", *dir, "url", "http://"+displayAddr(ln.Addr())+"/")
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running, or connections a browser opened ahead of
		// time and never used: close them.
		logger.Info("closing connections still open after the grace period", "grace", *grace)
		if err := srv.Close(); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// displayAddr turns an unspecified listen host (0.0.0.0, ::) into one a
// browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
