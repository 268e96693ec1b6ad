// Tests of train.contrast, the task-identity loss on the inductor's encoder.

package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// contrast64 is the loss of Trainer.contrast in float64 on e (B·P, T·d):
// halves of each task's pairs pooled, centred on the batch, LayerNorm-normalised, scored by
// correlation/tau, ½ the mean cross-entropy both ways.
func contrast64(e []float64, B, P, TD int, tau float64) float64 {
	norm := func(lo, n int) [][]float64 {
		out := make([][]float64, B)
		for b := range B {
			h := make([]float64, TD)
			for p := lo; p < lo+n; p++ {
				for k := range TD {
					h[k] += e[(b*P+p)*TD+k] / float64(n)
				}
			}
			out[b] = h
		}
		// minus the batch mean (the Go form subtracts the other tasks' mean:
		// the same after normalisation, up to LayerNorm's epsilon)
		mb := make([]float64, TD)
		for b := range B {
			for k := range TD {
				mb[k] += out[b][k] / float64(B)
			}
		}
		for b := range B {
			h := out[b]
			for k := range h {
				h[k] -= mb[k]
			}
			var mean, vr float64
			for _, v := range h {
				mean += v / float64(TD)
			}
			for _, v := range h {
				vr += (v - mean) * (v - mean) / float64(TD)
			}
			for k := range h {
				h[k] = (h[k] - mean) / math.Sqrt(vr+1e-5)
			}
			out[b] = h
		}
		return out
	}
	h1, h2 := norm(0, P/2), norm(P/2, P-P/2)
	sim := make([][]float64, B)
	for i := range B {
		sim[i] = make([]float64, B)
		for j := range B {
			for k := range TD {
				sim[i][j] += h1[i][k] * h2[j][k]
			}
			sim[i][j] /= float64(TD) * tau
		}
	}
	ce := func(row func(i, j int) float64) float64 {
		var s float64
		for i := range B {
			mx := math.Inf(-1)
			for j := range B {
				mx = math.Max(mx, row(i, j))
			}
			var z float64
			for j := range B {
				z += math.Exp(row(i, j) - mx)
			}
			s += -(row(i, i) - mx - math.Log(z))
		}
		return s / float64(B)
	}
	return 0.5 * (ce(func(i, j int) float64 { return sim[i][j] }) + ce(func(i, j int) float64 { return sim[j][i] }))
}

