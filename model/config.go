// The one configuration struct: model sizes, training recipe and search
// settings, with the named presets "tiny", "default" and "sym" and validation.

package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Config holds every setting of a model, its training and its search. It is
// written beside every checkpoint and into every weights file.
type Config struct {
	Name string `json:"name"`

	// Task shape (fixed by the suite; stored so weights files are self-describing).
	L int `json:"L"` // sequence length
	V int `json:"V"` // number of values

	// Inductor.
	T      int `json:"T"`      // program slots
	K      int `json:"K"`      // codebook symbols; symbol 0 is SKIP
	D      int `json:"d"`      // transformer width
	Layers int `json:"layers"` // transformer blocks
	Heads  int `json:"heads"`  // attention heads
	// Interpreter.
	DS int `json:"ds"` // state embedding width per position
	DV int `json:"dv"` // instruction embedding width
	H  int `json:"H"`  // executor MLP width
	// Exec is the interpreter's step network: "mlp" (SPEC §2; "" means the
	// same); "film", the same MLP with each hidden pre-activation modulated
	// by the instruction embedding v, h·(1+γ_l(v)) + β_l(v)
	// (docs/experiments/recipe.py --exec film); or "sym", one affine map of
	// the state embedding s per symbol, mixed by the relaxed symbol z_t,
	// n = Σ_k z_t,k (W_k s + b_k), with no MLP (H unused; recipe.py --exec sym).
	Exec string `json:"exec,omitempty"`

	Train  TrainConfig  `json:"train"`
	Search SearchConfig `json:"search"`
}

