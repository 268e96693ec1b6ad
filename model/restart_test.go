// Tests of train.restart_at: a restarted attempt is exactly a fresh run from
// its attempt seed, a run that passes the check is exactly a run without it,
// checkpoints resume bit for bit inside the window and after a restart, and
// the config is validated.

package model

import (
	"math"
	"strings"
	"testing"
)

// withRestart is c with a restart check after step at.
func withRestart(c Config, at int, nll float64, restarts int) Config {
	c.Name += "-restart"
	c.Train.RestartAt, c.Train.RestartNLL, c.Train.Restarts = at, nll, restarts
	return c
}

// trainLosses runs n steps of tr and returns each step's loss and
// gradient norm, and the restart events seen.
func trainLosses(t *testing.T, tr *Trainer, n int) ([]float64, []*RestartEvent) {
	t.Helper()
	var out []float64
	var evs []*RestartEvent
	for i := 0; i < n; i++ {
		st, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st.Loss, st.GradNorm)
		if st.Restart != nil {
			evs = append(evs, st.Restart)
		}
	}
	return out, evs
}

func sameBits(t *testing.T, what string, a, b []float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values vs %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			t.Fatalf("%s: value %d: %v vs %v", what, i, a[i], b[i])
		}
	}
}

// TestRestart runs on the MLP model only: the restart does not depend on
// the interpreter, and the test's ~40 steps are what -race can afford.
func TestRestart(t *testing.T) {
	const seed, at, steps = 3, 2, 3
	base := smallConfig()
	b := NewCPU(2)

	// A threshold no NLL reaches: one check, no restart, and the run is
	// bit for bit the run without the option.
	plain, _ := trainLosses(t, newTestTrainer(t, b, base, steps, seed), steps)
	pass := newTestTrainer(t, b, withRestart(base, at, 1e9, 2), steps, seed)
	got, evs := trainLosses(t, pass, steps)
	sameBits(t, "passed check vs no check", plain, got)
	if len(evs) != 1 || evs[0].Restarted || evs[0].Attempt != 0 || !(evs[0].NLL > 0) || evs[0].Threshold != 1e9 {
		t.Fatalf("passed check: events %+v, want one check that did not restart", evs)
	}

	// A threshold every NLL is above, two restarts: the run restarts after
	// step 2 of attempts 0 and 1, and its third attempt is bit for bit a
	// fresh run whose seed is AttemptSeed(seed, 2).
	var evs0 RestartEvent // attempt 0's check
	cfg := withRestart(base, at, 1e-6, 2)
	tr := newTestTrainer(t, b, cfg, steps, seed)
	first, evs := trainLosses(t, tr, 2*at)
	if len(evs) > 0 {
		evs0 = *evs[0]
	}
	if len(evs) != 2 || !evs[0].Restarted || evs[0].Attempt != 1 || !evs[1].Restarted || evs[1].Attempt != 2 {
		t.Fatalf("restarts: events %+v, want two restarts to attempts 1 and 2", evs)
	}
	if tr.Attempt != 2 || tr.Step != 0 {
		t.Fatalf("after two restarts: attempt %d step %d, want 2 and 0", tr.Attempt, tr.Step)
	}
	sameBits(t, "attempt 0 vs the plain run", plain[:2*at], first[:2*at])
	third, evs := trainLosses(t, tr, steps) // no restarts left: no check
	if len(evs) != 0 || tr.Step != steps {
		t.Fatalf("last attempt: events %+v, step %d", evs, tr.Step)
	}
	s2 := AttemptSeed(seed, 2)
	if s2 == seed || s2 == AttemptSeed(seed, 1) {
		t.Fatalf("attempt seeds %d, %d, %d are not distinct", seed, AttemptSeed(seed, 1), s2)
	}
	fresh, _ := trainLosses(t, newTestTrainer(t, b, base, steps, s2), steps)
	sameBits(t, "attempt 2 vs a fresh run from its seed", fresh, third)

	// Resume inside attempt 0's window and inside attempt 1: bit for bit
	// the uninterrupted run. The threshold sits at 3/4 of attempt 0's
	// window mean, so that the restart happens only if the checkpoint
	// kept the window's sum (with the sum lost, the mean of what is left
	// falls below it).
	cfg = withRestart(base, at, 0.75*evs0.NLL, 2)
	want, wevs := trainLosses(t, newTestTrainer(t, b, cfg, steps, seed), 2*at+steps)
	if len(wevs) == 0 || !wevs[0].Restarted {
		t.Fatalf("threshold %g: events %+v, want a restart after attempt 0", 0.75*evs0.NLL, wevs)
	}
	for _, stop := range []int{at - 1, at + 1} {
		c := newTestTrainer(t, b, cfg, steps, seed)
		got, _ := trainLosses(t, c, stop)
		d := resumeFromCheckpoint(t, c, NewCPU(1))
		rest, _ := trainLosses(t, d, len(want)/2-stop)
		sameBits(t, "resumed at "+string(rune('0'+stop)), want, append(got, rest...))
	}
}

func TestRestartConfig(t *testing.T) {
	ok := withRestart(Tiny(), 3000, 12, 4)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at       int
		nll      float64
		restarts int
		want     string
	}{
		{-1, 12, 1, "train.restart_at = -1"},
		{10, 12, 0, "needs train.restarts ≥ 1"},
		{10, 0, 1, "train.restart_nll > 0"},
		{10, math.Inf(1), 1, "train.restart_nll > 0"},
		{10, math.NaN(), 1, "train.restart_nll > 0"},
		{0, 12, 0, "without train.restart_at"},
		{0, 0, 2, "without train.restart_at"},
		{10, 12, 101, "restarts = 101"},
	} {
		err := withRestart(Tiny(), c.at, c.nll, c.restarts).Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("restart_at %d, restart_nll %g, restarts %d: error %v, want %q", c.at, c.nll, c.restarts, err, c.want)
		}
	}
	m, err := NewModel(NewCPU(1), withRestart(smallConfig(), 10, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(m, SplitShiftL, 10, 0); err == nil || !strings.Contains(err.Error(), "below the run's 10 steps") {
		t.Errorf("restart_at = steps: error %v", err)
	}
}
