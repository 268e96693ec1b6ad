// Tests of native convert --bundle: a raw bundle (export_torch.py's format)
// holding recipe.py's parameters under their state_dict names becomes a
// weights file with the same tensors, and one that does not fit the config
// is refused.

package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nli-go/nli/model"
)

// TestConvertBundleSym converts the exec sym parity model (the parameters
// that torch_parity.py loaded into recipe.py's NLI with --exec sym, a strict
// load_state_dict: recipe.py's names and shapes) and reads it back.
func TestConvertBundleSym(t *testing.T) {
	const parity = "../model/testdata/parity/sym_inputs"
	var meta struct {
		Config  model.Config `json:"config"`
		Tensors []struct {
			Name   string `json:"name"`
			Shape  []int  `json:"shape"`
			Offset int    `json:"offset"`
		} `json:"tensors"`
	}
	j, err := os.ReadFile(parity + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &meta); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(parity + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	if !meta.Config.Sym() {
		t.Fatalf("%s: exec %q, want sym", parity, meta.Config.Exec)
	}
	// The bundle: the same data file, the manifest without the batch and noise.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := map[string]any{"source": "recipe.py", "torch": "test", "split": "shift-l", "steps": 1, "seed": 7, "command": "test"}
	var names []string
	var tensors []any
	offset := map[string]int{}
	for _, e := range meta.Tensors {
		if e.Name == "x" || e.Name == "y" || strings.HasPrefix(e.Name, "noise_") {
			continue
		}
		names = append(names, e.Name)
		tensors = append(tensors, e)
		offset[e.Name] = e.Offset
	}
	bundle["tensors"] = tensors
	writeJSON := func(path string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON(filepath.Join(dir, "weights.json"), bundle)
	cfgPath := filepath.Join(dir, "sym.json")
	writeJSON(cfgPath, meta.Config)

	out := filepath.Join(dir, "sym.nliw.sz")
	mustRun(t, "convert", "--bundle", dir, "--config", cfgPath, "--out", out)
	wf, err := model.ReadWeightsFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ts := range wf.Tensors {
		got = append(got, ts.Name)
	}
	if !slices.Equal(got, names) || !slices.Contains(got, "symW") || !slices.Contains(got, "symB") {
		t.Fatalf("tensors %v, want the bundle's %v (with symW, symB)", got, names)
	}
	for _, ts := range wf.Tensors {
		off := offset[ts.Name]
		for k, v := range ts.Data {
			if want := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(off+k):])); v != want {
				t.Fatalf("%s[%d] = %v, bundle %v", ts.Name, k, v, want)
			}
		}
	}
	if _, err := model.LoadModel(model.NewCPU(1), wf, out); err != nil {
		t.Fatal(err)
	}
	// The same bundle under the MLP interpreter's config lacks exe.*.
	mlp := meta.Config
	mlp.Exec = ""
	writeJSON(cfgPath, mlp)
	if code, _, errs := runCLI(t, "convert", "--bundle", dir, "--config", cfgPath, "--out", out); code != 2 || !strings.Contains(errs, `missing tensor "exe.0.weight_s"`) {
		t.Errorf("sym bundle with an mlp config: exit %d, stderr %q", code, errs)
	}
}
