// Tests of the profiling wrapper: a wrapped backend computes the same
// training step bit for bit and records the ops it ran.

package model

import (
	"math"
	"testing"
)

func TestProfiledSameResultsAndCounts(t *testing.T) {
	cfg := smallConfig()
	plain := newTestTrainer(t, NewCPU(1), cfg, 10, 4)
	prof := NewProfiled(NewCPU(1))
	wrapped := newTestTrainer(t, prof, cfg, 10, 4)
	for i := 0; i < 2; i++ {
		a, err := plain.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		b, err := wrapped.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(a.Loss) != math.Float64bits(b.Loss) {
			t.Fatalf("step %d: loss %v plain, %v profiled", i+1, a.Loss, b.Loss)
		}
	}
	rows := prof.Profile()
	calls := map[string]int{}
	for _, r := range rows {
		calls[r.Op] = r.Calls
		if r.Total < 0 {
			t.Errorf("%s: negative time", r.Op)
		}
	}
	// Per step: one AdamW and one global-norm reduction; Gemm in every layer.
	if calls["AdamW"] != 2 || calls["SumSquares"] != 2 || calls["Gemm"] < 2*cfg.T {
		t.Errorf("unexpected call counts: AdamW %d, SumSquares %d, Gemm %d", calls["AdamW"], calls["SumSquares"], calls["Gemm"])
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Total > rows[i-1].Total {
			t.Fatalf("profile not sorted by time at row %d", i)
		}
	}
}
