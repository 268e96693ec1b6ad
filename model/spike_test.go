// Tests of train.spike_skip: the gate's rule, a skipped step leaves the
// parameters and AdamW moments exactly as they were while the schedule moves
// on, a split's step is never skipped, a restart clears the running mean,
// checkpoints resume bit for bit, and the config is validated.

package model

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestSpikeGate: the first norm is the mean; the warm-up steps never skip;
// after them a norm above k·mean skips and enters the mean capped at k·mean,
// so a lasting rise passes after a few dozen steps, and a lone spike moves
// the mean by at most (1−SpikeDecay)·(k−1)·mean.
func TestSpikeGate(t *testing.T) {
	if skip, m := spikeGate(0, 0, 7, 3); skip || m != 7 {
		t.Fatalf("first step: skip %v mean %g, want false 7", skip, m)
	}
	if skip, _ := spikeGate(1, SpikeWarm-1, 1e6, 3); skip {
		t.Error("a warm-up step skipped")
	}
	skip, m := spikeGate(1, SpikeWarm, 1e6, 3)
	if !skip || math.Abs(m-(SpikeDecay+(1-SpikeDecay)*3)) > 1e-12 {
		t.Errorf("spike after warm-up: skip %v mean %g, want true %g", skip, m, SpikeDecay+(1-SpikeDecay)*3)
	}
	skip, m = spikeGate(1, SpikeWarm, 2.9, 3)
	if skip || math.Abs(m-(SpikeDecay+(1-SpikeDecay)*2.9)) > 1e-12 {
		t.Errorf("norm below k·mean: skip %v mean %g", skip, m)
	}
	// A lasting rise from 1 to 10 with k 3: skipped until the mean reaches 10/3.
	mean, skips := 1.0, 0
	for i := range 200 {
		s, next := spikeGate(mean, SpikeWarm+i, 10, 3)
		if !s {
			break
		}
		skips++
		mean = next
	}
	if skips == 0 || skips > 60 {
		t.Errorf("a lasting rise to 10× was skipped %d steps, want 1..60", skips)
	}
}

// spikeConfig is the small sym config with train.spike_skip k.
func spikeConfig(k float64) Config {
	c := symSplitConfig()
	c.Name += "-spike"
	c.Train.SpikeSkip = k
	return c
}

// paramsAndMoments copies every parameter, first and second moment.
func paramsAndMoments(tr *Trainer) [][]float32 {
	var out [][]float32
	for _, x := range []*Tensor{tr.M.P.All, tr.M.P.M, tr.M.P.V} {
		h := make([]float32, x.Len())
		tr.M.B.Download(h, x)
		out = append(out, h)
	}
	return out
}

