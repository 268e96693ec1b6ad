// Gradient-guided symbol splitting (train.split_every), the Go form of
// docs/experiments/recipe.py --split_every: when several primitives share
// one symbol (comp-i's {inc, dec, neg, addpos}), no gradient makes the
// inductor tell them apart, because no other symbol does any of them. Like
// re-seeding a dead code of a VQ codebook, with the split direction of the
// LBG algorithm, a split takes the used symbol A whose tasks carry the most
// NLL, the gradients of those tasks' NLL with respect to their instruction
// embedding, and the top principal direction u of the gradients: tasks on
// either side of the median projection want A's embedding to move opposite
// ways. A dead symbol D becomes E_v[A] − η‖E_v[A]‖u (a small step down
// the gradient of the tasks it is meant for; A stays, so the tasks left on
// it lose nothing), D's row of the head's output layer becomes A's plus a
// linear discriminant of the two sides' head features, so the inductor
// sends one side to D, and D's rows take A's AdamW moments (a copy of A,
// so its first updates are of the usual size). A first version that moved
// A too (±η‖E_v[A]‖u, η 0.25) and reset the moments made the NLL jump
// from 42 to 97 at one split of a tiny CPU run.
//
// With exec sym there is no instruction embedding: as recipe.py's
// split_symbol there, a slot's gradient is that of its pair's NLL with
// respect to the slot's own map, outer(π_t, ∂NLL/∂n_t) in the folded state
// coordinates, reduced to its two input-free marginals (symMarginals; the
// logits' gradient is read through a probe, executeSymProbe). The rows are
// normalised and centred before their top direction is taken
// (topProjection). D's head row is A's plus α·w/‖w‖ divided by the spread
// of A's slots along w, and D's bias is capped so that no slot of another
// symbol turns to D (with w/‖w‖², sweep 16's D took every slot of the
// batch, SKIP's included); D's map (symW columns, symB row) starts as a
// copy of A's, its moments too. That is the head route; with
// train.split_route "map" (recipe.py --split_route map) D's head row is
// A's with its bias lower by train.split_delta (default 0.5), so no slot
// turns to D by the head, and D's map is A's moved one relative step
// η‖w_A‖ down the normalised gradient of the plus side's NLL with respect
// to A's map (splitMapStep): the plus side's tasks do better on D, and the
// inductor's own gradient routes them there. A and its map stay; D's
// moments are copies of A's on both routes. Route "both" (no recipe.py
// counterpart) sets D's head row as the head route does and D's map as the
// map route does: Go sweep 16's failed comp-i seeds split the same merged
// symbol every 500 steps into exactly its two primitives (rev | swap) on
// the map route, with no slot turning to D (to_D 0), and the two merged
// again before the next split.

package model

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// SplitEvent reports one split, or why none was made.
type SplitEvent struct {
	Step     int            `json:"step"` // steps done before the split
	Skipped  string         `json:"skipped,omitempty"`
	Symbol   int            `json:"symbol,omitempty"`    // A, the split symbol
	New      int            `json:"new,omitempty"`       // D, the dead symbol that took half its tasks
	Slots    int            `json:"slots,omitempty"`     // (pair, slot) places holding A in the batch
	Cost     float64        `json:"cost,omitempty"`      // summed NLL of the pairs whose program uses A
	TopShare float64        `json:"top_share,omitempty"` // share of the gradients' variance along u
	ToNew    map[string]int `json:"to_new,omitempty"`    // the task programs of the slots sent to D
	Stay     map[string]int `json:"stay,omitempty"`      // … and of those left on A
	// After the split, on the batch: A's slots whose argmax is now D, and
	// the other slots now on D (0 unless the head's new row misfires);
	// Capped: exec sym's cap on D's bias applied.
	ToD       int  `json:"to_D"`
	OthersToD int  `json:"others_to_D"`
	Capped    bool `json:"capped"`
	// Route: exec sym's split route, "head" or "map" (train.split_route);
	// empty for the MLP and FiLM splits.
	Route string `json:"route,omitempty"`

	plusRows []int // map route: the slots (n·T+t) of the plus side, for tests
}

