//go:build js && wasm

// Command wasm is the NLI core compiled to WebAssembly for the browser. It
// installs the Promise-based API object globalThis.nli (api.go; documented
// in docs/BROWSER.md), calls globalThis.nliReady() when the page or worker
// defined it, and then stays alive serving calls. It is meant to run inside
// a Web Worker (site/worker.js): Go's wasm is single-threaded, and a search
// on the page's own thread would freeze the page.
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags=-s -o nli.wasm ./wasm
package main

import (
	"fmt"

	"github.com/hack-pad/safejs"
)

func main() {
	g := safejs.Global()
	if err := install(g, nil); err != nil {
		panic(fmt.Sprintf("wasm: install the nli API: %v", err))
	}
	if ready, ok := callback(g, "nliReady"); ok {
		_, _ = ready.Invoke() // the host reports its own errors
	}
	select {}
}
