// Tests of symbol splitting with exec sym (split.go): the split copies the
// split symbol's map and moments to the new symbol and sets its head row so
// that no slot of another symbol moves; the probe reads the logits'
// gradient; the marginals and the top direction are what they say.

package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// headLogits returns the leave-one-out logits (N·T·K) of the batch in tr.x, tr.y.
func headLogits(tr *Trainer) []float32 {
	m, tp := tr.M, tr.tp
	tp.Reset()
	tp.NoGrad = true
	defer func() { tp.NoGrad = false; tp.Reset() }()
	lg := m.Head(tp, tp.PoolPairs(m.Encode(tp, tr.x, tr.y), m.Cfg.Train.Pairs, true))
	h := make([]float32, lg.Len())
	m.B.Download(h, lg)
	return h
}

// symSplitConfig is the sym test config with a batch of 4 specifications
// (192 slots): the split's host work is the slow part under -race
// (TestSplitResumeBitExact).
func symSplitConfig() Config {
	c := withSym(smallConfig())
	c.Train.Batch = 4
	return c
}

// TestSplitSymbolSym: with every slot on symbol 3, and with 3 and 5 sharing
// the batch (so that the bias cap matters), a split copies A's map (symW
// columns, symB row) and their moments to D bit for bit, sets D's head row
// and bias (moments copied), changes nothing else, sends part of A's slots
// to D and no other slot, and reports that.
func TestSplitSymbolSym(t *testing.T) {
	runMixed(t, testSplitSymbolSym)
}

// runMixed runs test as two subtests: every slot on symbol 3 ("all-on-3"),
// and symbols 3 and 5 sharing the batch ("3-and-5"; symSplitTrainer's mixed).
func runMixed(t *testing.T, test func(t *testing.T, mixed bool)) {
	for _, mixed := range []bool{false, true} {
		name := "all-on-3"
		if mixed {
			name = "3-and-5"
		}
		t.Run(name, func(t *testing.T) { test(t, mixed) })
	}
}

// symSplitTrainer returns a trainer of cfg (exec sym) one step in, with its
// next batch drawn and every slot on symbol 3, or (mixed) half of them on 5.
func symSplitTrainer(t *testing.T, cfg Config, mixed bool) *Trainer {
	t.Helper()
	q := -1.0
	if mixed {
		q = 0.5
	}
	return symSplitTrainerQ(t, cfg, q)
}

// symSplitTrainerQ is symSplitTrainer with symbol 5 on the share q of the
// slots where it is closest to 3 (q < 0: none).
func symSplitTrainerQ(t *testing.T, cfg Config, q float64) *Trainer {
	t.Helper()
	cfg.Train.SplitEvery, cfg.Train.SplitStart = 1, 1000 // TrainStep does not split; the test calls splitSymbol
	tr := newTestTrainer(t, NewCPU(2), cfg, 10, 1)
	forceSymbol(t, tr, 3)
	if _, err := tr.TrainStep(); err != nil { // every moment non-zero
		t.Fatal(err)
	}
	forceSymbol(t, tr, 3)
	if err := tr.nextBatch(); err != nil {
		t.Fatal(err)
	}
	K := cfg.K
	if q >= 0 { // symbol 5 takes the share q of the slots where it is closest to 3
		lg := headLogits(tr)
		var d []float64
		for r := range len(lg) / K {
			d = append(d, float64(lg[r*K+3]-lg[r*K+5]))
		}
		slices.Sort(d)
		bias := tr.M.P.Get("head.2.bias")
		h := make([]float32, bias.Len())
		tr.M.B.Download(h, bias)
		h[5] += float32(d[int(q*float64(len(d)))])
		tr.M.B.Upload(bias, h)
	}
	return tr
}