// MarshalJSON writes a skipped split as its step and reason only.
func (e SplitEvent) MarshalJSON() ([]byte, error) {
	type plain SplitEvent
	if e.Skipped != "" {
		return json.Marshal(struct {
			Step    int    `json:"step"`
			Skipped string `json:"skipped"`
		}{e.Step, e.Skipped})
	}
	return json.Marshal(plain(e))
}

// splitTrace, when set (tests only: TestSplitCrossCheck), receives
// splitSymbol's intermediate values by name as they are computed.
var splitTrace func(name string, v any)

// splitDue reports whether a split runs before step (0-based) of the run.
func (tr *Trainer) splitDue(step int) bool {
	c := tr.M.Cfg.Train
	step, steps := tr.mainStep(step) // train.pretrain's steps do not count
	if c.SplitEvery <= 0 || step < c.SplitStart || step%c.SplitEvery != 0 {
		return false
	}
	end := c.SplitEnd
	if end == 0 {
		end = 0.7
	}
	return float64(step)/float64(steps) < end
}

// splitIndex is the number of splits due before the current step (0 for
// the first), counted from train.split_start in the main phase.
func (tr *Trainer) splitIndex() int {
	c := tr.M.Cfg.Train
	step, _ := tr.mainStep(tr.Step)
	if c.SplitEvery <= 0 || step < c.SplitStart {
		return 0
	}
	return (step - c.SplitStart) / c.SplitEvery
}

// pickDead returns the symbol a split turns into the new one: of the dead
// symbols (no argmax slot, SKIP = 0 excluded) the first, or with rotate the
// (n mod d)-th of the d of them for the n-th split; −1 if none is dead.
func pickDead(uses []int, n int, rotate bool) int {
	var dead []int
	for k := 1; k < len(uses); k++ {
		if uses[k] == 0 {
			if !rotate {
				return k
			}
			dead = append(dead, k)
		}
	}
	if len(dead) == 0 {
		return -1
	}
	return dead[n%len(dead)]
}

