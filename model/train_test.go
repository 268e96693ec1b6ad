// Tests of training: the loss falls, checkpoints resume bit for bit, the
// step allocates nothing after warm-up; and benchmarks of one training step.

package model

import (
	"bytes"
	"cmp"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// smallConfig is Tiny with a smaller batch, to keep -race runs short.
func smallConfig() Config {
	c := Tiny()
	c.Train.Batch = 8
	return c
}

// withFiLM is c with the FiLM-conditioned interpreter.
func withFiLM(c Config) Config {
	c.Name += "-film"
	c.Exec = ExecFiLM
	return c
}

// withSym is c with the symbol-selected interpreter (a weight set per
// symbol) and K 8: every symbol's map runs on every row, so K 16 would
// double the cost of the tests (-race runs).
func withSym(c Config) Config {
	c.Name += "-sym"
	c.Exec = ExecSym
	c.K = 8
	return c
}

// withRecipe is c with every recipe option of docs/experiments/recipe.py on.
func withRecipe(c Config) Config {
	c.Name += "-recipe"
	c.Train.Warmup = 4
	c.Train.LambdaWarm = 0.5
	c.Train.NoiseRamp = 0.4
	c.Train.HeadLRMult = 0.2
	return c
}

func newTestTrainer(t testing.TB, b Backend, cfg Config, steps int, seed uint64) *Trainer {
	t.Helper()
	m, err := NewModel(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(seed)
	tr, err := NewTrainer(m, SplitShiftL, steps, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// TestTrainFitsFixedBatch checks that the optimisation works end to end:
// on one fixed batch with fixed noise and temperatures, the loss falls.
// (With the SPEC schedule a fresh run's NLL does not fall within a few
// hundred steps, in the PyTorch reference too; see docs/DESIGN.md.)
func TestTrainFitsFixedBatch(t *testing.T) {
	for _, cfg := range []Config{smallConfig(), withSym(smallConfig())} {
		t.Run(cfg.Name, func(t *testing.T) { testTrainFitsFixedBatch(t, cfg) })
	}
}

func testTrainFitsFixedBatch(t *testing.T, cfg Config) {
	tr := newTestTrainer(t, NewCPU(0), cfg, 1000, 1)
	m, b := tr.M, tr.M.B
	hx, hy := make([]int32, tr.x.Len()), make([]int32, tr.y.Len())
	SampleBatch(tr.rng, tr.progs, cfg.Train.Batch, cfg.Train.Pairs, hx, hy, nil)
	b.UploadInt(tr.x, hx)
	b.UploadInt(tr.y, hy)
	b.Gumbel(tr.nz, 1)
	b.Gumbel(tr.ns, 2)
	var first, last float64
	const steps = 40
	for i := 1; i <= steps; i++ {
		tr.tp.Reset()
		m.P.ZeroGrad()
		loss, nll, _ := tr.Loss(1, 1)
		tr.tp.Backward(loss)
		scale := math.Min(1, 1/(m.P.GradNorm()+1e-6))
		m.P.Step(3e-3, 0.9, 0.999, 1e-8, 0, scale, i)
		v := tr.tp.Scalar(nll)
		if math.IsNaN(v) {
			t.Fatalf("step %d: NLL is NaN", i)
		}
		if i == 1 {
			first = v
		}
		last = v
	}
	t.Logf("NLL on a fixed batch: step 1 %.3f, step %d %.3f", first, steps, last)
	if !(last < 0.8*first) {
		t.Errorf("NLL on a fixed batch did not fall: %.3f → %.3f", first, last)
	}
}

// TestResumeBitExact trains 6 steps straight and 3 + checkpoint + 3, and
// expects identical losses and parameters, bit for bit.
func TestResumeBitExact(t *testing.T) {
	for _, cfg := range []Config{smallConfig(), withFiLM(smallConfig()), withRecipe(withFiLM(smallConfig())), withRecipe(withSym(smallConfig()))} {
		t.Run(cfg.Name, func(t *testing.T) { testResumeBitExact(t, cfg) })
	}
}

// resumeFromCheckpoint encodes tr's checkpoint, decodes it and resumes it
// on b, as a stopped run and `native train --resume` do.
func resumeFromCheckpoint(t *testing.T, tr *Trainer, b Backend) *Trainer {
	t.Helper()
	ck, err := tr.Checkpoint(Provenance{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := EncodeWeights(&buf, ck, DTypeF32); err != nil {
		t.Fatal(err)
	}
	wf, err := DecodeWeights(&buf, "ck")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ResumeTrainer(b, wf, "ck")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func testResumeBitExact(t *testing.T, cfg Config) {
	b := NewCPU(2)
	a := newTestTrainer(t, b, cfg, 6, 3)
	var straight []float64
	for i := 0; i < 6; i++ {
		st, err := a.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		straight = append(straight, st.Loss, st.GradNorm)
	}

	c := newTestTrainer(t, b, cfg, 6, 3)
	var resumed []float64
	for i := 0; i < 3; i++ {
		st, _ := c.TrainStep()
		resumed = append(resumed, st.Loss, st.GradNorm)
	}
	d := resumeFromCheckpoint(t, c, NewCPU(1)) // another worker count: still bit-exact
	for i := 0; i < 3; i++ {
		st, _ := d.TrainStep()
		resumed = append(resumed, st.Loss, st.GradNorm)
	}
	for i := range straight {
		if math.Float64bits(straight[i]) != math.Float64bits(resumed[i]) {
			t.Fatalf("value %d: straight %v, resumed %v", i, straight[i], resumed[i])
		}
	}
	pa, pd := a.M.P.Export(true), d.M.P.Export(true)
	for i := range pa {
		for j := range pa[i].Data {
			if math.Float32bits(pa[i].Data[j]) != math.Float32bits(pd[i].Data[j]) {
				t.Fatalf("%s[%d]: straight %v, resumed %v", pa[i].Name, j, pa[i].Data[j], pd[i].Data[j])
			}
		}
	}
}

func TestTrainStepAllocs(t *testing.T) {
	for _, cfg := range []Config{smallConfig(), withRecipe(withFiLM(smallConfig())), withSym(smallConfig())} {
		for _, w := range []int{1, 2} {
			tr := newTestTrainer(t, NewCPU(w), cfg, 100, 0)
			for i := 0; i < 2; i++ {
				if _, err := tr.TrainStep(); err != nil {
					t.Fatal(err)
				}
			}
			if n := testing.AllocsPerRun(3, func() { _, _ = tr.TrainStep() }); n != 0 {
				t.Errorf("%s workers=%d: TrainStep allocates %v times per step after warm-up", cfg.Name, w, n)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{Tiny(), Default(), withFiLM(Tiny()), withSym(Tiny())} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
	bad := Tiny()
	bad.Heads = 3
	bad.Train.LR = -1
	bad.Exec = "res"
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	bad.Train.Warmup = -1
	bad.Train.LambdaWarm = 1.5
	bad.Train.NoiseRamp = math.NaN()
	bad.Train.HeadLRMult = -2
	bad.Train.EncLRMult = math.Inf(1)
	err = bad.Validate()
	for _, want := range []string{"heads = 3", "train.lr", `exec = "res"`, "train.warmup", "train.lambda_warm", "train.noise_ramp", "train.head_lr_mult", "train.enc_lr_mult"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := ParseConfig([]byte(`{"name":"x","bogus":1}`)); err == nil {
		t.Error("unknown config field accepted")
	}
	split := withSym(Tiny())
	split.Train.SplitEvery = 10
	if err := split.Validate(); err != nil {
		t.Errorf("exec sym with symbol splitting: %v", err)
	}
	split.Train.SplitEta = 0.2
	if err := split.Validate(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("train.split_eta")) {
		t.Errorf("exec sym with train.split_eta: %v, want a train.split_eta error", err)
	}
	split.Train.SplitRoute = SplitRouteHead
	if err := split.Validate(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("train.split_eta")) {
		t.Errorf("exec sym, route head, with train.split_eta: %v, want a train.split_eta error", err)
	}
	// The map route: split_eta and split_delta allowed, split_alpha not.
	split.Train.SplitRoute, split.Train.SplitDelta = SplitRouteMap, 0.2
	if err := split.Validate(); err != nil {
		t.Errorf("exec sym, route map, split_eta 0.2, split_delta 0.2: %v", err)
	}
	split.Train.SplitEta = 0
	if err := split.Validate(); err != nil {
		t.Errorf("exec sym, route map, defaults: %v", err)
	}
	// The both route: split_eta and split_alpha allowed, split_delta not.
	both := split
	both.Train.SplitRoute, both.Train.SplitDelta, both.Train.SplitEta, both.Train.SplitAlpha = SplitRouteBoth, 0, 0.2, 2
	if err := both.Validate(); err != nil {
		t.Errorf("exec sym, route both, split_eta 0.2, split_alpha 2: %v", err)
	}
	both.Train.SplitDelta = 0.2
	if err := both.Validate(); err == nil || !strings.Contains(err.Error(), "train.split_delta") {
		t.Errorf("exec sym, route both, split_delta 0.2: %v, want a train.split_delta error", err)
	}
	for _, c := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"unknown route", func(c *Config) { c.Train.SplitRoute = "maps" }, `train.split_route = "maps"`},
		{"negative delta", func(c *Config) { c.Train.SplitDelta = -0.5 }, "train.split_delta = -0.5"},
		{"NaN delta", func(c *Config) { c.Train.SplitDelta = math.NaN() }, "train.split_delta = NaN"},
		{"alpha with map", func(c *Config) { c.Train.SplitAlpha = 2 }, "train.split_alpha"},
		{"delta with head", func(c *Config) { c.Train.SplitRoute = SplitRouteHead }, "train.split_delta"},
		{"delta without route", func(c *Config) { c.Train.SplitRoute = "" }, "train.split_delta"},
		{"route map without sym", func(c *Config) { c.Exec, c.Train.SplitDelta = ExecMLP, 0 }, `train.split_route = "map" needs exec "sym"`},
		{"route head with film", func(c *Config) { c.Exec, c.Train.SplitRoute, c.Train.SplitDelta = ExecFiLM, SplitRouteHead, 0 }, `train.split_route = "head" needs exec "sym"`},
		{"route both without sym", func(c *Config) { c.Exec, c.Train.SplitRoute, c.Train.SplitDelta = ExecMLP, SplitRouteBoth, 0 }, `train.split_route = "both" needs exec "sym"`},
	} {
		bad := split
		bad.Train.SplitDelta = 0.2
		c.set(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// TestScheduleRecipe checks the recipe options' per-step values against
// recipe.py's formulas (f = step/steps): lr·min(1, (step+1)/warmup),
// λ·min(1, f/lambda_warm), noise min(1, f/noise_ramp); and that with the
// options off the schedule is the config's LR, λ and 1.
func TestScheduleRecipe(t *testing.T) {
	cfg := withRecipe(smallConfig())
	tr := newTestTrainer(t, NewCPU(1), cfg, 10, 0)
	lr, lam := cfg.Train.LR, cfg.Train.Lambda
	for _, c := range []struct {
		step              int
		lr, lambda, noise float64
	}{
		{0, lr / 4, 0, 0},
		{1, lr / 2, lam * 0.1 / 0.5, 0.1 / 0.4},
		{3, lr, lam * 0.3 / 0.5, 0.3 / 0.4},
		{4, lr, lam * 0.4 / 0.5, 1},
		{7, lr, lam, 1},
	} {
		s := tr.Schedule(c.step)
		if !closeTo(s.LR, c.lr, 0, 1e-15) || !closeTo(s.Lambda, c.lambda, 0, 1e-15) || !closeTo(s.Noise, c.noise, 0, 1e-15) {
			t.Errorf("step %d: lr %g λ %g noise %g, want %g %g %g", c.step, s.LR, s.Lambda, s.Noise, c.lr, c.lambda, c.noise)
		}
	}
	off := newTestTrainer(t, NewCPU(1), smallConfig(), 10, 0)
	for _, step := range []int{0, 5, 9} {
		s := off.Schedule(step)
		if s.LR != smallConfig().Train.LR || s.Lambda != smallConfig().Train.Lambda || s.Noise != 1 {
			t.Errorf("options off, step %d: %+v", step, s)
		}
	}
}

// TestScheduleLRDecay: train.lr_decay_from holds the rate until that
// fraction of the run, then decays it along a cosine towards lr·lr_min.
func TestScheduleLRDecay(t *testing.T) {
	cfg := smallConfig()
	cfg.Train.LRDecayFrom, cfg.Train.LRMin = 0.5, 0.2
	tr := newTestTrainer(t, NewCPU(1), cfg, 10, 0)
	lr := cfg.Train.LR
	cosAt := func(p float64) float64 { return lr * (0.2 + 0.8*0.5*(1+math.Cos(math.Pi*p))) }
	for _, c := range []struct {
		step int
		want float64
	}{{0, lr}, {5, lr}, {6, cosAt(0.2)}, {9, cosAt(0.8)}} {
		if got := tr.Schedule(c.step).LR; !closeTo(got, c.want, 0, 1e-15) {
			t.Errorf("step %d: lr %g, want %g", c.step, got, c.want)
		}
	}
	cfg.Train.LRMin = 0 // unset: 0.1
	tr = newTestTrainer(t, NewCPU(1), cfg, 10, 0)
	if got, want := tr.Schedule(9).LR, lr*(0.1+0.9*0.5*(1+math.Cos(math.Pi*0.8))); !closeTo(got, want, 0, 1e-15) {
		t.Errorf("lr_min unset, step 9: lr %g, want %g", got, want)
	}
	for _, bad := range []struct{ from, min float64 }{{1, 0.1}, {-0.1, 0.1}, {0.5, 1.5}, {math.NaN(), 0}} {
		c := smallConfig()
		c.Train.LRDecayFrom, c.Train.LRMin = bad.from, bad.min
		if err := c.Validate(); err == nil {
			t.Errorf("lr_decay_from %g, lr_min %g: accepted", bad.from, bad.min)
		}
	}
}

// TestHeadLRMult: on the first AdamW step every update is ±lr (m̂/√v̂ =
// sign g), so with head_lr_mult (enc_lr_mult) the head's (the encoder's)
// parameters move mult times as far as without it, and every interpreter
// parameter moves exactly as far.
func TestHeadLRMult(t *testing.T) {
	const headMult, encMult = 0.25, 2.0
	base := smallConfig()
	moved := func(cfg Config) (before, after []NamedTensor) {
		tr := newTestTrainer(t, NewCPU(1), cfg, 10, 4)
		before = tr.M.P.Export(false)
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
		return before, tr.M.P.Export(false)
	}
	b0, b1 := moved(base)
	for _, tc := range []struct{ head, enc float64 }{{headMult, 0}, {0, encMult}, {headMult, encMult}} {
		cfg := base
		cfg.Train.HeadLRMult, cfg.Train.EncLRMult = tc.head, tc.enc
		m0, m1 := moved(cfg)
		part := 0 // 0 encoder, 1 head, 2 interpreter: ParamSpecs order
		for i := range b0 {
			if strings.HasPrefix(b0[i].Name, "head.") {
				part = 1
			} else if part == 1 {
				part = 2
			}
			want := []float64{cmp.Or(tc.enc, 1), cmp.Or(tc.head, 1), 1}[part]
			for j := range b0[i].Data {
				db := float64(b1[i].Data[j]) - float64(b0[i].Data[j])
				dm := float64(m1[i].Data[j]) - float64(m0[i].Data[j])
				if want != 1 && !closeTo(dm, want*db, 1e-7, 1e-2) || want == 1 && dm != db {
					t.Fatalf("head %g enc %g: %s[%d]: moved %g, %g without (want ×%g)", tc.head, tc.enc, b0[i].Name, j, dm, db, want)
				}
			}
		}
		if part != 2 {
			t.Fatal("ParamSpecs order changed: no interpreter parameters after the head")
		}
	}
}

func benchTrainStep(b *testing.B, workers int) {
	cfg := Default()
	tr := newTestTrainer(b, NewCPU(workers), cfg, 1000, 0)
	if _, err := tr.TrainStep(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.TrainStep(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*cfg.Train.Batch*cfg.Train.Pairs)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkTrainStepDefault times one training step of the default config
// (B = 128, m = 4, T = 12, K = 64) on all cores and on one.
func BenchmarkTrainStepDefault(b *testing.B) {
	b.Run("workers=all", func(b *testing.B) { benchTrainStep(b, 0) })
	b.Run("workers=1", func(b *testing.B) { benchTrainStep(b, 1) })
}

// TestSymRecipeIsTheSweepConfig: the "sym" preset is the config Go sweep 16
// and the shipped symmap models used, docs/experiments/go/recipe-sym.json
// (default-sym-k16.json with that sweep's settings), field for field but the
// name.
func TestSymRecipeIsTheSweepConfig(t *testing.T) {
	b, err := os.ReadFile("../docs/experiments/go/recipe-sym.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Preset("sym")
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	want.Name = got.Name
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Preset(\"sym\") = %+v\nwant recipe-sym.json's %+v", got, want)
	}
}
