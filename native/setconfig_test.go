// Tests of --set config overrides: values of every JSON kind, nested keys,
// errors that name the key, and convert --weights --set.

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nli-go/nli/model"
)

func TestApplySets(t *testing.T) {
	cfg, err := applySets(model.Tiny(), []string{"exec=film", "K=12", "train.head_lr_mult=0.2", "train.state_noise=false", `name="tiny-x"`, "search.starts=3"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Exec != "film" || cfg.K != 12 || cfg.Train.HeadLRMult != 0.2 || cfg.Train.StateNoise || cfg.Name != "tiny-x" || cfg.Search.Starts != 3 {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if want := model.Tiny(); cfg.Train.LR != want.Train.LR || cfg.D != want.D {
		t.Fatalf("fields not named changed: lr %g d %d", cfg.Train.LR, cfg.D)
	}
	if same, err := applySets(model.Tiny(), nil); err != nil || same != model.Tiny() {
		t.Fatalf("no sets: %+v, %v", same, err)
	}
	for _, tc := range []struct{ set, want string }{
		{"train.head_lr=0.2", `unknown field "head_lr"`},
		{"trian.lr=1", `"trian" is not a section`},
		{"K=1.5", "cannot unmarshal number 1.5"},
		{"exec=res", `exec = "res"`},
		{"train.lr=-1", "train.lr"},
		{"K.x=1", `"K" is not a section`},
	} {
		_, err := applySets(model.Tiny(), []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: error %v, want one mentioning %s", tc.set, err, tc.want)
		}
	}
	var sf setFlags
	for _, bad := range []string{"lr", "=3", " =1"} {
		if err := sf.Set(bad); err == nil {
			t.Errorf("--set %q accepted", bad)
		}
	}
}

func TestTrainSetFlag(t *testing.T) {
	dir := t.TempDir()
	var out, errb strings.Builder
	args := []string{"train", "--split", "comp-i", "--config", "tiny", "--steps", "2", "--out", dir, "--quiet", "--set", "exec=film", "--set", "train.warmup=3"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("train --set: exit %d (%s)", code, errb.String())
	}
	cfg, err := loadConfig(dir + "/" + configFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Exec != "film" || cfg.Train.Warmup != 3 {
		t.Fatalf("config.json does not carry the overrides: exec %q warmup %d", cfg.Exec, cfg.Train.Warmup)
	}
	errb.Reset()
	code := run([]string{"train", "--split", "comp-i", "--config", "tiny", "--steps", "2", "--out", dir, "--resume", "--set", "K=8"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--set with --resume") {
		t.Fatalf("--set with --resume: exit %d, %q", code, errb.String())
	}
}

// TestTrainSplitMetrics: with train.split_every, the step after each split
// point is logged with its split event (made or skipped, with the reason).
func TestTrainSplitMetrics(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "train", "--split", "comp-i", "--config", "tiny", "--steps", "5", "--batch", "4", "--log-every", "100", "--out", dir, "--quiet",
		"--set", "train.split_every=2", "--set", "train.split_start=1", "--set", "train.split_end=1")
	data, err := os.ReadFile(filepath.Join(dir, metricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, rec := range jsonLines[struct {
		Step  int               `json:"step"`
		Split *model.SplitEvent `json:"split"`
	}](t, data) {
		if rec.Split != nil {
			if rec.Split.Step != rec.Step-1 || rec.Split.Skipped == "" && rec.Split.New == 0 {
				t.Errorf("step %d: split record %+v", rec.Step, rec.Split)
			}
			steps = append(steps, rec.Step)
		}
	}
	if !slices.Equal(steps, []int{3, 5}) {
		t.Errorf("split records at steps %v, want [3 5] (splits before steps 2 and 4, 0-based)", steps)
	}
	bad := filepath.Join(dir, "bad")
	if code, _, errs := runCLI(t, "train", "--split", "comp-i", "--config", "tiny", "--steps", "2", "--out", bad, "--set", "train.split_end=2"); code != 2 || !strings.Contains(errs, "train.split_end") {
		t.Errorf("split_end 2: exit %d, %q", code, errs)
	}
}

// TestConvertSearchSettings: convert --weights --set rewrites only the
// search section of a weights file; the tensors, their hash and the rest of
// the config stay, and bad combinations are refused.
func TestConvertSearchSettings(t *testing.T) {
	dir := t.TempDir()
	in, out := "../weights/shift-l.nliw.sz", filepath.Join(dir, "w.nliw.sz")
	mustRun(t, "convert", "--weights", in, "--set", "search.lr=0.3", "--set", "search.sigma=0.75", "--out", out)
	a, err := model.ReadWeightsFile(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.ReadWeightsFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := model.ParseConfig(a.Config)
	cb, err := model.ParseConfig(b.Config)
	if err != nil {
		t.Fatal(err)
	}
	want := ca
	want.Search.LR, want.Search.Sigma = 0.3, 0.75
	if cb != want {
		t.Errorf("config after convert --set:\n%+v\nwant\n%+v", cb, want)
	}
	if a.SHA256 != b.SHA256 || len(a.Tensors) != len(b.Tensors) || a.Provenance.Seed != b.Provenance.Seed {
		t.Errorf("tensors or provenance changed: sha %s → %s", a.SHA256, b.SHA256)
	}
	if !strings.Contains(b.Provenance.Command, "search.lr=0.3") {
		t.Errorf("provenance command %q does not record the change", b.Provenance.Command)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", "--weights", in, "--out", out}, "at least one --set"},
		{[]string{"convert", "--weights", in, "--set", "train.lr=1", "--out", out}, "only search.*"},
		{[]string{"convert", "--weights", in, "--set", "search.lr=0", "--out", out}, "search.lr"},
		{[]string{"convert", "--bundle", dir, "--set", "search.lr=1", "--out", out}, "--set goes with --weights"},
		{[]string{"convert", "--weights", filepath.Join(dir, "none.nliw.sz"), "--set", "search.lr=1", "--out", out}, "none.nliw.sz"},
	} {
		if code, _, errs := runCLI(t, c.args...); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("native %v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
	// A refused rewrite leaves the earlier output as it was.
	if c, err := model.ReadWeightsFile(out); err != nil || c.SHA256 != a.SHA256 {
		t.Errorf("output after refused rewrites: %v", err)
	}
}

// TestConvertCheckpoint: convert --weights of a training checkpoint writes its
// model parameters alone, bit for bit, as a weights file that records the step.
func TestConvertCheckpoint(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	mustRun(t, "train", "--split", "shift-l", "--config", "tiny", "--steps", "6", "--seed", "3",
		"--batch", "4", "--save-every", "2", "--quiet", "--out", run, "--stop-after", "4")
	ck := filepath.Join(run, checkpointFile)
	out := filepath.Join(dir, "w.nliw.sz")
	if got := mustRun(t, "convert", "--weights", ck, "--out", out); !strings.Contains(got, "at step 4") {
		t.Errorf("convert of a checkpoint: %q", got)
	}
	a, err := model.ReadWeightsFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.ReadWeightsFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != model.WeightsKindWeights || len(b.Extra) != 0 {
		t.Errorf("converted file: kind %q, extra %q; want weights and none", b.Kind, b.Extra)
	}
	if b.Provenance.Steps != 4 || b.Provenance.Seed != 3 || !strings.Contains(b.Provenance.Command, "checkpoint (step 4)") {
		t.Errorf("provenance %+v", b.Provenance)
	}
	cfg, _ := model.ParseConfig(a.Config)
	specs := model.ParamSpecs(cfg)
	if len(b.Tensors) != len(specs) || len(a.Tensors) <= len(specs) {
		t.Fatalf("tensors: checkpoint %d, weights %d, parameters %d", len(a.Tensors), len(b.Tensors), len(specs))
	}
	for _, s := range specs {
		x, ok1 := a.Tensor(s.Name)
		y, ok2 := b.Tensor(s.Name)
		if !ok1 || !ok2 || !slices.Equal(x.Data, y.Data) {
			t.Errorf("parameter %s differs between checkpoint and weights (%v %v)", s.Name, ok1, ok2)
		}
	}
	// A weights file (not a checkpoint) still needs a --set.
	if code, _, errs := runCLI(t, "convert", "--weights", out, "--out", filepath.Join(dir, "x.nliw.sz")); code != 2 || !strings.Contains(errs, "at least one --set") {
		t.Errorf("convert of a weights file without --set: exit %d, %q", code, errs)
	}
}