// splitSymbol runs one split on the batch in tr.x, tr.y (tr.prog its
// programs) at interpreter temperature tauD. It draws no random numbers, so
// a resumed run splits exactly as the uninterrupted one. It leaves the tape
// reset and the parameter gradients dirty (TrainStep zeroes them next).
func (tr *Trainer) splitSymbol(tauD float64) (*SplitEvent, error) {
	m, tp, b := tr.M, tr.tp, tr.M.B
	cfg := m.Cfg
	N, T, K, D, DV, L, V := tr.x.Dim(0), cfg.T, cfg.K, cfg.D, cfg.DV, cfg.L, cfg.V // D: the head's width
	ev := &SplitEvent{Step: tr.Step}
	eta, alpha, delta := cfg.Train.SplitEta, cfg.Train.SplitAlpha, cfg.Train.SplitDelta
	if eta == 0 {
		eta = 0.1
	}
	if alpha == 0 {
		alpha = 4
	}
	if delta == 0 {
		delta = 0.5
	}
	mapRoute := cfg.Sym() && cfg.Train.SplitRoute == SplitRouteMap
	bothRoute := cfg.Sym() && cfg.Train.SplitRoute == SplitRouteBoth
	if cfg.Sym() {
		ev.Route = SplitRouteHead
		if mapRoute || bothRoute {
			ev.Route = cfg.Train.SplitRoute
		}
	}

	// 1. The leave-one-out programs and the head's hidden features.
	tp.Reset()
	tp.NoGrad = true
	e := m.Encode(tp, tr.x, tr.y)
	eb := tp.PoolPairs(e, cfg.Train.Pairs, true)
	hid, lg := m.headParts(tp, eb) // (N, T, d), (N, T, K)
	hidH := make([]float32, N*T*D)
	lgH := make([]float32, N*T*K)
	b.Download(hidH, hid)
	b.Download(lgH, lg)
	tp.NoGrad = false
	tp.Reset()
	am := make([]int, N*T)
	uses := make([]int, K)
	for r := range am {
		row := lgH[r*K : (r+1)*K]
		best := 0
		for k := 1; k < K; k++ {
			if row[k] > row[best] {
				best = k
			}
		}
		am[r] = best
		uses[best]++
	}
	dead := pickDead(uses, tr.splitIndex(), cfg.Train.SplitRotate)
	if splitTrace != nil {
		splitTrace("am", am)
		splitTrace("dead", dead)
	}
	if dead < 0 {
		ev.Skipped = "no dead symbol"
		return ev, nil
	}

	// 2. The hard programs run without noise: per-pair NLL, and per slot
	// (n·T+t) the gradient features slotGrad gives for A's slots below.
	zH := make([]float32, N*T*K)
	for r, k := range am {
		zH[r*K+k] = 1
	}
	z := tp.New(false, N, T, K)
	b.Upload(z, zH)
	var slotGrad func(r int) []float64
	var pi *Tensor
	var stH, dnH []float32 // exec sym: per slot ((t·N+n)·L·V) the state read and ∂NLL/∂n_t
	if cfg.Sym() {
		// exec sym: the gradient with respect to the slot's own map, as
		// its two input-free marginals (symMarginals).
		var pr *symProbe
		pi, pr = m.executeSymProbe(tp, tr.x, z, float32(tauD))
		tp.Backward(tp.NLL(pi, tr.y, 1))
		LV := L * V
		dnH = make([]float32, T*N*LV)
		b.Download(dnH, pr.dn.Grad)
		stH = make([]float32, T*N*LV)
		for t := range T {
			b.Download(stH[t*N*LV:(t+1)*N*LV], pr.pi[t])
		}
		slotGrad = symSlotGrad(stH, dnH, N, T, L, V)
	} else {
		// The instruction embeddings as leaves: the gradient with respect
		// to each slot's instruction.
		evH := make([]float32, K*DV)
		b.Download(evH, m.ev)
		instrH := make([]float32, T*N*DV)
		for r, k := range am {
			n, t := r/T, r%T
			copy(instrH[(t*N+n)*DV:(t*N+n+1)*DV], evH[k*DV:(k+1)*DV])
		}
		instr := tp.New(true, T, N, DV)
		b.Upload(instr, instrH)
		pi = m.executeInstr(tp, tr.x, z, instr, float32(tauD), nil, false, nil, 1)
		tp.Backward(tp.NLL(pi, tr.y, 1))
		gH := make([]float32, T*N*DV)
		b.Download(gH, instr.Grad)
		slotGrad = func(r int) []float64 {
			o := ((r%T)*N + r/T) * DV
			g := make([]float64, DV)
			for j := range g {
				g[j] = float64(gH[o+j])
			}
			return g
		}
	}
	piH := make([]float32, N*L*V)
	b.Download(piH, pi)
	yH := make([]int32, N*L)
	b.DownloadInt(yH, tr.y)
	tp.Reset()
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	pairNLL := make([]float64, N)
	for n := range N {
		for l := range L {
			p := float64(piH[(n*L+l)*V+int(yH[n*L+l])])
			pairNLL[n] -= math.Log(max(p, probFloor))
		}
	}
	cost := make([]float64, K)
	for n := range N {
		seen := map[int]bool{}
		for t := range T {
			if k := am[n*T+t]; k != Skip && !seen[k] {
				seen[k] = true
				cost[k] += pairNLL[n]
			}
		}
	}
	A := 0
	for k := 1; k < K; k++ {
		if cost[k] > cost[A] {
			A = k
		}
	}
	if cfg.Train.SplitPick == SplitPickShare {
		if A, _ = pickByShare(am, cost, K, slotGrad); A == 0 {
			ev.Skipped = "no symbol but SKIP with 8 slots and a cost"
			return ev, nil
		}
	}
	if splitTrace != nil {
		splitTrace("pair_nll", pairNLL)
		splitTrace("cost", cost)
		splitTrace("A", A)
		if cfg.Sym() {
			splitTrace("st", stH)
			splitTrace("dn", dnH)
		}
	}
	if A == 0 || cost[A] <= 0 {
		ev.Skipped = "no symbol but SKIP in use"
		return ev, nil
	}
	var rows []int // n·T+t of the slots holding A
	for r, k := range am {
		if k == A {
			rows = append(rows, r)
		}
	}
	if len(rows) < 8 {
		ev.Skipped = fmt.Sprintf("symbol %d in %d slots", A, len(rows))
		return ev, nil
	}

	G := make([][]float64, len(rows))
	for i, r := range rows {
		G[i] = slotGrad(r)
	}
	if splitTrace != nil {
		splitTrace("rows", rows)
		splitTrace("G", G)
	}

	// 3. The projections of the slots' gradients on their top principal
	// direction. MLP: u from a power iteration on the centred dv×dv
	// scatter, from a fixed start; sym: rows of unit length, centred, and
	// the top eigenvector by power iteration to convergence (topProjection).
	var proj, u []float64
	if cfg.Sym() {
		var share float64
		proj, share = topProjection(G)
		if proj == nil {
			ev.Skipped = "the gradients do not vary"
			return ev, nil
		}
		ev.TopShare = math.Round(1000*share) / 1000
	} else {
		mean := make([]float64, DV)
		for _, g := range G {
			for j := range DV {
				mean[j] += g[j] / float64(len(rows))
			}
		}
		C := make([]float64, DV*DV)
		total := 0.0
		for _, g := range G {
			for a := range DV {
				da := g[a] - mean[a]
				total += da * da
				for c := range DV {
					C[a*DV+c] += da * (g[c] - mean[c])
				}
			}
		}
		u = make([]float64, DV)
		for j := range u {
			u[j] = 1 / math.Sqrt(float64(DV))
		}
		lambda := 0.0
		for range 200 {
			w := make([]float64, DV)
			for a := range DV {
				for c := range DV {
					w[a] += C[a*DV+c] * u[c]
				}
			}
			nrm := 0.0
			for _, v := range w {
				nrm += v * v
			}
			nrm = math.Sqrt(nrm)
			if nrm == 0 {
				ev.Skipped = "the gradients do not vary"
				return ev, nil
			}
			for j := range u {
				u[j] = w[j] / nrm
			}
			lambda = nrm
		}
		if total > 0 {
			ev.TopShare = math.Round(1000*lambda/total) / 1000
		}
		proj = make([]float64, len(rows))
		for i, g := range G {
			for j := range DV {
				proj[i] += g[j] * u[j]
			}
		}
	}
	sorted := slices.Clone(proj)
	slices.Sort(sorted)
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}

	// 4. The two sides' mean head features and their discriminant.
	mp, mm := make([]float64, D), make([]float64, D)
	np, nm := 0, 0
	plus := make([]bool, len(rows))
	for i, r := range rows {
		plus[i] = proj[i] > med
		h := hidH[r*D : (r+1)*D]
		if plus[i] {
			np++
			for j := range D {
				mp[j] += float64(h[j])
			}
		} else {
			nm++
			for j := range D {
				mm[j] += float64(h[j])
			}
		}
	}
	if splitTrace != nil {
		splitTrace("proj", proj)
		splitTrace("median", med)
		splitTrace("plus", plus)
	}
	if np == 0 || nm == 0 {
		ev.Skipped = fmt.Sprintf("symbol %d: one side empty", A)
		return ev, nil
	}
	w := make([]float64, D)
	w2, wmid := 0.0, 0.0
	for j := range D {
		mp[j] /= float64(np)
		mm[j] /= float64(nm)
		w[j] = mp[j] - mm[j]
		w2 += w[j] * w[j]
		wmid += w[j] * (mp[j] + mm[j]) / 2
	}
	// Sides the head cannot tell apart would need a huge discriminant row.
	scale := 0.0
	for j := range D {
		scale += (mp[j]*mp[j] + mm[j]*mm[j]) / 2
	}
	if w2 < 1e-6*scale || w2 == 0 {
		ev.Skipped = fmt.Sprintf("symbol %d: the two sides' head features do not differ", A)
		return ev, nil
	}

	// 5. The new parameters and copied moments.
	ps := m.P.Export(true)
	get := func(name string) []float32 {
		for _, t := range ps {
			if t.Name == name {
				return t.Data
			}
		}
		panic("model: split: no tensor " + name)
	}
	W, bias := get("head.2.weight"), get("head.2.bias")
	moved := []string{"head.2.weight", "head.2.bias"} // tensors whose row dead becomes a copy of row A's moments
	// plusSide lists the plus side's slots (n·T+t), for the map step.
	plusSide := func() (rs []int) {
		for i, r := range rows {
			if plus[i] {
				rs = append(rs, r)
			}
		}
		return rs
	}
	if mapRoute {
		// D's head row is A's and its bias δ lower: no slot turns to D.
		// D's map is A's one step down the gradient of the plus side's
		// NLL, so that those tasks do better on D and the inductor's own
		// gradient routes them there (splitMapStep). A stays.
		copy(W[dead*D:(dead+1)*D], W[A*D:(A+1)*D])
		bias[dead] = float32(float64(bias[A]) - delta)
		plusRows := plusSide()
		splitMapStep(get("symW"), get("symB"), get("Eio"), get("P"), stH, dnH, plusRows, A, dead, N, T, K, L, V, cfg.DS, eta)
		ev.plusRows = plusRows
		moved = append(moved, "symB")
		for _, pre := range []string{"adam_m/", "adam_v/"} {
			ms := get(pre + "symW")
			LV, KLV := L*V, K*L*V
			for i := range L * cfg.DS {
				copy(ms[i*KLV+dead*LV:i*KLV+(dead+1)*LV], ms[i*KLV+A*LV:i*KLV+(A+1)*LV])
			}
		}
	} else if cfg.Sym() {
		// The discriminant in units of the spread of A's slots along it,
		// and D's bias capped so that no slot of another symbol (or SKIP)
		// turns to D; D's map starts as A's (its tasks lose nothing), and
		// from then on learns from D's tasks only.
		wn := make([]float64, D)
		wnMid := 0.0
		for j := range D {
			wn[j] = w[j] / math.Sqrt(w2)
			wnMid += wn[j] * (mp[j] + mm[j]) / 2
		}
		sp := 0.0
		if len(rows) > 1 {
			at := make([]float64, len(rows))
			mean := 0.0
			for i, r := range rows {
				h := hidH[r*D : (r+1)*D]
				for j := range D {
					at[i] += (float64(h[j]) - (mp[j]+mm[j])/2) * wn[j]
				}
				mean += at[i] / float64(len(rows))
			}
			for _, a := range at {
				sp += (a - mean) * (a - mean)
			}
			sp = math.Sqrt(sp / float64(len(rows)-1)) // unbiased, as torch's std
		}
		sp = max(sp, 1e-6)
		if splitTrace != nil {
			splitTrace("spread", sp)
		}
		for j := range D {
			W[dead*D+j] = W[A*D+j] + float32(alpha*wn[j]/sp)
		}
		bD := float64(bias[A]) - alpha*wnMid/sp
		limit, others := math.Inf(1), false
		for r, k := range am {
			if k == A {
				continue
			}
			others = true
			h := hidH[r*D : (r+1)*D]
			hw := 0.0
			for j := range D {
				hw += float64(h[j]) * float64(W[dead*D+j])
			}
			limit = min(limit, float64(lgH[r*K+k])-hw-1)
		}
		if others && bD > limit {
			bD, ev.Capped = limit, true
		}
		bias[dead] = float32(bD)
		LV, KLV := L*V, K*L*V
		sw, sb := get("symW"), get("symB")
		for i := range L * cfg.DS {
			copy(sw[i*KLV+dead*LV:i*KLV+(dead+1)*LV], sw[i*KLV+A*LV:i*KLV+(A+1)*LV])
		}
		copy(sb[dead*LV:(dead+1)*LV], sb[A*LV:(A+1)*LV])
		moved = append(moved, "symB")
		for _, pre := range []string{"adam_m/", "adam_v/"} {
			ms := get(pre + "symW")
			for i := range L * cfg.DS {
				copy(ms[i*KLV+dead*LV:i*KLV+(dead+1)*LV], ms[i*KLV+A*LV:i*KLV+(A+1)*LV])
			}
		}
		if bothRoute {
			// D's map, a copy of A's above, moved as the map route moves
			// it (its moments stay A's copies).
			plusRows := plusSide()
			splitMapStep(sw, sb, get("Eio"), get("P"), stH, dnH, plusRows, A, dead, N, T, K, L, V, cfg.DS, eta)
			ev.plusRows = plusRows
		}
	} else {
		E := get("Ev")
		ea := slices.Clone(E[A*DV : (A+1)*DV])
		en := 0.0
		for _, v := range ea {
			en += float64(v) * float64(v)
		}
		step := eta * math.Sqrt(en)
		for j := range DV {
			E[dead*DV+j] = float32(float64(ea[j]) - step*u[j])
		}
		for j := range D {
			W[dead*D+j] = W[A*D+j] + float32(alpha*w[j]/w2)
		}
		bias[dead] = bias[A] - float32(alpha*wmid/w2)
		moved = append(moved, "Ev")
	}
	for _, pre := range []string{"adam_m/", "adam_v/"} {
		for _, name := range moved {
			t := get(pre + name)
			n := len(t) / K // every tensor of moved has K rows
			copy(t[dead*n:(dead+1)*n], t[A*n:(A+1)*n])
		}
	}
	if err := m.P.Import(ps, true, "split"); err != nil {
		return nil, err
	}

	// 6. Where the slots go now.
	tp.Reset()
	tp.NoGrad = true
	lg = m.Head(tp, tp.PoolPairs(m.Encode(tp, tr.x, tr.y), cfg.Train.Pairs, true))
	b.Download(lgH, lg)
	tp.NoGrad = false
	tp.Reset()
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	for r, k := range am {
		row := lgH[r*K : (r+1)*K]
		best := 0
		for k := 1; k < K; k++ {
			if row[k] > row[best] {
				best = k
			}
		}
		if best == dead {
			if k == A {
				ev.ToD++
			} else {
				ev.OthersToD++
			}
		}
	}

	ev.Symbol, ev.New, ev.Slots = A, dead, len(rows)
	ev.Cost = math.Round(10*cost[A]) / 10
	ev.ToNew, ev.Stay = map[string]int{}, map[string]int{}
	pairs := cfg.Train.Pairs
	for i, r := range rows {
		name := tr.progs[tr.prog[(r/T)/pairs]].String()
		if plus[i] {
			ev.ToNew[name]++
		} else {
			ev.Stay[name]++
		}
	}
	return ev, nil
}

