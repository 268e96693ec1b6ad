// Tests of the straight-through program (Tape.StraightThrough, train.st_from).

package model

import (
	"math"
	"slices"
	"testing"
)

// TestStraightThroughOp: the forward is exactly the one-hot argmax (first
// maximum on ties) and the gradient reaches z unchanged.
func TestStraightThroughOp(t *testing.T) {
	c := NewCPU(1)
	tp := NewTape(c)
	defer tp.Free()
	const N, K = 3, 5
	zv := []float32{0.1, 0.7, 0.1, 0.05, 0.05, 0.3, 0.3, 0.2, 0.1, 0.1, 0, 0, 0, 0, 1}
	z := tp.New(true, N, K)
	c.Upload(z, zv)
	out := tp.StraightThrough(z)
	want := []float32{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	if !slices.Equal(out.F32(), want) {
		t.Fatalf("forward %v, want %v", out.F32(), want)
	}
	// loss = Σ out·w, so d out = w and, straight through, d z = w.
	w := tp.New(false, 1, N*K)
	wv := make([]float32, N*K)
	for i := range wv {
		wv[i] = float32(i)*0.25 - 1
	}
	c.Upload(w, wv)
	loss := tp.Linear(tp.View(out, 0, 1, N*K), w, nil)
	tp.Backward(loss)
	if !slices.Equal(z.Grad.F32(), wv) {
		t.Fatalf("d z = %v, want %v", z.Grad.F32(), wv)
	}
}

// TestTrainStraightThrough: with train.st_from 0.5 the first half of the run
// is bit for bit the run without it, and the second half runs hard programs
// (a different loss, flagged in the step's stats).
func TestTrainStraightThrough(t *testing.T) {
	const steps = 6
	run := func(stFrom float64) []StepStats {
		cfg := Tiny()
		cfg.Train.StFrom = stFrom
		m := randomModel(t, NewCPU(1), cfg, 4)
		tr, err := NewTrainer(m, SplitCompI, steps, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var out []StepStats
		for range steps {
			st, err := tr.TrainStep()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st)
		}
		return out
	}
	ref, st := run(0), run(0.5)
	for i := range steps {
		on := float64(i)/steps >= 0.5
		if st[i].ST != on || ref[i].ST {
			t.Fatalf("step %d: ST %v (want %v), control %v", i, st[i].ST, on, ref[i].ST)
		}
		same := math.Float64bits(st[i].Loss) == math.Float64bits(ref[i].Loss)
		if !on && !same {
			t.Errorf("step %d (before st_from): loss %v, control %v", i, st[i].Loss, ref[i].Loss)
		}
		if on && same || math.IsNaN(st[i].Loss) {
			t.Errorf("step %d (straight-through): loss %v, control %v", i, st[i].Loss, ref[i].Loss)
		}
	}
	if err := func() error { c := Tiny(); c.Train.StFrom = 1.5; return c.Validate() }(); err == nil {
		t.Error("train.st_from 1.5 accepted")
	}
}