// TestSpikeSkip: on a trainer whose running mean is forced tiny after the
// warm-up, the next step is skipped (parameters and moments bit for bit,
// Step and Skips counted, StepStats.Skipped); with the mean forced huge the
// step updates; without the option a tiny mean skips nothing; a split's step
// is not skipped and not counted in the mean; a restart clears the mean.
func TestSpikeSkip(t *testing.T) {
	tr := newTestTrainer(t, NewCPU(2), spikeConfig(2), 20, 3)
	for range 2 {
		st, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if st.Skipped {
			t.Fatalf("step %d skipped in the warm-up", st.Step)
		}
	}
	if tr.gnSteps != 2 || !(tr.gnMean > 0) {
		t.Fatalf("after 2 steps: mean %g over %d steps", tr.gnMean, tr.gnSteps)
	}
	tr.gnSteps, tr.gnMean = SpikeWarm, 1e-9
	before := paramsAndMoments(tr)
	st, err := tr.TrainStep()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Skipped || st.Step != 3 || tr.Step != 3 || tr.Skips != 1 || st.GradMean != 1e-9 {
		t.Fatalf("forced spike: skipped %v step %d/%d skips %d mean %g", st.Skipped, st.Step, tr.Step, tr.Skips, st.GradMean)
	}
	for i, x := range paramsAndMoments(tr) {
		if !slices.Equal(x, before[i]) {
			t.Fatalf("a skipped step changed tensor %d (0 parameters, 1 and 2 moments)", i)
		}
	}
	if tr.gnSteps != SpikeWarm+1 || !(tr.gnMean > 1e-9) || tr.gnMean > 3e-9 {
		t.Errorf("mean after the skip %g over %d steps, want in (1e-9, 3e-9] over %d", tr.gnMean, tr.gnSteps, SpikeWarm+1)
	}
	tr.gnMean = 1e9
	before = paramsAndMoments(tr)
	if st, err = tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	if st.Skipped || tr.Skips != 1 || slices.Equal(paramsAndMoments(tr)[0], before[0]) {
		t.Errorf("mean 1e9: skipped %v, skips %d, or the parameters did not move", st.Skipped, tr.Skips)
	}

	off := newTestTrainer(t, NewCPU(2), spikeConfig(0), 20, 3)
	off.gnSteps, off.gnMean = SpikeWarm, 1e-9
	before = paramsAndMoments(off)
	if st, err = off.TrainStep(); err != nil {
		t.Fatal(err)
	}
	if st.Skipped || off.Skips != 0 || st.GradMean != 0 || slices.Equal(paramsAndMoments(off)[0], before[0]) {
		t.Errorf("spike_skip off: skipped %v skips %d grad_mean %g, or no update", st.Skipped, off.Skips, st.GradMean)
	}

	cfg := spikeConfig(2)
	cfg.Train.SplitEvery, cfg.Train.SplitStart, cfg.Train.SplitEnd = 1, 0, 1
	sp := newTestTrainer(t, NewCPU(2), cfg, 10, 5)
	forceSymbol(t, sp, 3)
	sp.gnSteps, sp.gnMean = SpikeWarm, 1e-9
	if st, err = sp.TrainStep(); err != nil {
		t.Fatal(err)
	}
	if st.Split == nil || st.Skipped || sp.gnSteps != SpikeWarm || sp.gnMean != 1e-9 {
		t.Errorf("split step: split %v skipped %v, mean %g over %d steps (want untouched)", st.Split != nil, st.Skipped, sp.gnMean, sp.gnSteps)
	}

	rs := newTestTrainer(t, NewCPU(2), withRestart(spikeConfig(2), 2, 1e-9, 1), 10, 3)
	for range 2 {
		if st, err = rs.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if st.Restart == nil || !st.Restart.Restarted || rs.gnSteps != 0 || rs.gnMean != 0 {
		t.Errorf("after a restart: mean %g over %d steps, want 0 over 0 (restart %+v)", rs.gnMean, rs.gnSteps, st.Restart)
	}
}

// TestSpikeResumeBitExact: a run with forced skips, checkpointed after 3
// steps and resumed, gives the same losses, norms, skip flags and final
// running mean, step count and skips, bit for bit, as the straight run.
func TestSpikeResumeBitExact(t *testing.T) {
	b := NewCPU(2)
	start := func() *Trainer {
		tr := newTestTrainer(t, b, spikeConfig(1.5), 8, 4)
		var st StepStats
		for range 2 {
			var err error
			if st, err = tr.TrainStep(); err != nil {
				t.Fatal(err)
			}
		}
		// The threshold at the last norm: the next norms (within ±10% of it
		// here) fall on both sides of it.
		tr.gnSteps, tr.gnMean = SpikeWarm, st.GradNorm/1.5
		return tr
	}
	run := func(tr *Trainer, n int) (out []float64) {
		for range n {
			st, err := tr.TrainStep()
			if err != nil {
				t.Fatal(err)
			}
			sk := 0.0
			if st.Skipped {
				sk = 1
			}
			out = append(out, st.Loss, st.GradNorm, sk, st.GradMean)
		}
		return out
	}
	a := start()
	straight := run(a, 6)
	c := start()
	first := run(c, 3)
	r := resumeFromCheckpoint(t, c, b)
	rest := run(r, 3)
	if got := append(first, rest...); !slices.Equal(got, straight) {
		t.Errorf("resumed run differs:\n%v\n%v", got, straight)
	}
	if r.gnMean != a.gnMean || r.gnSteps != a.gnSteps || r.Skips != a.Skips {
		t.Errorf("resumed state mean %g steps %d skips %d, straight %g %d %d", r.gnMean, r.gnSteps, r.Skips, a.gnMean, a.gnSteps, a.Skips)
	}
	if a.Skips == 0 || a.Skips == 6 {
		t.Errorf("%d of 6 steps skipped: the test wants some skipped and some not", a.Skips)
	}
}

// TestSpikeConfig: spike_skip must be 0 or a finite factor above 1.
func TestSpikeConfig(t *testing.T) {
	for _, k := range []float64{0, 1.01, 10} {
		if err := spikeConfig(k).Validate(); err != nil {
			t.Errorf("spike_skip %g: %v", k, err)
		}
	}
	for _, k := range []float64{1, 0.5, -2, math.Inf(1), math.NaN()} {
		if err := spikeConfig(k).Validate(); err == nil || !strings.Contains(err.Error(), "train.spike_skip") {
			t.Errorf("spike_skip %g: %v, want a train.spike_skip error", k, err)
		}
	}
}

// TestSpikeResumeRejects: a checkpoint whose train.spike_skip state is
// impossible (negative counts or mean) is refused with a message naming it,
// and one with a NaN written into it is refused as malformed JSON.
func TestSpikeResumeRejects(t *testing.T) {
	b := NewCPU(1)
	tr := newTestTrainer(t, b, spikeConfig(2), 4, 1)
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	ck, err := tr.Checkpoint(Provenance{})
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(ck.Extra, &st); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{{"grad_steps": -1}, {"skips": -2}, {"grad_mean": -1.0}} {
		m := maps.Clone(st)
		maps.Copy(m, bad)
		c := *ck
		c.Extra, _ = json.Marshal(m)
		if _, err := ResumeTrainer(b, &c, "ck"); err == nil || !strings.Contains(err.Error(), "ck: train.spike_skip state") {
			t.Errorf("state %v: %v, want a train.spike_skip state error", bad, err)
		}
	}
	c := *ck
	c.Extra = []byte(strings.Replace(string(ck.Extra), "{", `{"grad_mean":NaN,`, 1))
	if _, err := ResumeTrainer(b, &c, "ck"); err == nil || !strings.Contains(err.Error(), "ck: training state") {
		t.Errorf("NaN in the state: %v, want a training state error", err)
	}
}
