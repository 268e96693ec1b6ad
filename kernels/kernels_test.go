// Checks, without CUDA, that every committed PTX is current with its source
// and defines the kernels Modules lists.

package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPTXCurrent fails when a .ptx is missing, stale against its .cu (the
// SHA-256 in its first line differs) or has no source, or when the embedded
// text differs from the file. Fix: ./build.sh kernels where nvcc exists.
func TestPTXCurrent(t *testing.T) {
	sources, err := filepath.Glob("*.cu")
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) == 0 {
		t.Fatal("no kernels/*.cu")
	}
	embedded := map[string]string{}
	for _, m := range Modules() {
		embedded[m.Name] = m.PTX
	}
	for _, src := range sources {
		name := strings.TrimSuffix(src, ".cu")
		code, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(code)
		want := HeaderPrefix + src + " sha256 " + hex.EncodeToString(sum[:])
		ptx, err := os.ReadFile(name + ".ptx")
		if err != nil {
			t.Errorf("%s: no PTX (run ./build.sh kernels where nvcc exists): %v", src, err)
			continue
		}
		first, _, _ := strings.Cut(string(ptx), "\n")
		if first != want {
			t.Errorf("%s.ptx is stale against %s (run ./build.sh kernels where nvcc exists):\n got  %q\n want %q", name, src, first, want)
		}
		if e, ok := embedded[name]; !ok {
			t.Errorf("%s: not in Modules()", src)
		} else if e != string(ptx) {
			t.Errorf("%s.ptx: embedded text differs from the file", name)
		}
	}
	ptxs, _ := filepath.Glob("*.ptx")
	for _, p := range ptxs {
		if _, err := os.Stat(strings.TrimSuffix(p, ".ptx") + ".cu"); err != nil {
			t.Errorf("%s has no source .cu", p)
		}
	}
}

var (
	sourceKernel = regexp.MustCompile(`extern "C" __global__ void (\w+)\(`)
	ptxEntry     = regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(`)
)

// TestKernelLists checks that each module's Kernels are exactly the
// extern "C" kernels of its source and the entries of its PTX.
func TestKernelLists(t *testing.T) {
	for _, m := range Modules() {
		code, err := os.ReadFile(m.Name + ".cu")
		if err != nil {
			t.Fatal(err)
		}
		var src, ptx []string
		for _, s := range sourceKernel.FindAllStringSubmatch(string(code), -1) {
			src = append(src, s[1])
		}
		for _, s := range ptxEntry.FindAllStringSubmatch(m.PTX, -1) {
			ptx = append(ptx, s[1])
		}
		want := slices.Sorted(slices.Values(m.Kernels))
		slices.Sort(src)
		slices.Sort(ptx)
		if !slices.Equal(src, want) {
			t.Errorf("%s.cu defines %v, Modules lists %v", m.Name, src, want)
		}
		if !slices.Equal(ptx, want) {
			t.Errorf("%s.ptx has entries %v, Modules lists %v", m.Name, ptx, want)
		}
	}
}