func TestContrastLoss(t *testing.T) {
	cfg := Tiny()
	cfg.Train.Batch, cfg.Train.Contrast, cfg.Train.ContrastTau = 5, 1, 0.3
	m := randomModel(t, NewCPU(1), cfg, 3)
	tr, err := NewTrainer(m, SplitCompI, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	B, P, TD := cfg.Train.Batch, cfg.Train.Pairs, cfg.T*cfg.D
	rng := rand.New(rand.NewPCG(4, 5))
	ev := make([]float32, B*P*TD)
	e64 := make([]float64, len(ev))
	for i := range ev {
		ev[i] = float32(rng.NormFloat64())
		e64[i] = float64(ev[i])
	}
	run := func(vals []float32) (float64, []float32) {
		e := NewView(m.B.Alloc(len(vals)), 0, B*P, cfg.T, cfg.D)
		e.Grad = NewView(m.B.Alloc(len(vals)), 0, B*P, cfg.T, cfg.D)
		m.B.Upload(e, vals)
		tr.tp.NoGrad = false
		tr.tp.Reset()
		l := tr.contrast(e)
		tr.tp.Backward(l)
		g := make([]float32, len(vals))
		m.B.Download(g, e.Grad)
		return tr.tp.Scalar(l), g
	}
	got, grad := run(ev)
	want := contrast64(e64, B, P, TD, 0.3)
	if math.Abs(got-want) > 1e-5+1e-4*math.Abs(want) {
		t.Fatalf("contrast loss %.7g, float64 mirror %.7g", got, want)
	}
	// The gradient against central differences of the mirror, on a sample of coordinates.
	for _, i := range []int{0, 7, TD + 3, 2*TD + 11, len(ev) - 1, len(ev) / 2} {
		h := 1e-4
		e64[i] += h
		up := contrast64(e64, B, P, TD, 0.3)
		e64[i] -= 2 * h
		dn := contrast64(e64, B, P, TD, 0.3)
		e64[i] += h
		fd := (up - dn) / (2 * h)
		if math.Abs(float64(grad[i])-fd) > 1e-4+1e-2*math.Abs(fd) {
			t.Errorf("d loss/d e[%d] = %.6g, central difference %.6g", i, grad[i], fd)
		}
	}
	if got <= 0 || got > math.Log(float64(B))+5 {
		t.Errorf("contrast loss %g outside (0, log B + 5]", got)
	}
}

// A run with train.contrast trains (finite losses, the term logged) and
// resumes bit for bit like any other run.
func TestTrainContrast(t *testing.T) {
	cfg := Tiny()
	cfg.Train.Contrast, cfg.Train.ContrastFrac = 0.5, 0.5
	trainSteps(t, cfg, 8, func(i int, st StepStats) {
		wantW := 0.5 * max(0, 1-float64(i)/8/0.5)
		if math.Abs(st.ContrastW-wantW) > 1e-12 || (wantW > 0) != (st.Contrast > 0) || math.IsNaN(st.Loss) {
			t.Fatalf("step %d: contrast %g weight %g (want %g), loss %g", st.Step, st.Contrast, st.ContrastW, wantW, st.Loss)
		}
	})
}

// trainSteps runs n comp-i training steps of a fresh model of cfg (seed 3)
// on the CPU and hands each step's stats, counting from 0, to check.
func trainSteps(t *testing.T, cfg Config, n int, check func(i int, st StepStats)) {
	t.Helper()
	tr, err := NewTrainer(randomModel(t, NewCPU(1), cfg, 3), SplitCompI, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i := range n {
		st, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		check(i, st)
	}
}

// train.hard_exec adds the interpreter's NLL on the inductor's argmax
// programs (one-hot, no gradient): the inductor's gradients are exactly
// those without it, the interpreter's change, the logged term is that NLL
// recomputed on its own, and the term starts at train.hard_exec_from.
func TestTrainHardExec(t *testing.T) {
	type result struct {
		enc, exe []float32
		hx, want float64
	}
	run := func(hard float64) result {
		cfg := Tiny()
		cfg.Train.HardExec = hard
		m := randomModel(t, NewCPU(1), cfg, 3)
		tr, err := NewTrainer(m, SplitCompI, 8, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.nextBatch(); err != nil {
			t.Fatal(err)
		}
		tr.tp.Reset()
		m.P.ZeroGrad()
		loss, _, _ := tr.Loss(1, 0.7)
		tr.tp.Backward(loss)
		var r result
		for _, p := range []struct {
			name string
			dst  *[]float32
		}{{"head.2.weight", &r.enc}, {"exe.2.weight", &r.exe}} {
			g := m.P.Get(p.name).Grad
			*p.dst = make([]float32, g.Len())
			m.B.Download(*p.dst, g)
		}
		if tr.hx != nil {
			r.hx = tr.tp.Scalar(tr.hx)
			// The same NLL on its own: the argmax programs of this batch.
			tp := tr.tp
			tp.NoGrad = true
			e := m.Encode(tp, tr.x, tr.y)
			lg := m.Head(tp, tp.PoolPairs(e, cfg.Train.Pairs, true))
			pi := m.Execute(tp, tr.x, tp.ArgmaxOneHot(lg), 0.7, tr.ns, false)
			r.want = tp.Scalar(tp.NLL(pi, tr.y, 1/float32(tr.x.Dim(0))))
			tp.NoGrad = false
		}
		return r
	}
	off, on := run(0), run(0.3)
	if !slices.Equal(off.enc, on.enc) {
		t.Error("train.hard_exec changed the inductor's gradient (head.2.weight)")
	}
	if slices.Equal(off.exe, on.exe) {
		t.Error("train.hard_exec left the interpreter's gradient (exe.2.weight) unchanged")
	}
	if on.hx <= 0 || math.Abs(on.hx-on.want) > 1e-6*on.want {
		t.Errorf("logged hard NLL %g, recomputed %g", on.hx, on.want)
	}

	for _, bad := range [][2]float64{{-1, 0}, {0.3, 1.5}, {math.NaN(), 0}} {
		c := Tiny()
		c.Train.HardExec, c.Train.HardExecFrom = bad[0], bad[1]
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "train.hard_exec") {
			t.Errorf("train.hard_exec %g, hard_exec_from %g: error %v", bad[0], bad[1], err)
		}
	}

	cfg := Tiny()
	cfg.Train.HardExec, cfg.Train.HardExecFrom = 0.3, 0.5
	trainSteps(t, cfg, 8, func(i int, st StepStats) {
		if on := float64(i)/8 >= 0.5; on != (st.HardExecW == 0.3) || on != (st.HardNLL > 0) || math.IsNaN(st.Loss) {
			t.Fatalf("step %d: hard NLL %g weight %g, loss %g", st.Step, st.HardNLL, st.HardExecW, st.Loss)
		}
	})
}
