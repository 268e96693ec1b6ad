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

package model

import (
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
}

// splitDue reports whether a split runs before step (0-based) of the run.
func (tr *Trainer) splitDue(step int) bool {
	c := tr.M.Cfg.Train
	if c.SplitEvery <= 0 || step < c.SplitStart || step%c.SplitEvery != 0 {
		return false
	}
	end := c.SplitEnd
	if end == 0 {
		end = 0.7
	}
	return float64(step)/float64(tr.Steps) < end
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
	eta, alpha := cfg.Train.SplitEta, cfg.Train.SplitAlpha
	if eta == 0 {
		eta = 0.1
	}
	if alpha == 0 {
		alpha = 4
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
	dead := -1
	for k := 1; k < K; k++ {
		if uses[k] == 0 {
			dead = k
			break
		}
	}
	if dead < 0 {
		ev.Skipped = "no dead symbol"
		return ev, nil
	}

	// 2. The hard programs run with their instruction embeddings as leaves:
	// per-pair NLL and its gradient with respect to each slot's instruction.
	evH := make([]float32, K*DV)
	b.Download(evH, m.ev)
	zH := make([]float32, N*T*K)
	instrH := make([]float32, T*N*DV)
	for n := range N {
		for t := range T {
			k := am[n*T+t]
			zH[(n*T+t)*K+k] = 1
			copy(instrH[(t*N+n)*DV:(t*N+n+1)*DV], evH[k*DV:(k+1)*DV])
		}
	}
	z := tp.New(false, N, T, K)
	b.Upload(z, zH)
	instr := tp.New(true, T, N, DV)
	b.Upload(instr, instrH)
	pi := m.executeInstr(tp, tr.x, z, instr, float32(tauD), nil, false, nil, 1)
	nll := tp.NLL(pi, tr.y, 1)
	tp.Backward(nll)
	gH := make([]float32, T*N*DV)
	b.Download(gH, instr.Grad)
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

	// 3. The top principal direction u of the centred gradients (power
	// iteration on their dv×dv scatter, from a fixed start).
	G := make([][]float64, len(rows))
	mean := make([]float64, DV)
	for i, r := range rows {
		n, t := r/T, r%T
		G[i] = make([]float64, DV)
		for j := range DV {
			G[i][j] = float64(gH[(t*N+n)*DV+j])
			mean[j] += G[i][j] / float64(len(rows))
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
	u := make([]float64, DV)
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
	proj := make([]float64, len(rows))
	for i, g := range G {
		for j := range DV {
			proj[i] += g[j] * u[j]
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

	// 5. The new parameters and reset moments.
	ps := m.P.Export(true)
	get := func(name string) []float32 {
		for _, t := range ps {
			if t.Name == name {
				return t.Data
			}
		}
		panic("model: split: no tensor " + name)
	}
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
	W, bias := get("head.2.weight"), get("head.2.bias")
	for j := range D {
		W[dead*D+j] = W[A*D+j] + float32(alpha*w[j]/w2)
	}
	bias[dead] = bias[A] - float32(alpha*wmid/w2)
	for _, pre := range []string{"adam_m/", "adam_v/"} {
		me, mw, mb := get(pre+"Ev"), get(pre+"head.2.weight"), get(pre+"head.2.bias")
		copy(me[dead*DV:(dead+1)*DV], me[A*DV:(A+1)*DV])
		copy(mw[dead*D:(dead+1)*D], mw[A*D:(A+1)*D])
		mb[dead] = mb[A]
	}
	if err := m.P.Import(ps, true, "split"); err != nil {
		return nil, err
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("split: %w", err)
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
