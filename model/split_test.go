// Tests of gradient-guided symbol splitting (split.go): the split sets only
// the new symbol's rows (its moments copied from the split symbol's), routes
// part of the split symbol's slots to it, and keeps resumption bit-exact.

package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
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
	changed := map[string]bool{ // tensors whose row 1 (the new symbol) the split sets; nothing else changes
		"Ev": true, "head.2.weight": true, "head.2.bias": true,
		"adam_m/Ev": true, "adam_v/Ev": true, "adam_m/head.2.weight": true, "adam_v/head.2.weight": true,
		"adam_m/head.2.bias": true, "adam_v/head.2.bias": true,
	}
	for i, a := range after {
		bt := before[i]
		width := len(a.Data) / a.Shape[0]
		for j := range a.Data {
			r, c := j/width, j%width
			if !(changed[a.Name] && r == 1) && a.Data[j] != bt.Data[j] {
				t.Fatalf("%s[%d] changed by the split (%g → %g)", a.Name, j, bt.Data[j], a.Data[j])
			}
			// The new symbol's moments are a copy of the split symbol's.
			if changed[a.Name] && r == 1 && strings.HasPrefix(a.Name, "adam_") && a.Data[j] != bt.Data[3*width+c] {
				t.Fatalf("%s row 1 not a copy of row 3: %g vs %g", a.Name, a.Data[j], bt.Data[3*width+c])
			}
		}
	}
	// E_v: the new row sits η‖E_v[3]‖ from the old one, which stays.
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
	var norm, d1 float64
	for j := range DV {
		o := float64(e0[3*DV+j])
		norm += o * o
		a := float64(e1[1*DV+j]) - o
		d1 += a * a
	}
	if want := 0.1 * math.Sqrt(norm); !closeTo(math.Sqrt(d1), want, 1e-5, 1e-4) {
		t.Errorf("new E_v row at %g from the split one, want %g", math.Sqrt(d1), want)
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
	if ev.ToD != c1 || ev.OthersToD != 0 || ev.Capped {
		t.Errorf("split event to_D %d (counted %d), others_to_D %d, capped %v", ev.ToD, c1, ev.OthersToD, ev.Capped)
	}
}

// TestSplitResumeBitExact: a run that splits (symbol forced as in
// TestSplitSymbol), with the MLP and with the sym interpreter, gives the
// same losses when stopped and resumed.
func TestSplitResumeBitExact(t *testing.T) {
	cfgs := []Config{smallConfig(), symSplitConfig()}
	for _, route := range []string{SplitRouteMap, SplitRouteBoth} {
		c := symSplitConfig()
		c.Name += "-" + route
		c.Train.SplitRoute = route
		cfgs = append(cfgs, c)
	}
	rot := symSplitConfig()
	rot.Name += "-map-rotate"
	rot.Train.SplitRoute, rot.Train.SplitRotate = SplitRouteMap, true
	cfgs = append(cfgs, rot)
	share := symSplitConfig()
	share.Name += "-map-share"
	share.Train.SplitRoute, share.Train.SplitPick = SplitRouteMap, SplitPickShare
	cfgs = append(cfgs, share)
	for _, cfg := range cfgs {
		t.Run(cfg.Name, func(t *testing.T) { testSplitResumeBitExact(t, cfg) })
	}
}

