// Training (SPEC §3): leave-one-out NLL plus the reuse regulariser, with
// geometric temperature annealing and AdamW with global-norm clipping; and
// the training-state checkpoint that makes resumption exact.

package model

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"
)

// StepStats are the numbers of one training step.
type StepStats struct {
	Step     int     `json:"step"` // 1-based index of the finished step
	Loss     float64 `json:"loss"`
	NLL      float64 `json:"nll"`
	Reg      float64 `json:"reg"`
	TauE     float64 `json:"tau_e"`
	TauD     float64 `json:"tau_d"`
	GradNorm float64 `json:"grad_norm"`
	LR       float64 `json:"lr"`           // learning rate of this step (the head's is LR·head_lr_mult)
	Lambda   float64 `json:"lambda"`       // reuse regulariser weight of this step
	Noise    float64 `json:"noise"`        // scale of the program's Gumbel noise
	ST       bool    `json:"st,omitempty"` // straight-through program this step (train.st_from)
	// Contrast is the task-identity loss (train.contrast) of this step,
	// before its weight; ContrastW is the weight.
	Contrast  float64 `json:"ctr,omitempty"`
	ContrastW float64 `json:"ctr_w,omitempty"`
	// HardNLL is the NLL of the interpreter on the inductor's argmax
	// programs (train.hard_exec) of this step, before its weight HardExecW.
	HardNLL   float64 `json:"hard_nll,omitempty"`
	HardExecW float64 `json:"hard_exec_w,omitempty"`
	// Diag holds the step's diagnostics when Trainer.Diagnose was set (diag.go).
	Diag *Diagnostics `json:"-"`
	// Split reports the symbol split run before this step (train.split_every), if any.
	Split *SplitEvent `json:"-"`
	// Pretrain marks a step of train.pretrain (the encoder alone: NLL, Reg
	// and the diagnostics are not computed).
	Pretrain bool `json:"pretrain,omitempty"`
	// Attempt is the attempt this step belongs to (0: the first;
	// train.restart_at), Restart the restart check made after it, if any.
	Attempt int           `json:"attempt,omitempty"`
	Restart *RestartEvent `json:"-"`
	// Skipped: train.spike_skip skipped this step's update (its gradient
	// norm was above spike_skip × GradMean); GradMean is the running mean
	// of gradient norms before this step (0 when spike_skip is off).
	Skipped  bool    `json:"skipped,omitempty"`
	GradMean float64 `json:"grad_mean,omitempty"`
}

// SpikeDecay and SpikeWarm are train.spike_skip's running-mean decay and
// the steps of each attempt that only fill the mean.
const (
	SpikeDecay = 0.98
	SpikeWarm  = 50
)

// spikeGate is train.spike_skip's rule for one step of gradient norm gn:
// mean is the running mean before it (n steps in it so far) and k the
// factor. It says whether to skip the update, and returns the mean after
// it: gn itself at the first step, else the decayed mean of gn capped at
// k·mean.
func spikeGate(mean float64, n int, gn, k float64) (skip bool, next float64) {
	if n == 0 {
		return false, gn
	}
	skip = n >= SpikeWarm && gn > k*mean
	return skip, SpikeDecay*mean + (1-SpikeDecay)*min(gn, k*mean)
}

// RestartEvent reports the check of train.restart_at after the last step of
// an attempt's window: the window's mean NLL against train.restart_nll, and
// whether the run restarted (then Attempt is the new attempt).
type RestartEvent struct {
	NLL       float64 `json:"nll"`       // mean NLL of the attempt's last RestartWindow steps
	Threshold float64 `json:"threshold"` // train.restart_nll
	Restarted bool    `json:"restarted"`
	Attempt   int     `json:"attempt"` // the attempt that trains on
}

// RestartWindow is how many steps, ending at train.restart_at, the restart
// criterion averages the NLL over (fewer when restart_at is smaller).
const RestartWindow = 100