// splitMapStep sets symbol dead's map (its L·ds × L·V columns of symW
// (L·ds, K·L·V) and its row of symB (K, L·V)) to symbol A's moved one
// relative step η down the gradient of the plus side's NLL with respect to
// A's map, as recipe.py's split_symbol with --split_route map: with s the
// state embedding flatten(π·E_io + P) a slot's step read and dn its
// ∂NLL/∂n, GW = Σ outer(s, dn) and Gb = Σ dn over the plus side's slots
// (plusRows, n·T+t; st and dn per slot at ((t·N+n)·L·V)), g = [GW; Gb],
// w_A = [A's symW columns; A's symB row], and
// [D's columns; D's row] = w_A − η‖w_A‖·g/max(‖g‖, 1e-12).
// Symbol A's map is left as it is. Accumulates in float64.
func splitMapStep(symW, symB, eio, pp, stH, dnH []float32, plusRows []int, A, dead, N, T, K, L, V, DS int, eta float64) {
	LV, LD, KLV := L*V, L*DS, K*L*V
	GW := make([]float64, LD*LV)
	Gb := make([]float64, LV)
	s := make([]float64, LD)
	for _, r := range plusRows {
		o := ((r%T)*N + r/T) * LV
		pi, dn := stH[o:o+LV], dnH[o:o+LV]
		for l := range L {
			for d := range DS {
				v := float64(pp[l*DS+d])
				for u := range V {
					if p := pi[l*V+u]; p != 0 {
						v += float64(p) * float64(eio[u*DS+d])
					}
				}
				s[l*DS+d] = v
			}
		}
		for c, sc := range s {
			row := GW[c*LV : (c+1)*LV]
			for j, g := range dn {
				row[j] += sc * float64(g)
			}
		}
		for j, g := range dn {
			Gb[j] += float64(g)
		}
	}
	an, gn := 0.0, 0.0
	for c := range LD {
		for j := range LV {
			w := float64(symW[c*KLV+A*LV+j])
			an += w * w
			gn += GW[c*LV+j] * GW[c*LV+j]
		}
	}
	for j := range LV {
		w := float64(symB[A*LV+j])
		an += w * w
		gn += Gb[j] * Gb[j]
	}
	f := eta * math.Sqrt(an) / max(math.Sqrt(gn), 1e-12)
	for c := range LD {
		for j := range LV {
			symW[c*KLV+dead*LV+j] = float32(float64(symW[c*KLV+A*LV+j]) - f*GW[c*LV+j])
		}
	}
	for j := range LV {
		symB[dead*LV+j] = float32(float64(symB[A*LV+j]) - f*Gb[j])
	}
}