// TrainConfig is the training recipe of SPEC §3.
type TrainConfig struct {
	Batch      int     `json:"batch"` // specifications per step (B)
	Pairs      int     `json:"pairs"` // pairs per specification (m)
	LR         float64 `json:"lr"`    // AdamW learning rate
	WeightDec  float64 `json:"weight_decay"`
	Clip       float64 `json:"clip"`        // global gradient-norm clip
	Lambda     float64 `json:"lambda"`      // reuse regulariser weight
	TauE0      float64 `json:"tau_e0"`      // inductor temperature at the start
	TauE1      float64 `json:"tau_e1"`      // … and at the end
	TauD0      float64 `json:"tau_d0"`      // interpreter temperature at the start
	TauD1      float64 `json:"tau_d1"`      // … and at the end
	StateNoise bool    `json:"state_noise"` // Gumbel noise on the interpreter state
	// AnnealSteps is the length of the temperature schedule: τ_e and τ_d
	// reach their end values at this step and hold them after it; 0 means
	// the run's own step count (SPEC §3).
	AnnealSteps int `json:"anneal_steps,omitempty"`
	// Recipe options of docs/experiments/recipe.py (all off by default;
	// f = step/steps is the fraction of the run done, step 0-based):
	// Warmup is the linear learning-rate warm-up in steps, lr·min(1, (step+1)/Warmup).
	Warmup int `json:"warmup,omitempty"`
	// LambdaWarm ramps λ from 0: λ·min(1, f/LambdaWarm), over this fraction of the run.
	LambdaWarm float64 `json:"lambda_warm,omitempty"`
	// NoiseRamp scales the Gumbel noise on the program logits by
	// min(1, f/NoiseRamp), over this fraction of the run (the same draws, scaled).
	NoiseRamp float64 `json:"noise_ramp,omitempty"`
	// HeadLRMult multiplies the learning rate of the inductor head f_φ
	// (the head.* parameters); 0 (unset) means 1.
	HeadLRMult float64 `json:"head_lr_mult,omitempty"`
	// EncLRMult multiplies the learning rate of the inductor encoder (the
	// parameters before the head: embeddings, slots, blocks, final
	// LayerNorm); 0 (unset) means 1.
	EncLRMult float64 `json:"enc_lr_mult,omitempty"`
	// LRDecayFrom starts a cosine decay of the learning rate at this
	// fraction of the run: after it the rate is lr·(m + (1−m)·½(1 + cos πp)),
	// p = (f − LRDecayFrom)/(1 − LRDecayFrom), m = LRMin, reaching lr·LRMin
	// at the end of the run; 0 (unset) means a constant rate (SPEC §3).
	LRDecayFrom float64 `json:"lr_decay_from,omitempty"`
	// LRMin is the decay's end factor (0 with LRDecayFrom set: 0.1).
	LRMin float64 `json:"lr_min,omitempty"`
	// SplitEvery runs a gradient-guided symbol split (split.go) every N
	// steps from step SplitStart while the run's fraction done is below
	// SplitEnd; 0 (unset) means never. SplitEta (default 0.1; with exec
	// sym only on SplitRoute "map", the head route moves no E_v) and
	// SplitAlpha (default 4; not on the map route) size the split.
	SplitEvery int     `json:"split_every,omitempty"`
	SplitStart int     `json:"split_start,omitempty"`
	SplitEnd   float64 `json:"split_end,omitempty"`
	SplitEta   float64 `json:"split_eta,omitempty"`
	SplitAlpha float64 `json:"split_alpha,omitempty"`
	// SplitRoute picks how exec sym's split routes A's tasks to the new
	// symbol D (recipe.py --split_route): "" or "head" (D's head row is
	// A's plus the capped discriminant), "map" (D's head row is A's
	// with its bias lower by SplitDelta, default 0.5, and D's map is A's
	// one relative step SplitEta down the gradient of the plus side's
	// NLL), or "both" (the head route's row and the map route's map: the
	// plus side turns to D at once, and D's map already suits it; no
	// recipe.py counterpart). Exec sym only; SplitDelta only with "map".
	SplitRoute string  `json:"split_route,omitempty"`
	SplitDelta float64 `json:"split_delta,omitempty"`
	// SplitRotate makes the n-th split (n = 0, 1, … counted from
	// SplitStart) take the (n mod d)-th of the d dead symbols, instead of
	// always the first: a symbol a split created that has no argmax slot
	// yet is then not overwritten by the next split (which happened every
	// 500 steps on comp-i's failed seeds; docs/DESIGN.md, "Tenth session").
	SplitRotate bool `json:"split_rotate,omitempty"`
	// SplitPick picks the symbol A a split cuts: "" or "cost" (the used
	// symbol whose pairs carry the most NLL) or "share" (exec sym only: the
	// used symbol, with at least 8 slots, whose slots' gradients have the
	// largest share of their variance on one direction — the most bimodal
	// — ties broken by cost). On comp-i's failed runs of Go sweeps 20–21
	// the cost pick cut symbols that held one primitive (top share
	// 0.030–0.111) while a symbol holding two to four stayed merged (their
	// cuts' shares 0.089–0.408; docs/DESIGN.md, "Eleventh session").
	SplitPick string `json:"split_pick,omitempty"`
	// Contrast adds Contrast × a task-identity loss on the inductor's
	// encoder (recipe.py --contrast): the pooled encodings of the first and
	// the second half of each specification's pairs, each centred on the
	// batch and normalised (a LayerNorm without affine), scored against
	// every task of the batch by correlation/ContrastTau (default 0.1); the
	// loss is the mean cross-entropy of finding the same task, both ways.
	// ContrastFrac > 0 decays the weight linearly to 0 by that fraction of
	// the run. 0 (unset): off.
	Contrast     float64 `json:"contrast,omitempty"`
	ContrastFrac float64 `json:"contrast_frac,omitempty"`
	ContrastTau  float64 `json:"contrast_tau,omitempty"`
	// StFrom > 0 makes the program straight-through from that fraction of
	// the run on (recipe.py --st_from): the interpreter runs the one-hot
	// argmax of the relaxed program (hard symbols, exactly as at test time)
	// and its gradient reaches the relaxed program unchanged. 0 (unset): off.
	StFrom float64 `json:"st_from,omitempty"`
	// HardExec > 0 adds HardExec × a second NLL from HardExecFrom (a
	// fraction of the run) on (recipe.py --hard_exec, --hard_exec_from): the
	// interpreter also runs the inductor's argmax programs as hard one-hot
	// symbols, which carry no gradient, so the term trains the interpreter
	// only (as docs/experiments/oracle.py trains it on the true programs).
	// The states keep their relaxation and this step's noise. 0 (unset): off.
	HardExec     float64 `json:"hard_exec,omitempty"`
	HardExecFrom float64 `json:"hard_exec_from,omitempty"`
	// Pretrain > 0 trains the inductor's encoder alone with the
	// task-identity loss (Contrast, which must be set) for the run's first
	// Pretrain steps, before the NLL enters: no head, interpreter or noise,
	// the learning rate warmed up as usual. The rest of the schedule
	// (temperatures, anneal_steps, warm-up, ramps, decay, split_start,
	// contrast_frac, st_from, hard_exec_from) then runs over the steps after
	// it, as if the run started there with steps − Pretrain steps. 0: off.
	Pretrain int `json:"pretrain,omitempty"`
	// RestartAt > 0 makes the run restart from fresh parameters when it has
	// not started to learn by then: after step RestartAt of an attempt, if
	// the mean NLL of that attempt's last RestartWindow steps is above
	// RestartNLL and fewer than Restarts restarts were made, the model is
	// initialised again from the next attempt's seed (AttemptSeed), the
	// AdamW moments are zeroed and the schedule starts again at step 0 (a
	// run of S steps with r restarts trains r·RestartAt + S steps). The
	// criterion reads the training loss only. 0 (unset): off.
	RestartAt  int     `json:"restart_at,omitempty"`
	RestartNLL float64 `json:"restart_nll,omitempty"`
	Restarts   int     `json:"restarts,omitempty"`
	// SpikeSkip > 1 skips the AdamW update of a step whose gradient norm
	// is above SpikeSkip times the running mean of the attempt's recent
	// norms (an exponential mean, decay SpikeDecay, of each step's norm
	// capped at SpikeSkip times the mean before it, so that a lasting rise
	// passes within tens of steps). The parameters and the AdamW moments
	// stay as they were; the step still counts. The attempt's first
	// SpikeWarm steps only fill the mean, and a split's step (whose
	// gradient is large by construction) is neither skipped nor counted in
	// it. 0 (unset): off.
	SpikeSkip float64 `json:"spike_skip,omitempty"`
	LogEvery  int     `json:"log_every"`  // metrics line every N steps
	SaveEvery int     `json:"save_every"` // checkpoint every N steps
}

