// Tests of Backward's first-write gradients (tape.go): with the gradient
// arena poisoned with NaN before every backward pass, training and search
// give exactly the gradients of clearing everything first and accumulating
// (slices.Equal: element by element, −0 = +0, and a NaN never equal).

package model

import (
	"math"
	"slices"
	"testing"
)

// poison fills every gradient chunk of tp (CPU backend) with NaN.
func poison(tp *Tape) func() {
	return func() {
		for _, c := range tp.grad.chunks {
			for i := range c.F32 {
				c.F32[i] = float32(math.NaN())
			}
		}
	}
}

func TestBackwardFirstWriteTrain(t *testing.T) {
	ctr := withFiLM(Tiny())
	ctr.Train.Contrast = 0.5 // e has two consumers: the head's pooling and the contrast loss
	for _, cfg := range []Config{Tiny(), withFiLM(Tiny()), ctr, withSym(Tiny())} {
		grads := func(old bool) [][]float32 {
			m := randomModel(t, NewCPU(1), cfg, 7)
			tr, err := NewTrainer(m, SplitCompI, 10, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			tr.tp.zeroAll = old
			if !old {
				tr.tp.beforeBackward = poison(tr.tp)
			}
			var out [][]float32
			for range 2 {
				if _, err := tr.TrainStep(); err != nil {
					t.Fatalf("%s old=%v: %v", cfg.Name, old, err)
				}
				for _, p := range m.P.List {
					out = append(out, append([]float32(nil), p.T.Grad.mem.F32[p.T.Grad.off:p.T.Grad.off+p.T.Grad.n]...))
				}
			}
			return out
		}
		want, got := grads(true), grads(false)
		for i := range want {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("%s: parameter gradient %d differs with first-write gradients", cfg.Name, i)
			}
		}
	}
}

func TestBackwardFirstWriteSearch(t *testing.T) {
	for _, cfg := range []Config{Tiny(), withFiLM(Tiny()), withSym(Tiny())} {
		m := randomModel(t, NewCPU(1), cfg, 5)
		tb, err := NewTaskBatch(GenTasks(SplitShiftL, PartOOD, 3, 4, 9))
		if err != nil {
			t.Fatal(err)
		}
		for _, plain := range []bool{false, true} {
			run := func(old bool) []float32 {
				s := NewSearcher(m)
				s.Plain = plain
				s.tp.zeroAll = old
				if !old {
					s.tp.beforeBackward = poison(s.tp)
				}
				sc := cfg.Search
				sc.Starts, sc.Steps, sc.CheckEvery = 4, 3, 3
				r := s.StartGradient(tb, sc, 2)
				defer r.Close()
				for more := true; more; {
					_, more = r.Step()
				}
				e := make([]float32, r.E.Len())
				m.B.Download(e, r.E)
				return e
			}
			if want, got := run(true), run(false); !slices.Equal(got, want) {
				t.Fatalf("%s plain=%v: searched embeddings differ with first-write gradients", cfg.Name, plain)
			}
		}
	}
}

// A node whose output does not reach the loss is skipped: its gradient was
// never written, and reading it (poisoned) would put NaN into its inputs'.
func TestBackwardSkipsDeadNodes(t *testing.T) {
	b := NewCPU(1)
	tp := NewTape(b)
	defer tp.Free()
	leaf := func() *Tensor {
		x := NewView(b.Alloc(6), 0, 2, 3)
		x.Grad = NewView(b.Alloc(6), 0, 2, 3)
		b.Upload(x, []float32{0.1, -0.2, 0.3, 0.4, -0.5, 0.6})
		return x
	}
	a, c := leaf(), leaf()
	tp.GELU(a) // dead: nothing reads it
	loss := tp.ReuseReg(tp.Softmax(c, nil, 1))
	tp.beforeBackward = poison(tp)
	tp.Backward(loss)
	ga, gc := make([]float32, 6), make([]float32, 6)
	b.Download(ga, a.Grad)
	b.Download(gc, c.Grad)
	for i := range ga {
		if ga[i] != 0 || math.IsNaN(float64(gc[i])) {
			t.Fatalf("dead branch's input gradient %v (want zeros), live one %v", ga, gc)
		}
	}
}