// symMarginals reduces exec sym's per-slot gradient with respect to the
// slot's map (in the folded state coordinates, outer(pi, dn), pi the state
// (L, V) the step read and dn the NLL's gradient with respect to its logits
// n (L, V)) to its two marginals that do not depend on the random input, as
// recipe.py's _sym_slot_grads: the value map gv[v,w] = Σ_l pi[l,v]·dn[l,w]
// (v at l → w at l) and the position map gp[l,k] = Σ_v pi[l,v]·dn[k,v] (v
// at l → v at k). Returns gv (V·V) then gp (L·L), in float64.
func symMarginals(pi, dn []float32, L, V int) []float64 {
	g := make([]float64, V*V+L*L)
	gv, gp := g[:V*V], g[V*V:]
	for l := range L {
		for v := range V {
			p := float64(pi[l*V+v])
			if p == 0 {
				continue
			}
			for w := range V {
				gv[v*V+w] += p * float64(dn[l*V+w])
			}
			for k := range L {
				gp[l*L+k] += p * float64(dn[k*V+v])
			}
		}
	}
	return g
}

// topProjection returns each row of G's projection on the top principal
// direction of the rows normalised to unit length and centred (recipe.py's
// split for exec sym: the top eigenvector of their Gram matrix), and that
// direction's share of their variance; nil if they do not vary. It takes
// the top eigenvector (topEigen) of the smaller of the n×n Gram matrix and
// the p×p scatter (the same nonzero eigenvalues; the scatter's top
// eigenvector u gives the Gram's as Gc·u up to scale), so the cost stays
// bounded for a batch's thousands of slots. The eigenvector's sign is
// arbitrary, so the projection is signed to make its largest-magnitude
// element (the first of ties) positive. (No LAPACK: gonum's would add its
// package initialisation to the browser module, 118 KB.)
func topProjection(G [][]float64) (proj []float64, share float64) {
	if len(G) == 0 {
		return nil, 0
	}
	return topProjectionBy(G, len(G) <= len(G[0]))
}