func testSplitSymbolSym(t *testing.T, mixed bool) {
	// Batch 8: with 4, the cap leaves all of A's slots on A in the mixed case.
	cfg := withSym(smallConfig())
	tr := symSplitTrainer(t, cfg, mixed)
	K, L, V, D := cfg.K, cfg.L, cfg.V, cfg.D
	pre := programsOf(tr)
	before := tr.M.P.Export(true)
	ev, err := tr.splitSymbol(1)
	if err != nil {
		t.Fatal(err)
	}
	A, Dn := ev.Symbol, ev.New
	nA := 0
	for _, k := range pre {
		if k == A {
			nA++
		}
	}
	if ev.Skipped != "" || (A != 3 && !(mixed && A == 5)) || Dn != 1 || ev.Slots != nA || !(ev.TopShare > 0 && ev.TopShare <= 1) {
		t.Fatalf("split %+v, want a symbol split into the dead symbol 1 over its %d slots", ev, nA)
	}
	if ev.Route != SplitRouteHead {
		t.Errorf("route %q, want %q", ev.Route, SplitRouteHead)
	}
	if mixed != ev.Capped {
		t.Errorf("capped %v, want %v (no other slots when all are on 3)", ev.Capped, mixed)
	}
	n := 0
	for _, c := range ev.ToNew {
		n += c
	}
	for _, c := range ev.Stay {
		n += c
	}
	if n != ev.Slots || len(ev.ToNew) == 0 || len(ev.Stay) == 0 {
		t.Errorf("split sides %v | %v", ev.ToNew, ev.Stay)
	}
	// Where the slots went: the event's counts, none but A's to D.
	post := programsOf(tr)
	toD, others := 0, 0
	for r, k := range post {
		if pre[r] != k && k != Dn {
			t.Fatalf("slot %d moved from %d to %d, not to the new symbol", r, pre[r], k)
		}
		if k == Dn {
			if pre[r] == A {
				toD++
			} else {
				others++
			}
		}
	}
	if toD != ev.ToD || others != 0 || ev.OthersToD != 0 {
		t.Errorf("to_D %d (counted %d), others_to_D %d (counted %d), want 0", ev.ToD, toD, ev.OthersToD, others)
	}
	if toD == 0 || (!mixed && toD == nA) {
		t.Errorf("%d of symbol %d's %d slots now on %d", toD, A, nA, Dn)
	}

	// Parameters and moments.
	LV := L * V
	after := tr.M.P.Export(true)
	checkSplitCopies(t, before, after, K, LV, A, Dn, func(base string, moment bool) bool {
		return moment || base == "symW" || base == "symB"
	})
	// D's head row differs from A's (a discriminant), and A's map equals
	// D's (checked above against before; A's own columns did not change).
	var w []float32
	for _, a := range after {
		if a.Name == "head.2.weight" {
			w = a.Data
		}
	}
	if slices.Equal(w[Dn*D:(Dn+1)*D], w[A*D:(A+1)*D]) {
		t.Error("the new symbol's head row equals the split one's")
	}
}

