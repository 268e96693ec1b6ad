// Tests of the training data producer: the same batches, data states and
// losses as sampling inline, through Close and restart; no goroutine left
// behind; a failure in the producer is an error, not a crash. Run with -race
// too (./build.sh test does).

package model

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPrefetchSameBatches steps a prefetching trainer and one that samples
// inline side by side. Every uploaded batch must be SampleBatch's on a copy
// of the data RNG, the trainer's data state (what a checkpoint records) that
// of the copy after the batch, and the step numbers identical bit for bit.
// Closing the producer mid-run must change nothing.
func TestPrefetchSameBatches(t *testing.T) {
	for _, cfg := range []Config{smallConfig(), withRecipe(withFiLM(smallConfig()))} {
		t.Run(cfg.Name, func(t *testing.T) {
			b := NewCPU(2)
			p := newTestTrainer(t, b, cfg, 8, 5)
			r := newTestTrainer(t, b, cfg, 8, 5)
			r.inline = true
			refPCG := *p.pcg
			ref := rand.New(&refPCG)
			c := cfg.Train
			wantX, wantY := make([]int32, p.x.Len()), make([]int32, p.y.Len())
			gotX, gotY := make([]int32, p.x.Len()), make([]int32, p.y.Len())
			wantProg := make([]int32, c.Batch)
			for i := range 8 {
				if i == 3 || i == 4 {
					p.Close() // restart from the next batch's state, twice in a row
				}
				sp, err := p.TrainStep()
				if err != nil {
					t.Fatal(err)
				}
				sr, err := r.TrainStep()
				if err != nil {
					t.Fatal(err)
				}
				SampleBatch(ref, p.progs, c.Batch, c.Pairs, wantX, wantY, wantProg)
				b.DownloadInt(gotX, p.x)
				b.DownloadInt(gotY, p.y)
				if !slices.Equal(gotX, wantX) || !slices.Equal(gotY, wantY) || !slices.Equal(p.prog, wantProg) || !slices.Equal(r.prog, wantProg) {
					t.Fatalf("step %d: the prefetched batch is not SampleBatch's", i+1)
				}
				got, _ := p.pcg.MarshalBinary()
				want, _ := refPCG.MarshalBinary()
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: data state %x, want %x (the state after the consumed batch)", i+1, got, want)
				}
				for _, v := range [][2]float64{{sp.Loss, sr.Loss}, {sp.NLL, sr.NLL}, {sp.Reg, sr.Reg}, {sp.GradNorm, sr.GradNorm}} {
					if math.Float64bits(v[0]) != math.Float64bits(v[1]) {
						t.Fatalf("step %d: prefetched %+v, inline %+v", i+1, sp, sr)
					}
				}
			}
		})
	}
}

// waitGoroutines waits until at most n goroutines run, running the garbage
// collector (and so cleanups) meanwhile.
func waitGoroutines(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines, want at most %d", what, runtime.NumGoroutine(), n)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPrefetchNoLeak: Close ends the producer (and is idempotent), a closed
// trainer restarts it, and an abandoned trainer's producer is stopped when
// the trainer is collected.
func TestPrefetchNoLeak(t *testing.T) {
	b := NewCPU(1)
	cfg := smallConfig()
	m, err := NewModel(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(0)
	base := runtime.NumGoroutine()
	tr, err := NewTrainer(m, SplitShiftL, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.prod != nil {
		t.Fatal("NewTrainer started a producer before the first step")
	}
	for range 2 {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
		if tr.prod == nil {
			t.Fatal("no producer after a step")
		}
		tr.Close()
		tr.Close()
		waitGoroutines(t, base, "after Close")
	}

	abandon := func() {
		tr, err := NewTrainer(m, SplitShiftL, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	abandon()
	waitGoroutines(t, base, "after abandoning a trainer without Close")
}

// TestPrefetchError: a panic while sampling becomes TrainStep's error, the
// producer stops, and nothing is consumed.
func TestPrefetchError(t *testing.T) {
	tr := newTestTrainer(t, NewCPU(1), smallConfig(), 10, 0)
	before, _ := tr.pcg.MarshalBinary()
	base := runtime.NumGoroutine()
	progs := tr.progs
	tr.progs = nil
	_, err := tr.TrainStep()
	if err == nil || !strings.Contains(err.Error(), "no programs") || !strings.Contains(err.Error(), "step 1") {
		t.Fatalf("TrainStep with a failing producer: error %v", err)
	}
	if tr.Step != 0 || tr.prod != nil {
		t.Fatalf("after the error: step %d, producer %v", tr.Step, tr.prod)
	}
	waitGoroutines(t, base, "after the producer failed")
	after, _ := tr.pcg.MarshalBinary()
	if !slices.Equal(before, after) {
		t.Fatal("a failed batch advanced the data state")
	}
	tr.progs = progs
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
}