// symSlotGrad is exec sym's per-slot gradient feature for slot r = n·T+t:
// the marginals (symMarginals) of the state the step read and ∂NLL/∂n_t,
// both stored per slot at ((t·N+n)·L·V).
func symSlotGrad(stH, dnH []float32, N, T, L, V int) func(r int) []float64 {
	LV := L * V
	return func(r int) []float64 {
		o := ((r%T)*N + r/T) * LV
		return symMarginals(stH[o:o+LV], dnH[o:o+LV], L, V)
	}
}

// pickByShare is train.split_pick "share": of the symbols other than SKIP
// with a positive cost and at least 8 slots in am, the one whose slots'
// gradient features (slotGrad) have the largest top share (topProjection),
// ties to the higher cost, then the lower id; 0 (no symbol) when none
// qualifies. It returns the symbol and its share.
func pickByShare(am []int, cost []float64, K int, slotGrad func(r int) []float64) (int, float64) {
	slots := make([][]int, K)
	for r, k := range am {
		slots[k] = append(slots[k], r)
	}
	best, bestShare := 0, -1.0
	for k := range K {
		if k == Skip || cost[k] <= 0 || len(slots[k]) < 8 {
			continue
		}
		G := make([][]float64, len(slots[k]))
		for i, r := range slots[k] {
			G[i] = slotGrad(r)
		}
		_, share := topProjection(G)
		if share > bestShare || (share == bestShare && cost[k] > cost[best]) {
			best, bestShare = k, share
		}
	}
	return best, bestShare
}