// TestSplitRotate: pickDead takes the first dead symbol, or with rotate the
// n-th split's (n mod d)-th of d (never SKIP); splitIndex counts the splits
// from train.split_start, after train.pretrain's steps; and on a trainer,
// two splits in a row with rotate make two different new symbols where
// without it they make the same one.
func TestSplitRotate(t *testing.T) {
	uses := []int{0, 5, 0, 3, 0, 0, 2}
	for _, c := range []struct {
		n      int
		rotate bool
		want   int
	}{{0, false, 2}, {7, false, 2}, {0, true, 2}, {1, true, 4}, {2, true, 5}, {3, true, 2}, {7, true, 4}} {
		if got := pickDead(uses, c.n, c.rotate); got != c.want {
			t.Errorf("pickDead(%v, %d, %v) = %d, want %d", uses, c.n, c.rotate, got, c.want)
		}
	}
	if got := pickDead([]int{0, 1, 1}, 3, true); got != -1 {
		t.Errorf("no dead symbol: pickDead = %d, want -1", got)
	}
	bad := symSplitConfig()
	bad.Train.SplitEvery, bad.Train.SplitRotate = 0, true
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "split_rotate needs train.split_every") {
		t.Errorf("split_rotate without split_every: %v", err)
	}

	cfg := symSplitConfig()
	cfg.Train.SplitRoute = SplitRouteMap
	cfg.Train.SplitEvery, cfg.Train.SplitStart, cfg.Train.SplitEnd = 1, 2, 1
	cfg.Train.Contrast, cfg.Train.Pretrain = 0.5, 3
	tr := newTestTrainer(t, NewCPU(1), cfg, 20, 0)
	for step, want := range map[int]int{0: 0, 3: 0, 4: 0, 5: 0, 6: 1, 9: 4} {
		tr.Step = step
		if got := tr.splitIndex(); got != want {
			t.Errorf("step %d (pretrain 3, split_start 2, every 1): splitIndex %d, want %d", step, got, want)
		}
	}

	news := func(rotate bool) []int {
		c := symSplitConfig()
		c.Train.SplitRoute, c.Train.SplitRotate = SplitRouteMap, rotate
		c.Train.SplitEvery, c.Train.SplitStart, c.Train.SplitEnd = 1, 0, 1
		tr := newTestTrainer(t, NewCPU(2), c, 20, 5)
		forceSymbol(t, tr, 3)
		var out []int
		for len(out) < 2 {
			st, err := tr.TrainStep()
			if err != nil {
				t.Fatal(err)
			}
			if st.Split == nil || st.Split.Skipped != "" {
				t.Fatalf("step %d: no split (%+v)", st.Step, st.Split)
			}
			out = append(out, st.Split.New)
		}
		return out
	}
	if got := news(false); got[0] != got[1] { // deterministic: the first new symbol is still dead at the second split
		t.Errorf("without rotate the two splits made %v, want the same symbol twice (the case rotate is for)", got)
	}
	if got := news(true); got[0] == got[1] {
		t.Errorf("with rotate the two splits made the same new symbol %d", got[0])
	}
}

// TestSplitPick: pickByShare takes the symbol whose slots' gradients fall
// into two groups over one whose gradients are one noisy group, whatever
// their costs; it passes over SKIP, symbols without cost and symbols with
// fewer than 8 slots; ties go to the higher cost. split_pick is validated.
func TestSplitPick(t *testing.T) {
	const p = 12
	rng := rand.New(rand.NewPCG(1, 2))
	// Slots: symbol 1 (cost 9) one cloud around a centre; symbol 2 (cost
	// 3) two clouds; symbol 3 (cost 20) two clouds but 7 slots; SKIP (0)
	// two clouds; symbol 4 two clouds and no cost.
	var am []int
	var feats [][]float64
	add := func(k, n int, twoGroups bool) {
		for i := range n {
			g := make([]float64, p)
			for j := range g {
				g[j] = 0.3 * rng.NormFloat64()
			}
			g[0] += 5
			if twoGroups && i%2 == 1 {
				g[0], g[1] = g[0]-5, g[1]+5
			}
			am = append(am, k)
			feats = append(feats, g)
		}
	}
	add(1, 40, false)
	add(2, 40, true)
	add(3, 7, true)
	add(Skip, 40, true)
	add(4, 40, true)
	cost := []float64{50, 9, 3, 20, 0}
	slotGrad := func(r int) []float64 { return feats[r] }
	k, share := pickByShare(am, cost, 5, slotGrad)
	if k != 2 {
		t.Errorf("pickByShare = symbol %d (share %.3f), want 2, the two-group symbol", k, share)
	}
	if share < 0.5 {
		t.Errorf("symbol 2's top share %.3f: two groups should put most of the variance on one direction", share)
	}
	_, one := topProjection(feats[:40])
	if one >= share {
		t.Errorf("the one-group symbol's share %.3f is not below the two-group one's %.3f", one, share)
	}
	// A tie (the same slots under two symbols) goes to the higher cost.
	am2 := append(slices.Clone(am[40:80]), slices.Repeat([]int{5}, 40)...)
	for i := range 40 {
		am2[i] = 6
	}
	feats2 := append(slices.Clone(feats[40:80]), feats[40:80]...)
	cost2 := make([]float64, 7)
	cost2[5], cost2[6] = 4, 8
	if k, _ := pickByShare(am2, cost2, 7, func(r int) []float64 { return feats2[r] }); k != 6 {
		t.Errorf("tie: pickByShare = %d, want 6 (the higher cost)", k)
	}
	if k, _ := pickByShare([]int{1, 1, 1}, []float64{0, 5}, 2, slotGrad); k != 0 {
		t.Errorf("no symbol with 8 slots: pickByShare = %d, want 0", k)
	}

	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Train.SplitPick = "shares" }, `train.split_pick = "shares"`},
		{func(c *Config) { c.Train.SplitPick, c.Train.SplitEvery = SplitPickShare, 0 }, `needs exec "sym" and train.split_every > 0`},
		{func(c *Config) {
			c.Exec, c.Train.SplitRoute, c.Train.SplitDelta, c.Train.SplitPick = ExecMLP, "", 0, SplitPickShare
		}, `needs exec "sym"`},
	} {
		bad := symSplitConfig()
		c.set(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", bad.Train.SplitPick, err, c.want)
		}
	}
	good := symSplitConfig()
	good.Train.SplitPick = SplitPickCost
	if err := good.Validate(); err != nil {
		t.Errorf("split_pick cost: %v", err)
	}
}