// TestSymProbeGradient: executeSymProbe's result is Execute's bit for bit,
// the probe's gradient is zero at SKIP slots, and elsewhere it is the NLL's
// gradient with respect to the step's logits: central differences of one
// pair's NLL (in float64 from the float32 states) when the probe element
// (the slot's largest) is moved by ±ε, at 12 slots.
func TestSymProbeGradient(t *testing.T) {
	cfg := withSym(smallConfig())
	b := NewCPU(1)
	m, err := NewModel(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(3)
	const N = 6
	const tau = 1
	T, K, L, V := cfg.T, cfg.K, cfg.L, cfg.V
	rng := rand.New(rand.NewPCG(5, 6))
	xH, yH := make([]int32, N*L), make([]int32, N*L)
	for i := range xH {
		xH[i], yH[i] = int32(rng.IntN(V)), int32(rng.IntN(V))
	}
	zH := make([]float32, N*T*K)
	for r := range N * T {
		zH[r*K+rng.IntN(K)] = 1 // SKIP (0) in some slots
	}
	tp := NewTape(b)
	defer tp.Free()
	x, y := NewView(b.AllocInt(N*L), 0, N, L), NewView(b.AllocInt(N*L), 0, N, L)
	b.UploadInt(x, xH)
	b.UploadInt(y, yH)
	z := NewView(b.Alloc(N*T*K), 0, N, T, K)
	b.Upload(z, zH)

	tp.NoGrad = true
	ref := make([]float32, N*L*V)
	b.Download(ref, m.Execute(tp, x, z, tau, nil, false))
	tp.NoGrad = false
	tp.Reset()
	pi, pr := m.executeSymProbe(tp, x, z, tau)
	got := make([]float32, N*L*V)
	b.Download(got, pi)
	if !slices.Equal(got, ref) {
		t.Fatal("executeSymProbe's states differ from Execute's")
	}
	tp.Backward(tp.NLL(pi, y, 1))
	g := make([]float32, T*N*L*V)
	b.Download(g, pr.dn.Grad)
	tp.Reset()

	// pairNLL runs the interpreter with the probe's element (t, n, j) at
	// delta and returns pair n's NLL.
	dnH := make([]float32, T*N*L*V)
	pairNLL := func(t, n, j int, delta float32) float64 {
		tp.Reset()
		tp.NoGrad = true
		defer func() { tp.NoGrad = false; tp.Reset() }()
		clear(dnH)
		dnH[(t*N+n)*L*V+j] = delta
		q := &symProbe{dn: tp.New(false, T, N, L, V), pi: make([]*Tensor, T)}
		b.Upload(q.dn, dnH)
		p := make([]float32, N*L*V)
		b.Download(p, m.executeSym(tp, x, tp.Transpose01(z), tau, nil, false, nil, 1, q))
		s := 0.0
		for l := range L {
			s -= math.Log(max(float64(p[(n*L+l)*V+int(yH[n*L+l])]), probFloor))
		}
		return s
	}
	checked := 0
	for st := range T {
		for n := range N {
			if zH[(n*T+st)*K+Skip] == 1 {
				for j := range L * V {
					if g[(st*N+n)*L*V+j] != 0 {
						t.Fatalf("SKIP slot (%d, %d) has a logit gradient", n, st)
					}
				}
				continue
			}
			row := g[(st*N+n)*L*V : (st*N+n+1)*L*V]
			j := 0
			for i := range row {
				if math.Abs(float64(row[i])) > math.Abs(float64(row[j])) {
					j = i
				}
			}
			if math.Abs(float64(row[j])) < 1e-3 || checked == 12 { // below the float32 differences' resolution; enough
				continue
			}
			const eps = 1e-2
			fd := (pairNLL(st, n, j, eps) - pairNLL(st, n, j, -eps)) / (2 * eps)
			if !closeTo(float64(row[j]), fd, 1e-4, 1e-2) {
				t.Errorf("slot (%d, %d) logit %d: probe gradient %g, central difference %g", n, st, j, row[j], fd)
			}
			checked++
		}
	}
	if checked < 12 {
		t.Fatalf("only %d slots checked", checked)
	}
}

// TestSymMarginals: symMarginals equals the reductions of the full outer
// product outer(pi, dn) (L·V × L·V), computed directly.
func TestSymMarginals(t *testing.T) {
	const L, V = 5, 3
	rng := rand.New(rand.NewPCG(7, 8))
	pi, dn := make([]float32, L*V), make([]float32, L*V)
	for i := range pi {
		pi[i], dn[i] = float32(rng.Float64()), float32(rng.NormFloat64())
	}
	pi[4] = 0
	O := make([]float64, L*V*L*V)
	for i := range L * V {
		for j := range L * V {
			O[i*L*V+j] = float64(pi[i]) * float64(dn[j])
		}
	}
	want := make([]float64, V*V+L*L)
	for v := range V {
		for w := range V {
			for l := range L {
				want[v*V+w] += O[(l*V+v)*L*V+l*V+w] // v at l → w at l
			}
		}
	}
	for l := range L {
		for k := range L {
			for v := range V {
				want[V*V+l*L+k] += O[(l*V+v)*L*V+k*V+v] // v at l → v at k
			}
		}
	}
	got := symMarginals(pi, dn, L, V)
	for i := range want {
		if !closeTo(got[i], want[i], 1e-12, 1e-12) {
			t.Fatalf("marginal %d: %g, want %g", i, got[i], want[i])
		}
	}
}

// TestTopProjection: on rows that are a shared part plus ±s along one
// direction plus noise, the projection separates the two groups at its
// median, the Gram and the scatter forms agree (up to the projection's
// scale), and the share is that of the top eigenvalue.
func TestTopProjection(t *testing.T) {
	const n, p = 40, 30
	rng := rand.New(rand.NewPCG(9, 10))
	base, dir := make([]float64, p), make([]float64, p)
	for j := range p {
		base[j], dir[j] = rng.NormFloat64(), rng.NormFloat64()
	}
	G := make([][]float64, n)
	side := make([]bool, n)
	for i := range G {
		side[i] = i%3 == 0 || i%3 == 1 && i > 20
		s := -1.0
		if side[i] {
			s = 1
		}
		G[i] = make([]float64, p)
		for j := range p {
			G[i][j] = base[j] + 0.8*s*dir[j] + 0.1*rng.NormFloat64()
		}
	}
	pg, sg := topProjectionBy(G, true)
	ps, ss := topProjectionBy(G, false)
	pd, _ := topProjection(G) // n > p: the scatter
	if !slices.Equal(pd, ps) {
		t.Error("topProjection did not take the scatter form for n > p")
	}
	nrm := 0.0
	for _, v := range ps {
		nrm += v * v
	}
	nrm = math.Sqrt(nrm)
	for i := range pg {
		if !closeTo(ps[i]/nrm, pg[i], 1e-9, 1e-7) {
			t.Fatalf("row %d: scatter form %g, Gram form %g", i, ps[i]/nrm, pg[i])
		}
	}
	if !closeTo(sg, ss, 1e-9, 1e-9) || !(sg > 0.5 && sg <= 1) {
		t.Errorf("top share %g (Gram) vs %g (scatter), want equal and most of the variance", sg, ss)
	}
	for i, v := range pg {
		if want := (side[i] == side[0]) == (pg[0] > 0); (v > 0) != want {
			t.Fatalf("row %d on the wrong side: %v", i, pg)
		}
	}
	// No variation: nil.
	same := [][]float64{{1, 2, 3}, {2, 4, 6}, {1, 2, 3}}
	if pr, _ := topProjection(same); pr != nil {
		t.Errorf("rows equal after normalisation: projection %v, want nil", pr)
	}
}

// TestSplitEventJSON: a skipped split is logged as its step and reason, a
// made one with every field, others_to_D and capped included when zero.
func TestSplitEventJSON(t *testing.T) {
	b, err := json.Marshal(&SplitEvent{Step: 4, Skipped: "no dead symbol"})
	if err != nil || string(b) != `{"step":4,"skipped":"no dead symbol"}` {
		t.Errorf("skipped split: %s, %v", b, err)
	}
	b, err = json.Marshal(SplitEvent{Step: 4, Symbol: 3, New: 1, Slots: 9, ToD: 4})
	if err != nil || !strings.Contains(string(b), `"to_D":4,"others_to_D":0,"capped":false`) || !strings.Contains(string(b), `"symbol":3`) {
		t.Errorf("split: %s, %v", b, err)
	}
	var back SplitEvent
	if err := json.Unmarshal(b, &back); err != nil || back.ToD != 4 || back.Symbol != 3 {
		t.Errorf("split read back: %+v, %v", back, err)
	}
}

// TestTopEigen: topEigen's power iteration finds the top eigenpair that
// gonum's symmetric eigendecomposition finds, on a scatter of random rows
// and on a matrix whose two top eigenvalues are 1% apart.
func TestTopEigen(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const m = 30
	scatter := make([]float64, m*m)
	for range 50 {
		x := make([]float64, m)
		for j := range x {
			x[j] = rng.NormFloat64()
		}
		for a := range m {
			for b := range m {
				scatter[a*m+b] += x[a] * x[b]
			}
		}
	}
	// Q·diag(1, 0.99, 0.5, 0.5·0.9, …)·Qᵀ, Q from Gram–Schmidt on random vectors.
	var Q [][]float64
	for len(Q) < m {
		v := make([]float64, m)
		for j := range v {
			v[j] = rng.NormFloat64()
		}
		for _, q := range Q {
			d := 0.0
			for j := range v {
				d += v[j] * q[j]
			}
			for j := range v {
				v[j] -= d * q[j]
			}
		}
		n := 0.0
		for _, x := range v {
			n += x * x
		}
		for j := range v {
			v[j] /= math.Sqrt(n)
		}
		Q = append(Q, v)
	}
	close2 := make([]float64, m*m)
	for k, q := range Q {
		lam := 0.5 * math.Pow(0.9, float64(k-2))
		switch k {
		case 0:
			lam = 1
		case 1:
			lam = 0.99
		}
		for a := range m {
			for b := range m {
				close2[a*m+b] += lam * q[a] * q[b]
			}
		}
	}
	for name, S := range map[string][]float64{"scatter": scatter, "gap 1%": close2} {
		lam, u := topEigen(S, m)
		var es mat.EigenSym
		if !es.Factorize(mat.NewSymDense(m, slices.Clone(S)), true) {
			t.Fatal("gonum: no factorisation")
		}
		vals := es.Values(nil)
		var vecs mat.Dense
		es.VectorsTo(&vecs)
		dot := 0.0
		for i := range m {
			dot += u[i] * vecs.At(i, m-1)
		}
		if !closeTo(lam, vals[m-1], 0, 1e-10) || !(math.Abs(dot) > 1-1e-9) {
			t.Errorf("%s: top eigenvalue %g (gonum %g), |cos| with gonum's vector %.12f", name, lam, vals[m-1], math.Abs(dot))
		}
	}
}

// TestSplitSymbolSymMap: train.split_route "map" (recipe.py --split_route
// map), with every slot on symbol 3 and with 3 and 5 sharing the batch. D's
// head row is A's bit for bit and its bias A's − δ, so no slot moves; D's
// map is A's minus η‖w_A‖·g/‖g‖, with g the gradient of the NLL with
// respect to D's map when the plus side's slots run on D and D's map is
// A's, computed independently by the tape's backward pass (symW.Grad,
// symB.Grad); A's map and everything else are unchanged; D's moments are
// copies of A's; and with the plus side on D the batch's NLL is lower.
func TestSplitSymbolSymMap(t *testing.T) {
	runMixed(t, testSplitSymbolSymMap)
}

func testSplitSymbolSymMap(t *testing.T, mixed bool) {
	const eta, delta = 0.2, 0.3
	cfg := withSym(smallConfig())
	cfg.Train.SplitRoute, cfg.Train.SplitEta, cfg.Train.SplitDelta = SplitRouteMap, eta, delta
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := symSplitTrainer(t, cfg, mixed)
	m, tp, b := tr.M, tr.tp, tr.M.B
	K, L, V, T := cfg.K, cfg.L, cfg.V, cfg.T
	LV, KLV, LD := L*V, K*L*V, L*cfg.DS
	pre := programsOf(tr)
	before := m.P.Export(true)
	ev, err := tr.splitSymbol(1)
	if err != nil {
		t.Fatal(err)
	}
	A, Dn := ev.Symbol, ev.New
	if ev.Skipped != "" || (A != 3 && !(mixed && A == 5)) || Dn != 1 || ev.Route != SplitRouteMap || ev.Capped {
		t.Fatalf("split %+v, want a map-route split of symbol 3 (or 5) into 1, not capped", ev)
	}
	n := 0
	for _, c := range ev.ToNew {
		n += c
	}
	if n != len(ev.plusRows) || n == 0 || n == ev.Slots {
		t.Fatalf("plus side: %d slots, to_new %v, of %d", len(ev.plusRows), ev.ToNew, ev.Slots)
	}
	for _, r := range ev.plusRows {
		if pre[r] != A {
			t.Fatalf("plus-side slot %d holds %d, not %d", r, pre[r], A)
		}
	}
	// No slot moves: D's logit is A's − δ everywhere.
	if post := programsOf(tr); !slices.Equal(post, pre) || ev.ToD != 0 || ev.OthersToD != 0 {
		t.Errorf("slots moved by the map route's split (to_D %d, others_to_D %d)", ev.ToD, ev.OthersToD)
	}
	if js, err := json.Marshal(ev); err != nil || !strings.Contains(string(js), `"route":"map"`) {
		t.Errorf("event JSON %s, %v: no route", js, err)
	}

	// Everything but D's rows unchanged; D's head row and moments copies
	// of A's; D's bias A's − δ.
	after := m.P.Export(true)
	byName := func(ts []NamedTensor, name string) []float32 {
		for _, x := range ts {
			if x.Name == name {
				return x.Data
			}
		}
		t.Fatalf("no tensor %s", name)
		return nil
	}
	checkSplitCopies(t, before, after, K, LV, A, Dn, func(base string, moment bool) bool {
		return moment || base == "head.2.weight"
	})
	bb, ba := byName(before, "head.2.bias"), byName(after, "head.2.bias")
	if want := float32(float64(bb[A]) - delta); ba[Dn] != want {
		t.Errorf("D's bias %g, want A's %g − %g = %g", ba[Dn], bb[A], delta, want)
	}

	// The expected step: the parameters of before with D's map set to
	// A's, the plus side's slots on D, the NLL's gradient by the tape.
	start := make([]NamedTensor, len(before))
	for i, x := range before {
		start[i] = NamedTensor{Name: x.Name, Shape: x.Shape, Data: slices.Clone(x.Data)}
	}
	sw0, sb0 := byName(start, "symW"), byName(start, "symB")
	for c := range LD {
		copy(sw0[c*KLV+Dn*LV:c*KLV+(Dn+1)*LV], sw0[c*KLV+A*LV:c*KLV+(A+1)*LV])
	}
	copy(sb0[Dn*LV:(Dn+1)*LV], sb0[A*LV:(A+1)*LV])
	if err := m.P.Import(start, true, "test"); err != nil {
		t.Fatal(err)
	}
	N := tr.x.Dim(0)
	prog := func(onD bool) *Tensor {
		zH := make([]float32, N*T*K)
		for r, k := range pre {
			zH[r*K+k] = 1
		}
		if onD {
			for _, r := range ev.plusRows {
				zH[r*K+A], zH[r*K+Dn] = 0, 1
			}
		}
		z := tp.New(false, N, T, K)
		b.Upload(z, zH)
		return z
	}
	tp.Reset()
	m.P.ZeroGrad()
	tp.Backward(tp.NLL(m.Execute(tp, tr.x, prog(true), 1, nil, false), tr.y, 1))
	gW := make([]float32, LD*KLV)
	gB := make([]float32, K*LV)
	b.Download(gW, m.P.Get("symW").Grad)
	b.Download(gB, m.P.Get("symB").Grad)
	tp.Reset()
	m.P.ZeroGrad()
	var g, wa []float64
	for c := range LD {
		for j := range LV {
			g = append(g, float64(gW[c*KLV+Dn*LV+j]))
			wa = append(wa, float64(sw0[c*KLV+A*LV+j]))
		}
	}
	for j := range LV {
		g = append(g, float64(gB[Dn*LV+j]))
		wa = append(wa, float64(sb0[A*LV+j]))
	}
	norm := func(x []float64) float64 {
		s := 0.0
		for _, v := range x {
			s += v * v
		}
		return math.Sqrt(s)
	}
	gn, an := norm(g), norm(wa)
	if !(gn > 0) {
		t.Fatal("the plus side's gradient is zero")
	}
	swA, sbA := byName(after, "symW"), byName(after, "symB")
	var got []float64
	for c := range LD {
		for j := range LV {
			got = append(got, float64(swA[c*KLV+Dn*LV+j]))
		}
	}
	for j := range LV {
		got = append(got, float64(sbA[Dn*LV+j]))
	}
	stepN := eta * an
	for i := range got {
		want := wa[i] - stepN*g[i]/gn
		if math.Abs(got[i]-want) > 1e-6+1e-3*stepN*math.Abs(g[i])/gn+1e-6*math.Abs(want) {
			t.Fatalf("D's map element %d: %g, want %g (A's %g, step %g)", i, got[i], want, wa[i], stepN*g[i]/gn)
		}
	}
	diff := make([]float64, len(got))
	for i := range got {
		diff[i] = got[i] - wa[i]
	}
	if d := norm(diff); !closeTo(d, stepN, 0, 1e-4) {
		t.Errorf("‖D's map − A's‖ = %g, want η‖w_A‖ = %g", d, stepN)
	}

	// With the split's parameters, the plus side on D lowers the NLL.
	if err := m.P.Import(after, true, "test"); err != nil {
		t.Fatal(err)
	}
	nll := func(onD bool) float64 {
		tp.Reset()
		tp.NoGrad = true
		defer func() { tp.NoGrad = false; tp.Reset() }()
		h := make([]float32, 1)
		b.Download(h, tp.NLL(m.Execute(tp, tr.x, prog(onD), 1, nil, false), tr.y, 1))
		return float64(h[0])
	}
	if on, off := nll(true), nll(false); !(on < off) {
		t.Errorf("NLL with the plus side on D %g, on A %g: want lower on D", on, off)
	}
}

// splitDst returns, for the split of symbol A into Dn, a function that
// reports whether element j of the exported tensor (or moment) named base
// (n elements) is one the sym split sets — row Dn of the head's output
// layer, of symB, or map Dn's columns of symW — and src, the matching
// element of A.
func splitDst(base string, n, K, LV, A, Dn int) func(j int) (set bool, src int) {
	switch base {
	case "head.2.weight", "head.2.bias", "symB":
		w := n / K
		return func(j int) (bool, int) { return j/w == Dn, A*w + j%w }
	case "symW":
		KLV := K * LV
		return func(j int) (bool, int) {
			c := j % KLV
			return c/LV == Dn, j - c + A*LV + c%LV
		}
	}
	return func(int) (bool, int) { return false, 0 }
}

// checkSplitCopies compares the exported parameters and moments after a sym
// split with those before: every element the split does not set
// (splitDst) is unchanged, and those it sets in a tensor for which
// copied(base name, is a moment) holds are copies of symbol A's.
func checkSplitCopies(t *testing.T, before, after []NamedTensor, K, LV, A, Dn int, copied func(base string, moment bool) bool) {
	t.Helper()
	for i, a := range after {
		bt := before[i]
		base := strings.TrimPrefix(strings.TrimPrefix(a.Name, "adam_m/"), "adam_v/")
		cp := copied(base, base != a.Name)
		dst := splitDst(base, len(a.Data), K, LV, A, Dn)
		for j := range a.Data {
			set, src := dst(j)
			switch {
			case !set && a.Data[j] != bt.Data[j]:
				t.Fatalf("%s[%d] changed by the split (%g → %g)", a.Name, j, bt.Data[j], a.Data[j])
			case set && cp && a.Data[j] != bt.Data[src]:
				t.Fatalf("%s[%d] of the new symbol %g, want a copy of symbol %d's %g", a.Name, j, a.Data[j], A, bt.Data[src])
			}
		}
	}
}

// TestSplitSymbolSymBoth: the "both" route is the head route's head row and
// the map route's map. Three trainers in the same state split the same
// symbol, one per route: "both" sets D's head row and bias exactly as
// "head" does (so the same slots turn to D, and some do), and D's map
// (symW columns, symB row) exactly as "map" does; everything else, moments
// included, as "head".
func TestSplitSymbolSymBoth(t *testing.T) {
	runMixed(t, testSplitSymbolSymBoth)
}

func testSplitSymbolSymBoth(t *testing.T, mixed bool) {
	const eta = 0.2
	split := func(route string) (*SplitEvent, []NamedTensor, []int) {
		cfg := withSym(smallConfig())
		cfg.Train.SplitRoute = route
		if route != SplitRouteHead {
			cfg.Train.SplitEta = eta
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		tr := symSplitTrainer(t, cfg, mixed)
		ev, err := tr.splitSymbol(1)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Skipped != "" || ev.Route != route {
			t.Fatalf("%s route: split %+v", route, ev)
		}
		return ev, tr.M.P.Export(true), programsOf(tr)
	}
	evH, pH, progH := split(SplitRouteHead)
	evM, pM, _ := split(SplitRouteMap)
	evB, pB, progB := split(SplitRouteBoth)
	A, Dn := evB.Symbol, evB.New
	if evH.Symbol != A || evM.Symbol != A || evH.New != Dn || evM.New != Dn {
		t.Fatalf("routes split different symbols: head %d→%d, map %d→%d, both %d→%d", evH.Symbol, evH.New, evM.Symbol, evM.New, A, Dn)
	}
	if evB.ToD != evH.ToD || evB.OthersToD != evH.OthersToD || evB.ToD == 0 || !slices.Equal(progB, progH) {
		t.Errorf("both route: to_D %d (others %d), head route: %d (%d); want the head route's slots on D, some", evB.ToD, evB.OthersToD, evH.ToD, evH.OthersToD)
	}
	if len(evB.plusRows) == 0 || !slices.Equal(evB.plusRows, evM.plusRows) {
		t.Errorf("plus side: both %v, map %v", evB.plusRows, evM.plusRows)
	}
	sc := withSym(smallConfig())
	K, LV := sc.K, sc.L*sc.V
	for i := range pB {
		name, b := pB[i].Name, pB[i].Data
		want := pH[i].Data // the head route's, but for D's map
		if name == "symW" || name == "symB" {
			want = slices.Clone(want)
			dst := splitDst(name, len(want), K, LV, A, Dn)
			for j := range want {
				if set, _ := dst(j); set {
					want[j] = pM[i].Data[j]
				}
			}
		}
		if pH[i].Name != name || pM[i].Name != name {
			t.Fatalf("tensor %d: %s / %s / %s", i, pH[i].Name, pM[i].Name, name)
		}
		if !slices.Equal(b, want) {
			n := 0
			for j := range b {
				if b[j] != want[j] {
					n++
				}
			}
			t.Errorf("%s: %d elements differ from the head route's (D's map: the map route's)", name, n)
		}
	}
	// D's map differs from A's (the step was taken).
	symBOf := func(ps []NamedTensor) []float32 {
		for _, x := range ps {
			if x.Name == "symB" {
				return x.Data
			}
		}
		t.Fatal("no symB")
		return nil
	}
	if b := symBOf(pB); slices.Equal(b[Dn*LV:(Dn+1)*LV], b[A*LV:(A+1)*LV]) {
		t.Error("both route: D's symB row equals A's: no map step")
	}
}