// topProjectionBy is topProjection on the Gram matrix (gram) or the scatter.
func topProjectionBy(G [][]float64, gram bool) (proj []float64, share float64) {
	n, p := len(G), len(G[0])
	Gc := make([][]float64, n)
	mean := make([]float64, p)
	for i, g := range G {
		nrm := 0.0
		for _, v := range g {
			nrm += v * v
		}
		nrm = max(math.Sqrt(nrm), 1e-12) // torch's F.normalize
		Gc[i] = make([]float64, p)
		for j, v := range g {
			Gc[i][j] = v / nrm
			mean[j] += Gc[i][j] / float64(n)
		}
	}
	for _, g := range Gc {
		for j := range g {
			g[j] -= mean[j]
		}
	}
	// S: the Gram matrix (n×n) or the scatter (p×p), row-major.
	m := p
	if gram {
		m = n
	}
	S := make([]float64, m*m)
	if gram {
		for i := range n {
			for k := i; k < n; k++ {
				d := 0.0
				for j := range p {
					d += Gc[i][j] * Gc[k][j]
				}
				S[i*n+k], S[k*n+i] = d, d
			}
		}
	} else {
		for _, g := range Gc {
			for a, ga := range g {
				if ga == 0 {
					continue
				}
				row := S[a*p : (a+1)*p]
				for b := a; b < p; b++ {
					row[b] += ga * g[b]
				}
			}
		}
		for a := range p {
			for b := a + 1; b < p; b++ {
				S[b*p+a] = S[a*p+b]
			}
		}
	}
	top, vec := topEigen(S, m)
	total := 0.0 // the trace: the sum of the eigenvalues
	for i := range m {
		total += S[i*m+i]
	}
	if !(top > 1e-12) { // the rows have unit length: equal directions
		return nil, 0
	}
	proj = make([]float64, n)
	if gram {
		copy(proj, vec)
	} else {
		for i, g := range Gc {
			for j, v := range g {
				proj[i] += v * vec[j]
			}
		}
	}
	big := 0
	for i, v := range proj {
		if math.Abs(v) > math.Abs(proj[big]) {
			big = i
		}
	}
	if proj[big] < 0 {
		for i := range proj {
			proj[i] = -proj[i]
		}
	}
	return proj, top / total
}

