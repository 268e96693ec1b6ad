// Tests of gradient-guided symbol splitting (split.go): the split moves only
// the rows it means to, routes part of the split symbol's slots to the new
// one, resets their AdamW moments, and keeps resumption bit-exact.

package model

import (
	"math"
	"slices"
	"testing"
)

// forceSymbol makes every slot of every program write symbol k (a large
// head bias), the grouped state a split is for.
func forceSymbol(t *testing.T, tr *Trainer, k int) {
	t.Helper()
	bias := tr.M.P.Get("head.2.bias")
	h := make([]float32, bias.Len())
	tr.M.B.Download(h, bias)
	h[k] += 10
	tr.M.B.Upload(bias, h)
}

// programsOf returns the argmax symbol of every slot of the leave-one-out
// programs of the batch in tr.x, tr.y.
func programsOf(tr *Trainer) []int {
	m, tp := tr.M, tr.tp
	tp.Reset()
	tp.NoGrad = true
	defer func() { tp.NoGrad = false; tp.Reset() }()
	lg := m.Head(tp, tp.PoolPairs(m.Encode(tp, tr.x, tr.y), m.Cfg.Train.Pairs, true))
	h := make([]float32, lg.Len())
	m.B.Download(h, lg)
	K := m.Cfg.K
	out := make([]int, len(h)/K)
	for r := range out {
		row := h[r*K : (r+1)*K]
		for k := range row {
			if row[k] > row[out[r]] {
				out[r] = k
			}
		}
	}
	return out
}

func TestSplitSymbol(t *testing.T) {
	cfg := smallConfig()
	cfg.Train.SplitEvery, cfg.Train.SplitStart = 1, 1000 // TrainStep does not split; the test calls splitSymbol
	tr := newTestTrainer(t, NewCPU(2), cfg, 10, 1)
	forceSymbol(t, tr, 3)
	// One update first, so that every moment is non-zero.
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	forceSymbol(t, tr, 3)
	if err := tr.nextBatch(); err != nil {
		t.Fatal(err)
	}
	before := tr.M.P.Export(true)
	ev, err := tr.splitSymbol(1)
	if err != nil {
		t.Fatal(err)
	}
	N, T, DV := tr.x.Dim(0), cfg.T, cfg.DV
	if ev.Skipped != "" || ev.Symbol != 3 || ev.New != 1 || ev.Slots != N*T {
		t.Fatalf("split %+v, want symbol 3 split into the dead symbol 1 over all %d slots", ev, N*T)
	}
	n := 0
	for _, c := range ev.ToNew {
		n += c
	}
	for _, c := range ev.Stay {
		n += c
	}
	if n != ev.Slots || len(ev.ToNew) == 0 || len(ev.Stay) == 0 || !(ev.TopShare > 0 && ev.TopShare <= 1) {
		t.Errorf("split sides %v | %v, top share %g", ev.ToNew, ev.Stay, ev.TopShare)
	}
	after := tr.M.P.Export(true)
	changed := map[string][]int{ // tensor → rows (of its first dimension) the split may change
		"Ev": {1, 3}, "head.2.weight": {1}, "head.2.bias": {1},
		"adam_m/Ev": {1, 3}, "adam_v/Ev": {1, 3}, "adam_m/head.2.weight": {1}, "adam_v/head.2.weight": {1},
		"adam_m/head.2.bias": {1}, "adam_v/head.2.bias": {1},
	}
	for i, a := range after {
		bt := before[i]
		rows, ok := changed[a.Name]
		width := len(a.Data) / a.Shape[0]
		for j := range a.Data {
			r := j / width
			if (!ok || !slices.Contains(rows, r)) && a.Data[j] != bt.Data[j] {
				t.Fatalf("%s[%d] changed by the split (%g → %g)", a.Name, j, bt.Data[j], a.Data[j])
			}
			if ok && slices.Contains(rows, r) && len(a.Name) > 5 && a.Name[:5] == "adam_" && a.Data[j] != 0 {
				t.Fatalf("%s row %d not reset: %g", a.Name, r, a.Data[j])
			}
		}
	}
	// E_v: the two rows sit ±η‖E_v[3]‖u around the old row.
	get := func(ts []NamedTensor, name string) []float32 {
		for _, x := range ts {
			if x.Name == name {
				return x.Data
			}
		}
		t.Fatalf("no %s", name)
		return nil
	}
	e0, e1 := get(before, "Ev"), get(after, "Ev")
	var norm, d1, d3, dot float64
	for j := range DV {
		o := float64(e0[3*DV+j])
		norm += o * o
		a, c := float64(e1[1*DV+j])-o, float64(e1[3*DV+j])-o
		d1, d3, dot = d1+a*a, d3+c*c, dot+a*c
	}
	want := 0.25 * math.Sqrt(norm)
	if !closeTo(math.Sqrt(d1), want, 1e-5, 1e-4) || !closeTo(math.Sqrt(d3), want, 1e-5, 1e-4) || !closeTo(dot, -want*want, 1e-5, 1e-3) {
		t.Errorf("E_v moves %g and %g (dot %g), want ±%g along one direction", math.Sqrt(d1), math.Sqrt(d3), dot, want)
	}
	// The inductor now writes both symbols on this batch.
	progs := programsOf(tr)
	c1, c3 := 0, 0
	for _, k := range progs {
		switch k {
		case 1:
			c1++
		case 3:
			c3++
		}
	}
	if c1 == 0 || c3 == 0 || c1+c3 != len(progs) {
		t.Errorf("after the split the slots write symbol 1 ×%d, 3 ×%d of %d", c1, c3, len(progs))
	}
}

// TestSplitResumeBitExact: a run that splits (symbol forced as in
// TestSplitSymbol) gives the same losses when stopped and resumed.
func TestSplitResumeBitExact(t *testing.T) {
	cfg := smallConfig()
	cfg.Train.SplitEvery, cfg.Train.SplitStart, cfg.Train.SplitEnd = 2, 1, 1
	run := func(tr *Trainer, n int) (out []float64, splits int) {
		for range n {
			st, err := tr.TrainStep()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st.Loss, st.GradNorm)
			if st.Split != nil && st.Split.Skipped == "" {
				splits++
			}
		}
		return out, splits
	}
	b := NewCPU(2)
	a := newTestTrainer(t, b, cfg, 6, 5)
	forceSymbol(t, a, 3)
	straight, splits := run(a, 6)
	if splits == 0 {
		t.Fatal("no split ran in 6 steps")
	}
	c := newTestTrainer(t, b, cfg, 6, 5)
	forceSymbol(t, c, 3)
	first, _ := run(c, 3)
	rest, _ := run(resumeFromCheckpoint(t, c, b), 3)
	if got := append(first, rest...); !slices.Equal(got, straight) {
		t.Errorf("resumed run differs:\n%v\n%v", got, straight)
	}
}