// AttemptSeed is the seed of attempt a of a run with seed seed: the seed
// itself for the first attempt, a hash of both for later ones (parameters,
// data stream and noise of a restarted attempt derive from it).
func AttemptSeed(seed uint64, a int) uint64 {
	if a == 0 {
		return seed
	}
	z := seed ^ uint64(a)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Trainer owns one training run: the model, the data stream and the
// optimiser state. It is not safe for concurrent use, and only the goroutine
// that calls its methods touches the backend. From the first TrainStep on, a
// producer goroutine samples batches ahead (prefetch.go); Close stops it.
type Trainer struct {
	M     *Model
	Split Split
	Steps int    // total steps of the schedule
	Step  int    // steps done
	Seed  uint64 // run seed: data stream and noise derive from it (through AttemptSeed)
	// Attempt counts the restarts made (train.restart_at): the run now
	// trains attempt Attempt, from AttemptSeed(Seed, Attempt).
	Attempt int
	// Diagnose makes TrainStep compute Diagnostics of its batch (diag.go);
	// set it on log steps only: a diagnosed step costs two extra forward passes.
	Diagnose bool

	pcg     *rand.PCG  // data stream state before the next batch TrainStep consumes
	rng     *rand.Rand // draws from pcg: inline sampling only
	progs   []Program
	tp      *Tape
	bufs    []*hostBatch // the producer's host buffers, reused
	prog    []int32      // (B) program index (into progs) of each specification of the last batch
	prod    *producer    // nil until the first TrainStep and after Close
	cleanup runtime.Cleanup
	inline  bool     // sample on the calling goroutine (the reference the producer is tested against)
	x, y    *Tensor  // (B·m, L) int inputs, persistent
	nz      *Tensor  // (B·m, T, K) inductor noise
	ns      *Tensor  // (T, B·m, L, V) interpreter noise
	spans   []LRSpan // AdamW spans when train.head_lr_mult or enc_lr_mult is set; nil: one update

	enc, lg *Tensor // the last Loss's slot encodings (B·m, T, d) and leave-one-out logits (B·m, T, K)
	ctr     *Tensor // the last Loss's task-identity loss (train.contrast), or nil
	hx      *Tensor // the last Loss's NLL on argmax programs (train.hard_exec), or nil
	// train.contrast's constants: LayerNorm weight 1 and bias 0 over T·d,
	// and the targets 0…B−1.
	ctrOnes, ctrZeros, ctrIdx *Tensor
	diag                      *diagState // nil until the first diagnosed step
	nllWin                    float64    // Σ NLL over this attempt's restart window so far
	// train.spike_skip: the running mean of this attempt's gradient norms
	// and how many steps it holds.
	gnMean  float64
	gnSteps int
	// Skips counts the updates train.spike_skip skipped, over all attempts.
	Skips int
}

// NewTrainer prepares a fresh run of steps steps on split for model m.
func NewTrainer(m *Model, split Split, steps int, seed uint64) (*Trainer, error) {
	if steps <= 0 {
		return nil, fmt.Errorf("train: steps = %d, must be positive", steps)
	}
	cfg := m.Cfg
	if r := cfg.Train.RestartAt; r >= steps {
		return nil, fmt.Errorf("train: train.restart_at = %d, must be below the run's %d steps", r, steps)
	}
	if p := cfg.Train.Pretrain; p >= steps {
		return nil, fmt.Errorf("train: train.pretrain = %d, must be below the run's %d steps", p, steps)
	}
	progs := Programs(split, PartTrain)
	if len(progs) == 0 {
		return nil, fmt.Errorf("train: split %q has no training programs", split)
	}
	N := cfg.Train.Batch * cfg.Train.Pairs
	b := m.B
	tr := &Trainer{
		M: m, Split: split, Steps: steps, Seed: seed,
		pcg: rand.NewPCG(seed, dataStream), progs: progs, tp: NewTape(b),
		x:  NewView(b.AllocInt(N*cfg.L), 0, N, cfg.L),
		y:  NewView(b.AllocInt(N*cfg.L), 0, N, cfg.L),
		nz: NewView(b.Alloc(N*cfg.T*cfg.K), 0, N, cfg.T, cfg.K),
		ns: NewView(b.Alloc(cfg.T*N*cfg.L*cfg.V), 0, cfg.T, N, cfg.L, cfg.V),
	}
	tr.rng = rand.New(tr.pcg)
	tr.prog = make([]int32, cfg.Train.Batch)
	for range prefetchDepth {
		tr.bufs = append(tr.bufs, &hostBatch{x: make([]int32, N*cfg.L), y: make([]int32, N*cfg.L), prog: make([]int32, cfg.Train.Batch)})
	}
	if cfg.Train.Contrast > 0 {
		TD, B := cfg.T*cfg.D, cfg.Train.Batch
		tr.ctrOnes, tr.ctrZeros = NewView(b.Alloc(TD), 0, TD), NewView(b.Alloc(TD), 0, TD)
		ones, idx := make([]float32, TD), make([]int32, B)
		for i := range ones {
			ones[i] = 1
		}
		for i := range idx {
			idx[i] = int32(i)
		}
		b.Upload(tr.ctrOnes, ones)
		tr.ctrIdx = NewView(b.AllocInt(B), 0, B)
		b.UploadInt(tr.ctrIdx, idx)
	}
	one := func(v float64) float64 { return cmp.Or(v, 1) } // 0 (unset) means 1
	if head, enc := one(cfg.Train.HeadLRMult), one(cfg.Train.EncLRMult); head != 1 || enc != 1 {
		spans, err := m.P.LRSpans("head.", enc, head)
		if err != nil {
			return nil, fmt.Errorf("train: head_lr_mult/enc_lr_mult: %w", err)
		}
		tr.spans = spans
	}
	return tr, nil
}

// dataStream is the second word of the data stream's PCG seed (after the
// run's or attempt's seed).
const dataStream = 0x7472616e

// noiseSeed derives the Gumbel seed of one step and stream.
func noiseSeed(seed uint64, step int, stream uint64) uint64 {
	z := seed ^ (uint64(step)+1)*0xD1B54A32D192ED03 ^ stream*0x8CB92BA72F3D8DD7
	z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCD
	return z ^ (z >> 33)
}

// Temperatures returns τ_e, τ_d at step (0-based) of the schedule.
func (tr *Trainer) Temperatures(step int) (tauE, tauD float64) {
	c := tr.M.Cfg.Train
	step, n := tr.mainStep(step)
	if c.AnnealSteps > 0 {
		n = c.AnnealSteps
	}
	f := min(1, float64(max(0, step))/float64(n))
	return Anneal(c.TauE0, c.TauE1, f), Anneal(c.TauD0, c.TauD1, f)
}

// mainStep maps a step (0-based) of the run to the step and length of its
// main phase, the steps after train.pretrain's (step < 0: pretraining).
func (tr *Trainer) mainStep(step int) (int, int) {
	p := tr.M.Cfg.Train.Pretrain
	return step - p, tr.Steps - p
}

// Pretraining reports whether step (0-based) is one of train.pretrain's.
func (tr *Trainer) Pretraining(step int) bool { return step < tr.M.Cfg.Train.Pretrain }

// Schedule holds the recipe's per-step quantities at one step.
type Schedule struct {
	TauE, TauD float64 // temperatures (train.anneal_steps)
	LR         float64 // learning rate after warm-up (train.warmup)
	Lambda     float64 // reuse regulariser weight after its ramp (train.lambda_warm)
	Noise      float64 // factor on the program's Gumbel noise (train.noise_ramp)
	Contrast   float64 // weight of the task-identity loss (train.contrast, contrast_frac)
	ST         bool    // straight-through program (train.st_from)
	HardExec   float64 // weight of the NLL on argmax programs (train.hard_exec, hard_exec_from)
}

// Schedule returns the quantities of step (0-based), as recipe.py's train()
// computes them with f = step/steps. With every recipe option off they are
// the config's LR, λ and 1.
func (tr *Trainer) Schedule(step int) Schedule {
	c := tr.M.Cfg.Train
	s := Schedule{LR: c.LR, Lambda: c.Lambda, Noise: 1}
	s.TauE, s.TauD = tr.Temperatures(step)
	if tr.Pretraining(step) { // the encoder alone: warm-up, then the constant rate
		if c.Warmup > 0 {
			s.LR *= min(1, float64(step+1)/float64(c.Warmup))
		}
		s.Contrast = c.Contrast
		return s
	}
	step, steps := tr.mainStep(step)
	f := float64(step) / float64(steps)
	if c.Warmup > 0 {
		s.LR *= min(1, float64(step+1)/float64(c.Warmup))
	}
	if c.LRDecayFrom > 0 && f > c.LRDecayFrom {
		lo := c.LRMin
		if lo == 0 {
			lo = 0.1
		}
		p := min(1, (f-c.LRDecayFrom)/(1-c.LRDecayFrom))
		s.LR *= lo + (1-lo)*0.5*(1+math.Cos(math.Pi*p))
	}
	if c.LambdaWarm > 0 {
		s.Lambda *= min(1, f/c.LambdaWarm)
	}
	if c.NoiseRamp > 0 {
		s.Noise = min(1, f/c.NoiseRamp)
	}
	s.Contrast = c.Contrast
	if c.ContrastFrac > 0 {
		s.Contrast *= max(0, 1-f/c.ContrastFrac)
	}
	s.ST = c.StFrom > 0 && f >= c.StFrom
	if f >= c.HardExecFrom {
		s.HardExec = c.HardExec
	}
	return s
}

// Loss runs the forward pass of one batch already in tr.x, tr.y (and the
// noise already drawn) on the tape and returns the loss, NLL and regulariser.
// λ is the schedule's at the current step tr.Step.
func (tr *Trainer) Loss(tauE, tauD float64) (loss, nll, reg *Tensor) {
	m, tp := tr.M, tr.tp
	cfg := m.Cfg
	e := m.Encode(tp, tr.x, tr.y)                 // (B·m, T, d)
	eb := tp.PoolPairs(e, cfg.Train.Pairs, true)  // leave-one-out
	logits := m.Head(tp, eb)                      // (B·m, T, K)
	tr.enc, tr.lg = e, logits                     // for diagnose
	z := tp.Softmax(logits, tr.nz, float32(tauE)) // relaxed program
	sch := tr.Schedule(tr.Step)
	if sch.ST {
		z = tp.StraightThrough(z)
	}
	var ns *Tensor
	if cfg.Train.StateNoise {
		ns = tr.ns
	}
	pi := m.Execute(tp, tr.x, z, float32(tauD), ns, false)
	N := tr.x.Dim(0)
	nll = tp.NLL(pi, tr.y, 1/float32(N))
	reg = tp.ReuseReg(tp.Softmax(logits, nil, float32(tauE)))
	loss = tp.AddScaled(nll, reg, float32(sch.Lambda))
	tr.ctr = nil
	if sch.Contrast > 0 { // skipped once its weight has decayed to 0
		tr.ctr = tr.contrast(e)
		loss = tp.AddScaled(loss, tr.ctr, float32(sch.Contrast))
	}
	tr.hx = nil
	if sch.HardExec > 0 { // the argmax programs: one-hot, no gradient into the inductor
		ph := m.Execute(tp, tr.x, tp.ArgmaxOneHot(logits), float32(tauD), ns, false)
		tr.hx = tp.NLL(ph, tr.y, 1/float32(N))
		loss = tp.AddScaled(loss, tr.hx, float32(sch.HardExec))
	}
	return loss, nll, reg
}

// contrast is train.contrast's task-identity loss on the slot encodings e
// (B·m, T, d): the mean over the first and the second half of each
// specification's pairs, each centred on the batch (minus the mean of the
// other tasks' — LayerNorm makes that the same as minus the batch mean) and
// LayerNorm-normalised over T·d (no affine), are scored against every task
// of the batch by their correlation / tau, and the loss is ½(CE(rows) +
// CE(columns)) with the same task as target (recipe.py --contrast, the same
// function). Without the centring, the part of the encodings that all
// tasks share (most of it at the start: the slots) makes every correlation
// near 1: the loss sat at log B for 600 steps of a tiny CPU run.
func (tr *Trainer) contrast(e *Tensor) *Tensor {
	tp, cfg := tr.tp, tr.M.Cfg
	B, P, TD := cfg.Train.Batch, cfg.Train.Pairs, cfg.T*cfg.D
	ev := tp.View(e, 0, B, P, TD)
	half := func(start, n int) *Tensor {
		s := tp.SliceRows(ev, start, n)                     // (B, n, T·d)
		h := tp.PoolPairs(tp.View(s, 0, B*n, TD), n, false) // (B, T·d)
		h = tp.AddScaled(h, tp.PoolPairs(h, B, true), -1)   // minus the other tasks' mean
		return tp.LayerNorm(h, tr.ctrOnes, tr.ctrZeros)
	}
	h1, h2 := half(0, P/2), half(P/2, P-P/2)
	sim := tp.Linear(h1, h2, nil) // (B, B): TD × the correlations
	tau := float32(float64(TD) * cmp.Or(cfg.Train.ContrastTau, 0.1))
	ce := func(s *Tensor) *Tensor { return tp.NLL(tp.Softmax(s, nil, tau), tr.ctrIdx, 0.5/float32(B)) }
	simT := tp.View(tp.Transpose01(tp.View(sim, 0, B, B, 1)), 0, B, B)
	return tp.AddScaled(ce(sim), ce(simT), 1)
}

// nextBatch uploads the next batch of the data stream into tr.x, tr.y and
// advances tr.pcg past it. It starts the producer if none runs.
func (tr *Trainer) nextBatch() error {
	b, c := tr.M.B, tr.M.Cfg.Train
	if tr.inline {
		hb := tr.bufs[0]
		SampleBatch(tr.rng, tr.progs, c.Batch, c.Pairs, hb.x, hb.y, tr.prog)
		b.UploadInt(tr.x, hb.x)
		b.UploadInt(tr.y, hb.y)
		return nil
	}
	if tr.prod == nil {
		tr.prod = startProducer(*tr.pcg, tr.progs, c.Batch, c.Pairs, tr.bufs)
		tr.cleanup = runtime.AddCleanup(tr, (*producer).stop, tr.prod)
	}
	hb := <-tr.prod.full
	if err := hb.err; err != nil {
		tr.Close()
		return err
	}
	b.UploadInt(tr.x, hb.x) // synchronous on every backend: hb is free afterwards
	b.UploadInt(tr.y, hb.y)
	copy(tr.prog, hb.prog)
	*tr.pcg = hb.after
	tr.prod.free <- hb // never blocks: free holds every buffer not in flight
	return nil
}

// Close stops the data producer and waits for its goroutine to return. The
// trainer stays usable: a later TrainStep starts a producer again from
// tr.pcg, the state before the next batch, so closing never changes the
// batches. Close may be called any number of times.
func (tr *Trainer) Close() {
	if tr.prod == nil {
		return
	}
	tr.cleanup.Stop()
	tr.prod.stop()
	<-tr.prod.exited
	tr.prod = nil
}

// TrainStep draws a batch, runs forward and backward, clips and updates.
func (tr *Trainer) TrainStep() (StepStats, error) {
	m, tp, b := tr.M, tr.tp, tr.M.B
	cfg := m.Cfg
	if err := tr.nextBatch(); err != nil {
		return StepStats{}, fmt.Errorf("train: step %d: %w", tr.Step+1, err)
	}
	sch := tr.Schedule(tr.Step)
	if tr.Pretraining(tr.Step) {
		return tr.pretrainStep(sch)
	}
	seed := AttemptSeed(tr.Seed, tr.Attempt)
	b.Gumbel(tr.nz, noiseSeed(seed, tr.Step, 0))
	if sch.Noise != 1 {
		b.Scale(tr.nz, float32(sch.Noise))
	}
	if cfg.Train.StateNoise {
		b.Gumbel(tr.ns, noiseSeed(seed, tr.Step, 1))
	}
	tauE, tauD := sch.TauE, sch.TauD
	var split *SplitEvent
	if tr.splitDue(tr.Step) {
		var err error
		if split, err = tr.splitSymbol(tauD); err != nil {
			return StepStats{}, fmt.Errorf("train: step %d: %w", tr.Step+1, err)
		}
	}
	tp.Reset()
	m.P.ZeroGrad()
	loss, nll, reg := tr.Loss(tauE, tauD)
	tp.Backward(loss)
	gn := m.P.GradNorm()
	if math.IsNaN(gn) || math.IsInf(gn, 0) {
		return StepStats{}, fmt.Errorf("train: step %d: gradient norm is %v", tr.Step+1, gn)
	}
	var diag *Diagnostics
	if tr.Diagnose {
		diag = tr.diagnose() // the model of this step, before its update
	}
	skip, mean := false, 0.0
	if k := cfg.Train.SpikeSkip; k > 0 {
		mean = tr.gnMean
		if split == nil {
			skip, tr.gnMean = spikeGate(tr.gnMean, tr.gnSteps, gn, k)
			tr.gnSteps++
		}
	}
	if skip {
		tr.Step++ // the schedule moves on; parameters and moments stay
		tr.Skips++
	} else {
		tr.update(sch.LR, gn)
	}
	st := StepStats{
		Step: tr.Step, Loss: tp.Scalar(loss), NLL: tp.Scalar(nll), Reg: tp.Scalar(reg),
		TauE: tauE, TauD: tauD, GradNorm: gn, LR: sch.LR, Lambda: sch.Lambda, Noise: sch.Noise, ST: sch.ST, Diag: diag, Split: split,
		Skipped: skip, GradMean: mean,
	}
	if tr.ctr != nil {
		st.Contrast, st.ContrastW = tp.Scalar(tr.ctr), sch.Contrast
	}
	if tr.hx != nil {
		st.HardNLL, st.HardExecW = tp.Scalar(tr.hx), sch.HardExec
	}
	if err := b.Err(); err != nil {
		return st, fmt.Errorf("train: step %d: %w", tr.Step, err)
	}
	st.Attempt = tr.Attempt
	st.Restart = tr.restartCheck(st.NLL)
	return st, nil
}

// update counts the step and applies AdamW at learning rate lr (per span
// with train.head_lr_mult or enc_lr_mult), the gradients scaled down to
// norm train.clip when their norm gn is above it.
func (tr *Trainer) update(lr, gn float64) {
	m, t := tr.M, tr.M.Cfg.Train
	scale := 1.0
	if gn > t.Clip {
		scale = t.Clip / (gn + 1e-6)
	}
	tr.Step++
	if tr.spans != nil {
		m.P.StepSpans(tr.spans, lr, 0.9, 0.999, 1e-8, t.WeightDec, scale, tr.Step)
	} else {
		m.P.Step(lr, 0.9, 0.999, 1e-8, t.WeightDec, scale, tr.Step)
	}
}

// pretrainStep is one of train.pretrain's steps on the batch in tr.x, tr.y:
// the encoder's task-identity loss alone, clipped and applied as a training
// step's (AdamW over every parameter; only the encoder's have a gradient).
func (tr *Trainer) pretrainStep(sch Schedule) (StepStats, error) {
	m, tp, b := tr.M, tr.tp, tr.M.B
	tp.Reset()
	m.P.ZeroGrad()
	ctr := tr.contrast(m.Encode(tp, tr.x, tr.y))
	loss := tp.AddScaled(ctr, ctr, float32(sch.Contrast-1)) // Contrast × the loss (the tape has no Scale)
	tp.Backward(loss)
	gn := m.P.GradNorm()
	if math.IsNaN(gn) || math.IsInf(gn, 0) {
		return StepStats{}, fmt.Errorf("train: step %d (pretraining): gradient norm is %v", tr.Step+1, gn)
	}
	tr.update(sch.LR, gn)
	c := tp.Scalar(ctr)
	st := StepStats{Step: tr.Step, Loss: tp.Scalar(loss), TauE: sch.TauE, TauD: sch.TauD, GradNorm: gn, LR: sch.LR,
		Contrast: c, ContrastW: sch.Contrast, Pretrain: true, Attempt: tr.Attempt}
	tr.ctr, tr.hx = nil, nil
	if err := b.Err(); err != nil {
		return st, fmt.Errorf("train: step %d: %w", tr.Step, err)
	}
	return st, nil
}

// restartCheck runs train.restart_at's criterion after each step: it sums
// the NLL over the attempt's window and, after its last step, restarts the
// run when the window's mean is above train.restart_nll and restarts are
// left. It returns the check's event after that step, else nil.
func (tr *Trainer) restartCheck(nll float64) *RestartEvent {
	t := tr.M.Cfg.Train
	if t.RestartAt == 0 || tr.Attempt >= t.Restarts {
		return nil
	}
	w := min(RestartWindow, t.RestartAt)
	if tr.Step > t.RestartAt-w && tr.Step <= t.RestartAt {
		tr.nllWin += nll
	}
	if tr.Step != t.RestartAt {
		return nil
	}
	ev := &RestartEvent{NLL: tr.nllWin / float64(w), Threshold: t.RestartNLL, Attempt: tr.Attempt}
	if ev.NLL > t.RestartNLL {
		tr.restart()
		ev.Restarted, ev.Attempt = true, tr.Attempt
	}
	return ev
}

// restart begins the next attempt: fresh parameters, zero AdamW moments,
// the data stream and noise of its seed, step 0.
func (tr *Trainer) restart() {
	tr.Close() // the producer ran ahead on the old stream
	tr.Attempt++
	seed := AttemptSeed(tr.Seed, tr.Attempt)
	m := tr.M
	m.Init(seed)
	m.B.Zero(m.P.M)
	m.B.Zero(m.P.V)
	tr.pcg.Seed(seed, dataStream) // as NewTrainer's stream for this seed
	tr.Step, tr.nllWin, tr.diag = 0, 0, nil
	tr.gnMean, tr.gnSteps = 0, 0
}

// trainState is the checkpoint's extra JSON: everything beyond tensors
// that exact resumption needs.
type trainState struct {
	Split string `json:"split"`
	Steps int    `json:"steps"`
	Step  int    `json:"step"`
	Seed  uint64 `json:"seed"`
	RNG   []byte `json:"rng"` // the data stream's PCG state
	// Attempt and NLLWin: train.restart_at's attempt and window sum.
	Attempt int     `json:"attempt,omitempty"`
	NLLWin  float64 `json:"nll_win,omitempty"`
	// train.spike_skip's running mean, its step count and the skips made.
	GradMean  float64 `json:"grad_mean,omitempty"`
	GradSteps int     `json:"grad_steps,omitempty"`
	Skips     int     `json:"skips,omitempty"`
}

// Checkpoint captures the full training state (parameters, AdamW moments,
// step, data RNG) as a checkpoint file.
func (tr *Trainer) Checkpoint(prov Provenance) (*WeightsFile, error) {
	cfgJSON, err := json.Marshal(tr.M.Cfg)
	if err != nil {
		return nil, err
	}
	rngState, err := tr.pcg.MarshalBinary() // the next batch's, not the producer's run-ahead state
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(trainState{Split: string(tr.Split), Steps: tr.Steps, Step: tr.Step, Seed: tr.Seed, RNG: rngState, Attempt: tr.Attempt, NLLWin: tr.nllWin,
		GradMean: tr.gnMean, GradSteps: tr.gnSteps, Skips: tr.Skips})
	if err != nil {
		return nil, err
	}
	prov.Split, prov.Steps, prov.Seed = string(tr.Split), tr.Step, tr.Seed
	return &WeightsFile{Kind: "checkpoint", Config: cfgJSON, Provenance: prov, Extra: extra, Tensors: tr.M.P.Export(true)}, nil
}

// Weights captures the model's parameters as a weights file.
func (m *Model) Weights(prov Provenance) (*WeightsFile, error) {
	cfgJSON, err := json.Marshal(m.Cfg)
	if err != nil {
		return nil, err
	}
	return &WeightsFile{Kind: "weights", Config: cfgJSON, Provenance: prov, Tensors: m.P.Export(false)}, nil
}

// LoadModel builds a model on b from a weights or checkpoint file, checking
// the config and every tensor's shape. name is used in messages.
func LoadModel(b Backend, wf *WeightsFile, name string) (*Model, error) {
	cfg, err := ParseConfig(wf.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m, err := NewModel(b, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := m.P.Import(wf.Tensors, wf.Kind == "checkpoint", name); err != nil {
		return nil, err
	}
	return m, nil
}

// ResumeTrainer rebuilds a trainer from a checkpoint so that the following
// steps are bit-identical to an uninterrupted run on the same backend.
func ResumeTrainer(b Backend, wf *WeightsFile, name string) (*Trainer, error) {
	if wf.Kind != "checkpoint" {
		return nil, fmt.Errorf("%s: is a %q file, resuming needs a checkpoint", name, wf.Kind)
	}
	var st trainState
	if err := json.Unmarshal(wf.Extra, &st); err != nil {
		return nil, fmt.Errorf("%s: training state: %w", name, err)
	}
	split, err := ParseSplit(st.Split)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if st.Step < 0 || st.Step > st.Steps {
		return nil, fmt.Errorf("%s: step %d outside 0..%d", name, st.Step, st.Steps)
	}
	m, err := LoadModel(b, wf, name)
	if err != nil {
		return nil, err
	}
	tr, err := NewTrainer(m, split, st.Steps, st.Seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := tr.pcg.UnmarshalBinary(st.RNG); err != nil {
		return nil, fmt.Errorf("%s: data RNG state: %w", name, err)
	}
	if st.Attempt < 0 || st.Attempt > m.Cfg.Train.Restarts || math.IsNaN(st.NLLWin) {
		return nil, fmt.Errorf("%s: attempt %d outside 0..%d (train.restarts) or a NaN restart window", name, st.Attempt, m.Cfg.Train.Restarts)
	}
	if st.GradSteps < 0 || st.Skips < 0 || !(st.GradMean >= 0) || math.IsInf(st.GradMean, 0) {
		return nil, fmt.Errorf("%s: train.spike_skip state: mean %g over %d steps, %d skips: want a finite mean ≥ 0 and counts ≥ 0", name, st.GradMean, st.GradSteps, st.Skips)
	}
	tr.Step, tr.Attempt, tr.nllWin = st.Step, st.Attempt, st.NLLWin
	tr.gnMean, tr.gnSteps, tr.Skips = st.GradMean, st.GradSteps, st.Skips
	return tr, nil
}

// Throughput is a small helper for samples/s reporting.
func Throughput(samples int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(samples) / d.Seconds()
}