// topEigen returns the largest eigenvalue of the symmetric positive
// semi-definite S (m×m, row-major) and its unit eigenvector, by power
// iteration from S's column of the largest diagonal element (deterministic;
// a fixed start like all ones lies in a centred Gram matrix's null space)
// until the vector moves by less than 1e-12, at most 20 000 iterations.
// Eigenvalues closer than that resolves are a tie whose direction the
// split cannot rely on either way.
func topEigen(S []float64, m int) (float64, []float64) {
	j := 0
	for i := range m {
		if S[i*m+i] > S[j*m+j] {
			j = i
		}
	}
	u, w := make([]float64, m), make([]float64, m)
	nrm := 0.0
	for i := range m {
		u[i] = S[i*m+j]
		nrm += u[i] * u[i]
	}
	if nrm == 0 {
		return 0, u
	}
	for i := range u {
		u[i] /= math.Sqrt(nrm)
	}
	lambda := 0.0
	for range 20000 {
		lambda, nrm = 0, 0 // the Rayleigh quotient u·Su, ‖Su‖²
		for i := range m {
			d := 0.0
			for k, v := range S[i*m : (i+1)*m] {
				d += v * u[k]
			}
			w[i] = d
			lambda += u[i] * d
			nrm += d * d
		}
		if nrm == 0 {
			return 0, u
		}
		nrm = math.Sqrt(nrm)
		moved := 0.0
		for i := range m {
			d := w[i] / nrm
			moved += (d - u[i]) * (d - u[i])
			u[i] = d
		}
		if moved < 1e-24 {
			break
		}
	}
	return lambda, u
}