func testSplitResumeBitExact(t *testing.T, cfg Config) {
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

// TestSplitPickWired: a split of a sym trainer with symbols 3 and 5 sharing
// the batch cuts, with split_pick "share", the symbol pickByShare names on
// the batch's own argmax slots, costs and slot gradients (read through
// splitTrace), and with "cost" the costliest. Symbol 5 takes a share q of
// the slots (those where it is closest to 3); q is chosen where the two
// picks differ, so that a split that ignored the option fails.
func TestSplitPickWired(t *testing.T) {
	t.Cleanup(func() { splitTrace = nil })
	split := func(pick string, q float64) (ev *SplitEvent, want int) {
		cfg := withSym(smallConfig())
		cfg.Train.SplitRoute, cfg.Train.SplitDelta, cfg.Train.SplitPick = SplitRouteMap, 0.2, pick
		tr := symSplitTrainerQ(t, cfg, q)
		K := cfg.K
		got := map[string]any{}
		splitTrace = func(name string, v any) { got[name] = v }
		ev, err := tr.splitSymbol(1)
		splitTrace = nil
		if err != nil {
			t.Fatal(err)
		}
		if ev.Skipped != "" {
			return ev, -1
		}
		am, cost := got["am"].([]int), got["cost"].([]float64)
		if pick == SplitPickCost {
			want = 1
			for k := 2; k < K; k++ {
				if cost[k] > cost[want] {
					want = k
				}
			}
			return ev, want
		}
		want, _ = pickByShare(am, cost, K, symSlotGrad(got["st"].([]float32), got["dn"].([]float32), len(am)/cfg.T, cfg.T, cfg.L, cfg.V))
		return ev, want
	}
	for _, q := range []float64{0.5, 0.3, 0.7, 0.2, 0.8} {
		evC, wantC := split(SplitPickCost, q)
		evS, wantS := split(SplitPickShare, q)
		if wantC < 0 || wantS < 0 {
			continue
		}
		if evC.Symbol != wantC || evS.Symbol != wantS {
			t.Fatalf("q %.1f: the cost pick cut %d (want %d), the share pick %d (want %d)", q, evC.Symbol, wantC, evS.Symbol, wantS)
		}
		if wantC != wantS {
			t.Logf("q %.1f: cost pick %d, share pick %d (top share %.3f vs the cost pick's cut %.3f)", q, wantC, wantS, evS.TopShare, evC.TopShare)
			return
		}
	}
	t.Fatal("no share of the slots for symbol 5 made the two picks differ: the test cannot tell them apart")
}
