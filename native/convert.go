// native convert: turns a raw weights bundle exported from the PyTorch
// reference (docs/experiments/export_torch.py: weights.json + weights.bin)
// into a .nliw.sz weights file, checking every name and shape against the
// config; with --weights and --set, rewrites a weights file's search
// settings; with --weights of a training checkpoint, writes its model
// weights alone (no optimiser state) as a weights file.

package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nli-go/nli/model"
)

// bundleMeta is the manifest export_torch.py writes.
type bundleMeta struct {
	Source  string `json:"source"`
	Torch   string `json:"torch"`
	Split   string `json:"split"`
	Steps   int    `json:"steps"`
	Seed    uint64 `json:"seed"`
	Command string `json:"command"`
	Tensors []struct {
		Name   string `json:"name"`
		Shape  []int  `json:"shape"`
		Offset int    `json:"offset"`
	} `json:"tensors"`
}

func cmdConvert(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", stderr)
	dir := fs.String("bundle", "", "folder with weights.json and weights.bin (required)")
	cfgName := fs.String("config", "default", "config preset or JSON file the weights belong to")
	out := fs.String("out", "", "output .nliw.sz file (required)")
	f16 := fs.Bool("f16", false, "store float16 on disk")
	from := fs.String("weights", "", "instead of --bundle: a .nliw.sz file whose search settings --set changes (tensors, provenance and hash kept), or a training checkpoint whose model weights become a weights file (optimiser state dropped; --set optional)")
	var sets setFlags
	fs.Var(&sets, "set", "with --weights: "+searchSetUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from != "" {
		if *dir != "" || *out == "" {
			return fmt.Errorf("--weights takes --out, and no --bundle")
		}
		wf, err := model.ReadWeightsFile(*from)
		if err != nil {
			return err
		}
		if wf.Kind == model.WeightsKindCheckpoint {
			return checkpointWeights(wf, *from, *out, sets, *f16, stdout)
		}
		if len(sets) == 0 {
			return fmt.Errorf("--weights %s is a weights file: give at least one --set (only a checkpoint converts without one)", *from)
		}
		return rewriteSearch(wf, *from, *out, sets, *f16, stdout)
	}
	if len(sets) > 0 {
		return fmt.Errorf("--set goes with --weights (a trained file), not --bundle (use --config for the bundle's config)")
	}
	if *dir == "" || *out == "" {
		return fmt.Errorf("--bundle and --out are required")
	}
	cfg, err := loadConfig(*cfgName)
	if err != nil {
		return err
	}
	mpath := filepath.Join(*dir, "weights.json")
	mb, err := os.ReadFile(mpath)
	if err != nil {
		return err
	}
	var meta bundleMeta
	if err := json.Unmarshal(mb, &meta); err != nil {
		return fmt.Errorf("%s: %w", mpath, err)
	}
	bpath := filepath.Join(*dir, "weights.bin")
	raw, err := os.ReadFile(bpath)
	if err != nil {
		return err
	}
	var ts []model.NamedTensor
	for _, e := range meta.Tensors {
		n := 1
		for _, d := range e.Shape {
			if d <= 0 || d > 1<<24 {
				return fmt.Errorf("%s: tensor %q: bad shape %v", mpath, e.Name, e.Shape)
			}
			n *= d
		}
		if e.Offset < 0 || 4*(e.Offset+n) > len(raw) {
			return fmt.Errorf("%s: tensor %q lies outside %s (%d bytes)", mpath, e.Name, bpath, len(raw))
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(e.Offset+i):]))
		}
		ts = append(ts, model.NamedTensor{Name: e.Name, Shape: e.Shape, Data: d})
	}
	m, err := model.NewModel(model.NewCPU(1), cfg)
	if err != nil {
		return err
	}
	if err := m.P.Import(ts, false, mpath); err != nil {
		return err
	}
	wf, err := m.Weights(model.Provenance{
		Split: meta.Split, Steps: meta.Steps, Seed: meta.Seed, GitCommit: gitCommit(),
		Created: time.Now().UTC().Format(time.RFC3339),
		Command: fmt.Sprintf("%s (trained by %s, torch %s); converted by native convert", meta.Command, meta.Source, meta.Torch),
	})
	if err != nil {
		return err
	}
	dt := model.DTypeF32
	if *f16 {
		dt = model.DTypeF16
	}
	if err := model.WriteWeightsFile(*out, wf, dt); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d tensors, %s)\n", *out, len(ts), dt)
	return nil
}

// checkpointWeights writes the model weights of the training checkpoint wf
// (read from in) as a weights file: the parameters only, checked against the
// config by loading them, with the checkpoint's provenance (split, step,
// seed, command) and a note of the conversion; sets may change the search
// settings as rewriteSearch's do.
func checkpointWeights(wf *model.WeightsFile, in, out string, sets []string, f16 bool, stdout io.Writer) error {
	m, err := model.LoadModel(model.NewCPU(1), wf, in)
	if err != nil {
		return err
	}
	if len(sets) > 0 {
		if m.Cfg.Search, err = applySearchSets(m.Cfg, sets); err != nil {
			return err
		}
	}
	prov := wf.Provenance
	prov.Command += fmt.Sprintf("; weights of this checkpoint (step %d) written by native convert --weights", prov.Steps)
	if len(sets) > 0 {
		prov.Command += " --set " + strings.Join(sets, " --set ")
	}
	w, err := m.Weights(prov)
	if err != nil {
		return err
	}
	dt := model.DTypeF32
	if f16 {
		dt = model.DTypeF16
	}
	if err := model.WriteWeightsFile(out, w, dt); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d tensors of checkpoint %s at step %d, %s)\n", out, len(w.Tensors), in, prov.Steps, dt)
	return nil
}

// rewriteSearch writes the weights file wf (read from in) with its config's
// search section changed by sets (search.* keys only), everything else as it
// was.
func rewriteSearch(wf *model.WeightsFile, in, out string, sets []string, f16 bool, stdout io.Writer) error {
	cfg, err := model.ParseConfig(wf.Config)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if cfg.Search, err = applySearchSets(cfg, sets); err != nil {
		return err
	}
	if wf.Config, err = json.Marshal(cfg); err != nil {
		return err
	}
	wf.Provenance.Command += fmt.Sprintf("; search settings changed by native convert --set %s", strings.Join(sets, " --set "))
	dt := model.DTypeF32
	if f16 {
		dt = model.DTypeF16
	}
	if err := model.WriteWeightsFile(out, wf, dt); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (search: lr %g, sigma %g, %d starts × %d steps)\n", out, cfg.Search.LR, cfg.Search.Sigma, cfg.Search.Starts, cfg.Search.Steps)
	return nil
}