// SearchConfig is the test-time search of SPEC §4.
type SearchConfig struct {
	Starts     int     `json:"starts"`      // S parallel starts per task
	Steps      int     `json:"steps"`       // N gradient steps
	LR         float64 `json:"lr"`          // Adam learning rate on the embeddings
	Sigma      float64 `json:"sigma"`       // start noise around the pooled embedding
	TauE0      float64 `json:"tau_e0"`      // inductor temperature, start
	TauE1      float64 `json:"tau_e1"`      // … end
	TauD0      float64 `json:"tau_d0"`      // interpreter temperature, start
	TauD1      float64 `json:"tau_d1"`      // … end
	CheckEvery int     `json:"check_every"` // hard-program check (selection, early exit) every N steps
}

// The interpreter step networks of Config.Exec.
const (
	ExecMLP  = "mlp"
	ExecFiLM = "film"
	ExecSym  = "sym"
)

// How a split picks the symbol it cuts (Train.SplitPick).
const (
	SplitPickCost  = "cost"
	SplitPickShare = "share"
)

// The routes of exec sym's symbol split (Train.SplitRoute).
const (
	SplitRouteHead = "head"
	SplitRouteMap  = "map"
	SplitRouteBoth = "both"
)

// FiLM reports whether the interpreter is the FiLM-conditioned MLP.
func (c Config) FiLM() bool { return c.Exec == ExecFiLM }

// Sym reports whether the interpreter is the symbol-selected one (a weight
// set per symbol, no MLP).
func (c Config) Sym() bool { return c.Exec == ExecSym }

// Default returns the SPEC sizes and recipe, with two measured changes:
// the learning rate decays over the second half of the run, and the search
// uses Adam lr 0.5 and start noise σ 1 (docs/DESIGN.md).
func Default() Config {
	return Config{
		Name: "default", L: SeqLen, V: NumValues,
		T: 12, K: 64, D: 128, Layers: 2, Heads: 4, DS: 32, DV: 64, H: 512,
		Train: TrainConfig{
			Batch: 128, Pairs: 4, LR: 3e-4, Clip: 1.0, Lambda: 0.01,
			TauE0: 8, TauE1: 0.5, TauD0: 2, TauD1: 0.5, StateNoise: true,
			LRDecayFrom: 0.5, // SPEC: constant lr (docs/DESIGN.md, "Learning-rate decay")
			LogEvery:    50, SaveEvery: 500,
		},
		Search: SearchConfig{
			Starts: 64, Steps: 200, LR: 0.5, Sigma: 1, // SPEC §4: lr 0.1, σ 0.5 (docs/DESIGN.md, "Search settings")
			TauE0: 2, TauE1: 0.3, TauD0: 1, TauD1: 0.3, CheckEvery: 10,
		},
	}
}

