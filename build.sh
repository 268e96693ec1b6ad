#!/usr/bin/env bash
# build.sh: build, test and serve the NLI project. Run ./build.sh help.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'TXT'
usage: ./build.sh <command>

  test      every test: gofmt, go vet, go test -race, the wasm build of model/
  native    the CUDA-enabled native binary (bin/native; needs CUDA_HOME)
  kernels   regenerate kernels/*.ptx from kernels/*.cu (needs nvcc)
  kernels-check  syntax-check kernels/*.cu with the host C++ compiler (no nvcc needed)
  wasm      the WebAssembly module (bin/wasm/nli.wasm)
  site      the static site with the shipped weights (--out DIR, default bin/site)
  serve     build the site and serve it (--addr HOST:PORT, default 127.0.0.1:8080)
TXT
}

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: Go is not installed (need Go 1.26 or newer: https://go.dev/dl/)" >&2
    exit 1
  fi
}

cmd_test() {
  need_go
  go mod download
  echo "== gofmt"
  bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
  if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi
  echo "== go vet"
  go vet ./...
  echo "== wasm build of model/"
  GOOS=js GOARCH=wasm go build ./model/...
  echo "== go vet (js/wasm)"
  GOOS=js GOARCH=wasm go vet ./wasm/
  echo "== go test (js/wasm, under node)"
  need_node
  GOOS=js GOARCH=wasm go test -count=1 -timeout 20m -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/
  echo "== site for the browser test"
  ensure_chromium
  cmd_site --out bin/site-test >/dev/null
  echo "== go test -race"
  NLI_SITE_DIR="$PWD/bin/site-test" go test -race -count=1 -timeout 30m ./...
}

need_node() {
  if ! command -v node >/dev/null 2>&1; then
    echo "build.sh: node is not installed (the js/wasm tests run under node: apt-get install nodejs)" >&2
    exit 1
  fi
}

# ensure_chromium installs Debian's chromium for the browser test when it is
# missing and we can (root with apt-get); otherwise the test skips and says why.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "build.sh: could not install chromium; the browser test will skip" >&2
  else
    echo "build.sh: chromium is missing and we are not root; the browser test will skip" >&2
  fi
}

# cmd_wasm builds the WebAssembly module into DIR (default bin/wasm) as
# nli.wasm, with the toolchain's wasm_exec.js beside it.
cmd_wasm() {
  need_go
  local out=bin/wasm
  while [ $# -gt 0 ]; do
    case "$1" in
      --out) out="$2"; shift 2 ;;
      *) echo "build.sh wasm: unknown flag $1" >&2; exit 2 ;;
    esac
  done
  mkdir -p "$out"
  GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$out/nli.wasm" ./wasm
  cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$out/wasm_exec.js"
  echo "$out/nli.wasm ($(wc -c <"$out/nli.wasm") bytes)"
}

# sha256_of prints the hex SHA-256 of a file.
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# SITE_DEFAULT_MODEL is the model the page loads first (docs/BROWSER.md says
# why this one); ?model=ID in the page's URL picks another.
SITE_DEFAULT_MODEL=${SITE_DEFAULT_MODEL:-shift-l}

# cmd_site assembles the static site into DIR (default bin/site): the sources
# of site/, the module under a content-hashed name (plus a .gz sibling), the
# toolchain's wasm_exec.js, every weights/*.nliw.sz under a content-hashed
# name, and manifest.json naming them. Hashed names are cached for a year.
cmd_site() {
  need_go
  local out=bin/site
  while [ $# -gt 0 ]; do
    case "$1" in
      --out) out="$2"; shift 2 ;;
      *) echo "build.sh site: unknown flag $1" >&2; exit 2 ;;
    esac
  done
  local tmp
  tmp=$(mktemp -d)
  cmd_wasm --out "$tmp" >/dev/null
  rm -rf "$out"
  mkdir -p "$out/weights"
  cp site/index.html site/style.css site/*.js "$out/"
  cp "$tmp/wasm_exec.js" "$out/wasm_exec.js"
  local wh wasm
  wh=$(sha256_of "$tmp/nli.wasm")
  wasm="nli.${wh:0:12}.wasm"
  cp "$tmp/nli.wasm" "$out/$wasm"
  gzip -9 -n -c "$out/$wasm" >"$out/$wasm.gz"
  rm -rf "$tmp"
  # Every weights/<split>[-variant].nliw.sz ships; the page lists them by
  # split and loads $SITE_DEFAULT_MODEL first (when shipped).
  local models="" f id h file split s
  for f in weights/*.nliw.sz; do
    [ -e "$f" ] || continue
    id=$(basename "$f" .nliw.sz)
    split=""
    for s in shift-l shift-p comp-i; do
      case "$id" in "$s" | "$s"-*) split=$s ;; esac
    done
    if [ -z "$split" ]; then
      echo "build.sh site: skipping $f (its name does not start with a split: shift-l, shift-p, comp-i)" >&2
      continue
    fi
    h=$(sha256_of "$f")
    file="weights/$id.${h:0:12}.nliw.sz"
    cp "$f" "$out/$file"
    [ -n "$models" ] && models="$models,"
    models="$models
    {\"id\": \"$id\", \"split\": \"$split\", \"file\": \"$file\", \"bytes\": $(wc -c <"$f"), \"sha256\": \"$h\"}"
  done
  cat >"$out/manifest.json" <<JSON
{
  "wasm": "$wasm",
  "wasmBytes": $(wc -c <"$out/$wasm"),
  "wasmGzipBytes": $(wc -c <"$out/$wasm.gz"),
  "go": "$(go env GOVERSION)",
  "default": "$SITE_DEFAULT_MODEL",
  "models": [$models
  ]
}
JSON
  echo "site in $out: $(du -sb "$out" | cut -f1) bytes"
}

# cmd_serve builds the site and serves it until Ctrl-C.
cmd_serve() {
  local addr=127.0.0.1:8080
  while [ $# -gt 0 ]; do
    case "$1" in
      --addr) addr="$2"; shift 2 ;;
      --addr=*) addr="${1#--addr=}"; shift ;;
      *) echo "build.sh serve: unknown flag $1" >&2; exit 2 ;;
    esac
  done
  cmd_site --out bin/site
  go build -o bin/serve ./serve
  exec bin/serve --addr "$addr" --dir bin/site
}

# cuda_home prints the absolute CUDA_HOME (default /usr/local/cuda), or fails
# naming CUDA_HOME when its include/cuda.h is missing.
cuda_home() {
  local cuda="${CUDA_HOME:-/usr/local/cuda}"
  if [ ! -f "$cuda/include/cuda.h" ]; then
    echo "build.sh $1: $cuda/include/cuda.h not found: set CUDA_HOME to a CUDA install (the folder holding include/ and lib64/; default /usr/local/cuda). Without CUDA, copy include/ and lib64/stubs/ of a CUDA 13 install into an ignored folder such as .cuda/ and run CUDA_HOME=.cuda ./build.sh $1 (docs/CUDA.md)" >&2
    exit 1
  fi
  (cd "$cuda" && pwd)
}

# cmd_native builds bin/native and the CUDA test binary bin/cuda.test with the
# cuda tag, linking against $CUDA_HOME's libraries (the stubs suffice: the
# binaries find the real libcuda and libcublas where they run).
cmd_native() {
  need_go
  local cuda
  cuda=$(cuda_home native)
  export CGO_ENABLED=1
  export CGO_CFLAGS="-I$PWD/kernels/compat -I$cuda/include ${CGO_CFLAGS:-}"
  export CGO_LDFLAGS="-L$cuda/lib64/stubs -L$cuda/lib64 ${CGO_LDFLAGS:-}"
  mkdir -p bin
  echo "== go vet -tags cuda (CUDA_HOME=$cuda)"
  # unsafeptr is off: device pointers are integers that cuBLAS takes as pointers.
  go vet -tags cuda -unsafeptr=false ./native/... ./kernels/...
  echo "== bin/native"
  go build -tags cuda -o bin/native ./native
  echo "== bin/cuda.test"
  go test -c -tags cuda -o bin/cuda.test ./native/cuda
  echo "built bin/native and bin/cuda.test; run where the driver is, e.g. LD_LIBRARY_PATH=$cuda/lib64 bin/cuda.test -test.v"
}

# cmd_kernels regenerates kernels/*.ptx from kernels/*.cu with nvcc, each
# with a first line recording its source's SHA-256 (kernels/kernels_test.go
# checks it). The flags must match kernels.NVCCFlags.
cmd_kernels() {
  local cuda="${CUDA_HOME:-/usr/local/cuda}" nvcc flags tmp src name hash
  nvcc=$(command -v nvcc || true)
  if [ -z "$nvcc" ] && [ -x "$cuda/bin/nvcc" ]; then nvcc="$cuda/bin/nvcc"; fi
  if [ -z "$nvcc" ]; then
    echo "build.sh kernels: nvcc not found (not on PATH, not in \$CUDA_HOME/bin = $cuda/bin); the committed kernels/*.ptx are left as they are" >&2
    exit 1
  fi
  flags=$(sed -n 's/^const NVCCFlags = "\(.*\)"$/\1/p' kernels/kernels.go)
  if [ -z "$flags" ]; then echo "build.sh kernels: no NVCCFlags in kernels/kernels.go" >&2; exit 1; fi
  tmp=$(mktemp -d)
  for src in kernels/*.cu; do
    name=$(basename "$src" .cu)
    hash=$(sha256sum "$src" | cut -d' ' -f1)
    echo "== $nvcc $flags $src"
    # shellcheck disable=SC2086
    "$nvcc" $flags -o "$tmp/$name.ptx" "$src"
    { echo "// nli-kernels: source $name.cu sha256 $hash"; echo "// nvcc $flags"; cat "$tmp/$name.ptx"; } >"kernels/$name.ptx"
  done
  rm -rf "$tmp"
  echo "wrote $(ls kernels/*.ptx | tr '\n' ' ')"
}

cmd_kernels_check() {
  local cxx=${CXX:-g++} src status=0
  command -v "$cxx" >/dev/null 2>&1 || { echo "build.sh kernels-check: no C++ compiler ($cxx; set CXX)" >&2; exit 1; }
  for src in kernels/*.cu; do
    echo "== $cxx -fsyntax-only $src"
    "$cxx" -std=c++17 -fsyntax-only -include kernels/hostcheck.h -x c++ "$src" || status=1
  done
  [ $status = 0 ] && echo "kernels/*.cu parse (host syntax check only; the PTX needs nvcc: ./build.sh kernels)"
  return $status
}

not_yet() {
  echo "build.sh $1: not built yet (see the open issues)" >&2
  exit 2
}

case "${1:-help}" in
  test) shift; cmd_test "$@" ;;
  native) shift; cmd_native "$@" ;;
  kernels) shift; cmd_kernels "$@" ;;
  kernels-check) shift; cmd_kernels_check "$@" ;;
  wasm) shift; cmd_wasm "$@" ;;
  site) shift; cmd_site "$@" ;;
  serve) shift; cmd_serve "$@" ;;
  help|-h|--help) usage ;;
  *) echo "build.sh: unknown command $1" >&2; usage >&2; exit 2 ;;
esac