// Tiny returns a small model for tests and CPU runs: the same recipe with
// narrow networks and a small batch.
func Tiny() Config {
	c := Default()
	c.Name = "tiny"
	c.K, c.D, c.Layers, c.Heads, c.DS, c.DV, c.H = 16, 32, 1, 2, 8, 16, 128
	c.Train.Batch = 32
	// A short CPU run cannot anneal: over 120 steps the SPEC schedule raises
	// the NLL (docs/DESIGN.md, "Training dynamics"). The tiny recipe starts
	// colder (τ_e 2), learns faster and anneals over 4000 steps whatever the
	// run's length, so a smoke run's loss falls.
	c.Train.LR = 1e-3
	c.Train.TauE0 = 2
	c.Train.AnnealSteps = 4000
	c.Train.LRDecayFrom = 0 // constant lr, as the golden PyTorch trajectories (parity_test.go) were made
	c.Train.LogEvery = 10
	c.Train.SaveEvery = 50
	c.Search.Starts = 16
	c.Search.Steps = 100
	return c
}

// SymRecipe returns the recipe of docs/DESIGN.md, "The recipe" (Go sweep
// 16, which trained the three shipped symmap models; every seed of
// shift-l, not yet every seed of shift-p and comp-i): the symbol-selected
// interpreter with K 16, lr 1e-3 after 300 warm-up steps and a cosine
// decay to 0.05× over the second half of the run, τ_e from 2 annealed over
// 5000 steps, λ and the program noise ramped in, the head at 0.2× the
// learning rate, a map-route symbol split (δ 0.2) every 500 steps from
// step 1500 to 70% of the run, each split into the next dead symbol in turn
// (split_rotate, since the eleventh session: Go sweep 21 trained comp-i 4
// of 6 seeds against sweep 18's 3 of 6, the same seeds, no seed of any
// split lost), and the search's τ_e from 4. It is run for 10000 steps;
// comp-i adds the contrast loss (train.contrast 0.5, constant since the
// tenth session: 3 of 6 seeds trained against 1 of 6 with Go sweep 16's
// train.contrast_frac 0.7, which trained the shipped comp-i model). It is
// docs/experiments/go/recipe-sym.json under the name "sym"
// (TestSymRecipeIsTheSweepConfig).
func SymRecipe() Config {
	c := Default()
	c.Name = "sym"
	c.Exec = ExecSym
	c.K = 16
	c.Train.LR = 1e-3
	c.Train.TauE0 = 2
	c.Train.AnnealSteps = 5000
	c.Train.Warmup = 300
	c.Train.LambdaWarm = 0.5
	c.Train.NoiseRamp = 0.4
	c.Train.HeadLRMult = 0.2
	c.Train.LRDecayFrom = 0.5
	c.Train.LRMin = 0.05
	c.Train.SplitEvery = 500
	c.Train.SplitStart = 1500
	c.Train.SplitRoute = SplitRouteMap
	c.Train.SplitDelta = 0.2
	c.Train.SplitRotate = true // since the eleventh session (Go sweep 21)
	c.Search.TauE0 = 4         // SPEC §4: 2 (docs/DESIGN.md, "Search temperature")
	return c
}

// SymCompIContrast is the contrast weight the recipe adds for comp-i
// (train.contrast; Go sweeps 18, 21 and 24).
const SymCompIContrast = 0.5

// SymRecipeFor is the recipe for one split: SymRecipe, plus the contrast
// loss (SymCompIContrast) for comp-i; the shift splits train without it
// (it hurt them: sweep 16). `native train --config sym` uses it.
func SymRecipeFor(sp Split) Config {
	c := SymRecipe()
	if sp == SplitCompI {
		c.Train.Contrast = SymCompIContrast
	}
	return c
}

// SymCandidates is the recipe's best of N: train this many runs and keep
// the one with the lowest training NLL at the end (docs/DESIGN.md, "Best of
// three"; every group of three in Go sweeps 21 and 24 kept a run that met
// the targets).
const SymCandidates = 3

// Preset returns the named configuration ("tiny", "default" or "sym").
func Preset(name string) (Config, error) {
	switch name {
	case "tiny":
		return Tiny(), nil
	case "default":
		return Default(), nil
	case "sym":
		return SymRecipe(), nil
	}
	return Config{}, fmt.Errorf("unknown config %q (want tiny, default or sym)", name)
}

// Validate reports the first setting that is out of range, naming its field.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("config: %s = %d, must be positive", name, v))
		}
	}
	posf := func(name string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("config: %s = %g, must be positive and finite", name, v))
		}
	}
	if c.L != SeqLen || c.V != NumValues {
		errs = append(errs, fmt.Errorf("config: L = %d, V = %d, the task suite needs L = %d, V = %d", c.L, c.V, SeqLen, NumValues))
	}
	pos("T", c.T)
	pos("d", c.D)
	pos("layers", c.Layers)
	pos("heads", c.Heads)
	pos("ds", c.DS)
	pos("dv", c.DV)
	pos("H", c.H)
	switch c.Exec {
	case "", ExecMLP, ExecFiLM, ExecSym:
	default:
		errs = append(errs, fmt.Errorf("config: exec = %q, want %q, %q or %q", c.Exec, ExecMLP, ExecFiLM, ExecSym))
	}
	if c.K < 2 {
		errs = append(errs, fmt.Errorf("config: K = %d, need at least 2 symbols (SKIP and one more)", c.K))
	}
	if c.Heads > 0 && c.D%c.Heads != 0 {
		errs = append(errs, fmt.Errorf("config: d = %d is not divisible by heads = %d", c.D, c.Heads))
	}
	t := c.Train
	pos("train.batch", t.Batch)
	if t.Pairs < 2 {
		errs = append(errs, fmt.Errorf("config: train.pairs = %d, leave-one-out needs at least 2", t.Pairs))
	}
	posf("train.lr", t.LR)
	posf("train.clip", t.Clip)
	posf("train.tau_e0", t.TauE0)
	posf("train.tau_e1", t.TauE1)
	posf("train.tau_d0", t.TauD0)
	posf("train.tau_d1", t.TauD1)
	if t.Lambda < 0 || math.IsNaN(t.Lambda) || math.IsInf(t.Lambda, 0) {
		errs = append(errs, fmt.Errorf("config: train.lambda = %g, must be ≥ 0 and finite", t.Lambda))
	}
	if t.WeightDec < 0 || math.IsNaN(t.WeightDec) {
		errs = append(errs, fmt.Errorf("config: train.weight_decay = %g, must be ≥ 0", t.WeightDec))
	}
	if t.AnnealSteps < 0 {
		errs = append(errs, fmt.Errorf("config: train.anneal_steps = %d, must be ≥ 0 (0: the run's steps)", t.AnnealSteps))
	}
	if t.Warmup < 0 {
		errs = append(errs, fmt.Errorf("config: train.warmup = %d, must be ≥ 0 (0: off)", t.Warmup))
	}
	frac := func(name string, v float64) {
		if !(v >= 0 && v <= 1) {
			errs = append(errs, fmt.Errorf("config: %s = %g, must be a fraction of the run in [0, 1] (0: off)", name, v))
		}
	}
	frac("train.lambda_warm", t.LambdaWarm)
	if !(t.LRDecayFrom >= 0 && t.LRDecayFrom < 1) {
		errs = append(errs, fmt.Errorf("config: train.lr_decay_from = %g, must be a fraction of the run in [0, 1) (0: off)", t.LRDecayFrom))
	}
	frac("train.lr_min", t.LRMin)
	if t.SplitRotate && t.SplitEvery <= 0 {
		errs = append(errs, errors.New("config: train.split_rotate needs train.split_every > 0"))
	}
	switch t.SplitPick {
	case "", SplitPickCost:
	case SplitPickShare:
		if !c.Sym() || t.SplitEvery <= 0 {
			errs = append(errs, fmt.Errorf("config: train.split_pick = %q needs exec %q and train.split_every > 0", t.SplitPick, ExecSym))
		}
	default:
		errs = append(errs, fmt.Errorf("config: train.split_pick = %q, want %q, %q or empty (cost)", t.SplitPick, SplitPickCost, SplitPickShare))
	}
	if t.SplitEvery < 0 || t.SplitStart < 0 {
		errs = append(errs, fmt.Errorf("config: train.split_every = %d, train.split_start = %d, must be ≥ 0 (split_every 0: off)", t.SplitEvery, t.SplitStart))
	}
	frac("train.split_end", t.SplitEnd)
	switch t.SplitRoute {
	case "", SplitRouteHead, SplitRouteMap, SplitRouteBoth:
		if t.SplitRoute != "" && !c.Sym() {
			errs = append(errs, fmt.Errorf("config: train.split_route = %q needs exec %q (the MLP and FiLM splits have one route; leave it empty)", t.SplitRoute, ExecSym))
		}
	default:
		errs = append(errs, fmt.Errorf("config: train.split_route = %q, want %q, %q, %q or empty (head)", t.SplitRoute, SplitRouteHead, SplitRouteMap, SplitRouteBoth))
	}
	mapRoute := c.Sym() && t.SplitRoute == SplitRouteMap
	stepsMap := c.Sym() && (t.SplitRoute == SplitRouteMap || t.SplitRoute == SplitRouteBoth)
	if t.SplitEta != 0 && c.Sym() && !stepsMap {
		// Exec sym's head route copies A's map to D and moves no
		// instruction embedding (exec sym does not read E_v), so η would
		// be ignored; the map and both routes step D's map by η.
		errs = append(errs, fmt.Errorf("config: train.split_eta = %g with exec %q: the head route moves no instruction embedding (leave it 0, or set train.split_route = %q or %q)", t.SplitEta, ExecSym, SplitRouteMap, SplitRouteBoth))
	}
	if t.SplitAlpha != 0 && mapRoute {
		errs = append(errs, fmt.Errorf("config: train.split_alpha = %g with train.split_route %q: the map route sets no discriminant (leave it 0)", t.SplitAlpha, SplitRouteMap))
	}
	if !(t.SplitDelta >= 0 && t.SplitDelta <= 100) {
		errs = append(errs, fmt.Errorf("config: train.split_delta = %g, want 0..100 (0: 0.5)", t.SplitDelta))
	} else if t.SplitDelta != 0 && !mapRoute {
		errs = append(errs, fmt.Errorf("config: train.split_delta = %g without train.split_route %q and exec %q: only the map route uses it (leave it 0)", t.SplitDelta, SplitRouteMap, ExecSym))
	}
	if !(t.SplitEta >= 0 && t.SplitEta <= 10) || !(t.SplitAlpha >= 0 && t.SplitAlpha <= 100) {
		errs = append(errs, fmt.Errorf("config: train.split_eta = %g (want 0..10), train.split_alpha = %g (want 0..100); 0 means the default", t.SplitEta, t.SplitAlpha))
	}
	frac("train.noise_ramp", t.NoiseRamp)
	frac("train.contrast_frac", t.ContrastFrac)
	frac("train.st_from", t.StFrom)
	frac("train.hard_exec_from", t.HardExecFrom)
	if !(t.HardExec >= 0 && t.HardExec <= 1000) {
		errs = append(errs, fmt.Errorf("config: train.hard_exec = %g, want 0..1000 (0: off)", t.HardExec))
	}
	if !(t.Contrast >= 0 && t.Contrast <= 1000) || !(t.ContrastTau >= 0 && t.ContrastTau <= 100) {
		errs = append(errs, fmt.Errorf("config: train.contrast = %g (want 0..1000, 0: off), train.contrast_tau = %g (want 0..100, 0: 0.1)", t.Contrast, t.ContrastTau))
	}
	if t.Contrast > 0 && t.Pairs < 2 {
		errs = append(errs, fmt.Errorf("config: train.contrast needs train.pairs ≥ 2 (two halves of each task's pairs), have %d", t.Pairs))
	}
	if !(t.HeadLRMult >= 0) || math.IsInf(t.HeadLRMult, 0) {
		errs = append(errs, fmt.Errorf("config: train.head_lr_mult = %g, must be ≥ 0 and finite (0: 1)", t.HeadLRMult))
	}
	if !(t.EncLRMult >= 0) || math.IsInf(t.EncLRMult, 0) {
		errs = append(errs, fmt.Errorf("config: train.enc_lr_mult = %g, must be ≥ 0 and finite (0: 1)", t.EncLRMult))
	}
	if t.Pretrain < 0 {
		errs = append(errs, fmt.Errorf("config: train.pretrain = %d, must be ≥ 0 (0: off)", t.Pretrain))
	} else if t.Pretrain > 0 && !(t.Contrast > 0) {
		errs = append(errs, fmt.Errorf("config: train.pretrain = %d needs train.contrast > 0 (the encoder's pretraining loss)", t.Pretrain))
	}
	if t.RestartAt > 0 && t.Pretrain > 0 && t.RestartAt-min(RestartWindow, t.RestartAt) < t.Pretrain {
		errs = append(errs, fmt.Errorf("config: train.restart_at = %d: its %d-step NLL window must come after train.pretrain's %d steps", t.RestartAt, min(RestartWindow, t.RestartAt), t.Pretrain))
	}
	if t.SpikeSkip != 0 && (!(t.SpikeSkip > 1) || math.IsInf(t.SpikeSkip, 0)) {
		errs = append(errs, fmt.Errorf("config: train.spike_skip = %g, want a finite factor > 1 (0: off)", t.SpikeSkip))
	}
	if t.RestartAt < 0 || t.Restarts < 0 || t.Restarts > 100 {
		errs = append(errs, fmt.Errorf("config: train.restart_at = %d, train.restarts = %d: want restart_at ≥ 0 (0: off) and 0 ≤ restarts ≤ 100", t.RestartAt, t.Restarts))
	} else if t.RestartAt > 0 && (t.Restarts == 0 || !(t.RestartNLL > 0) || math.IsInf(t.RestartNLL, 0)) {
		errs = append(errs, fmt.Errorf("config: train.restart_at = %d needs train.restarts ≥ 1 and a finite train.restart_nll > 0 (have %d, %g)", t.RestartAt, t.Restarts, t.RestartNLL))
	} else if t.RestartAt == 0 && (t.Restarts != 0 || t.RestartNLL != 0) {
		errs = append(errs, fmt.Errorf("config: train.restarts = %d, train.restart_nll = %g without train.restart_at: set restart_at or leave them 0", t.Restarts, t.RestartNLL))
	}
	pos("train.log_every", t.LogEvery)
	pos("train.save_every", t.SaveEvery)
	s := c.Search
	pos("search.starts", s.Starts)
	pos("search.steps", s.Steps)
	posf("search.lr", s.LR)
	if s.Sigma < 0 || math.IsNaN(s.Sigma) || math.IsInf(s.Sigma, 0) {
		errs = append(errs, fmt.Errorf("config: search.sigma = %g, must be ≥ 0 and finite", s.Sigma))
	}
	posf("search.tau_e0", s.TauE0)
	posf("search.tau_e1", s.TauE1)
	posf("search.tau_d0", s.TauD0)
	posf("search.tau_d1", s.TauD1)
	pos("search.check_every", s.CheckEvery)
	// Sizes that would overflow memory estimates are rejected too.
	if c.T > 256 || c.K > 4096 || c.D > 4096 || c.H > 16384 || c.Layers > 64 || c.DS > 1024 || c.DV > 4096 {
		errs = append(errs, errors.New("config: a model dimension is implausibly large (T ≤ 256, K ≤ 4096, d ≤ 4096, H ≤ 16384, layers ≤ 64)"))
	}
	if n := c.L * c.DS * c.K * c.L * c.V; c.Sym() && n > 1<<28 {
		errs = append(errs, fmt.Errorf("config: exec sym: symW has L·ds × K·L·V = %d elements, more than a weights file holds (2^28)", n))
	}
	return errors.Join(errs...)
}

// ParseConfig decodes a JSON config strictly (unknown fields are errors) and validates it.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Anneal is the geometric schedule a·(b/a)^f for f ∈ [0,1].
func Anneal(a, b, f float64) float64 { return a * math.Pow(b/a, f) }
