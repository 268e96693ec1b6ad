// Training diagnostics: what the inductor writes on one training batch,
// whether it depends on the task, and whether the hard programs run, as
// docs/experiments/recipe.py's diagnostics() computes them. They cost a
// forward pass of the head and one of the hard interpreter, so the trainer
// computes them only on the steps its caller asks for (Trainer.Diagnose).

package model

import (
	"math"
	"strconv"
	"strings"
)

// Diagnostics are the inductor diagnostics of one training batch of B
// specifications, taken from the model of that step before its update.
// Programs are compared with their SKIPs removed.
type Diagnostics struct {
	// From the argmax of the full-specification (mean-pooled) program of
	// each specification:
	SymTotal int     `json:"sym_total"` // distinct symbols anywhere, SKIP included
	Skip     float64 `json:"skip"`      // fraction of the B·T slots whose argmax is SKIP
	Ent      float64 `json:"ent"`       // mean entropy of softmax(logits) per slot, nats
	NProg    int     `json:"n_prog"`    // distinct programs in the batch
	// MI is the empirical mutual information (bits) between the task's true
	// program index and the written program; MIMax = H(true program index),
	// reached when each true program gets a program of its own.
	MI    float64 `json:"mi"`
	MIMax float64 `json:"mi_max"`
	// HardAcc is the exact-match accuracy of the hard leave-one-out program
	// (argmax symbols, argmax states) on each held-out pair of the batch.
	HardAcc float64 `json:"hard_acc"`
	// Gradient norms (before clipping) of the inductor encoder (embeddings,
	// slots, blocks, final LayerNorm), its head (head.*) and the rest (the
	// interpreter).
	GNEnc  float64 `json:"gn_enc"`
	GNHead float64 `json:"gn_head"`
	GNExe  float64 `json:"gn_exe"`
}

// AddTo puts the diagnostics into a metrics record under their JSON names.
func (d *Diagnostics) AddTo(rec map[string]any) {
	rec["sym_total"], rec["skip"], rec["ent"], rec["n_prog"] = d.SymTotal, d.Skip, d.Ent, d.NProg
	rec["mi"], rec["mi_max"], rec["hard_acc"] = d.MI, d.MIMax, d.HardAcc
	rec["gn_enc"], rec["gn_head"], rec["gn_exe"] = d.GNEnc, d.GNHead, d.GNExe
}

// InductorStats computes every field of Diagnostics that depends on the
// mean-pooled program alone: SymTotal, Skip, Ent, NProg, MI and MIMax.
// logits is (B, T, K) row-major; class[b] is specification b's true program
// index (length ≥ B). Argmax ties go to the lowest symbol, as torch's argmax.
func InductorStats(logits []float32, class []int32, B, T, K int) Diagnostics {
	if len(logits) < B*T*K || len(class) < B {
		panic("model: InductorStats: logits or class too short")
	}
	var d Diagnostics
	syms := make(map[int]bool)
	progs := make([]string, B)
	skips := 0
	ent := 0.0
	var sb strings.Builder
	for b := 0; b < B; b++ {
		sb.Reset()
		for t := 0; t < T; t++ {
			row := logits[(b*T+t)*K : (b*T+t+1)*K]
			k := argmax(row)
			syms[k] = true
			if k == Skip {
				skips++
			} else {
				if sb.Len() > 0 {
					sb.WriteByte(' ')
				}
				sb.WriteString(strconv.Itoa(k))
			}
			ent += entropy(row, float64(row[k]))
		}
		progs[b] = sb.String()
		if progs[b] == "" {
			progs[b] = "-"
		}
	}
	d.SymTotal = len(syms)
	d.Skip = float64(skips) / float64(B*T)
	d.Ent = ent / float64(B*T)
	type joint struct {
		c int32
		p string
	}
	pc, cc, jc := map[string]int{}, map[int32]int{}, map[joint]int{}
	for b, p := range progs {
		pc[p]++
		cc[class[b]]++
		jc[joint{class[b], p}]++
	}
	d.NProg = len(pc)
	hp, hc, hj := entropyBits(pc, B), entropyBits(cc, B), entropyBits(jc, B)
	d.MI, d.MIMax = min(max(hp+hc-hj, 0), hc), hc // clamped against rounding: 0 ≤ MI ≤ H(class)
	if d.MI < 1e-12 {
		d.MI = 0 // H(prog)+H(class)−H(joint) of an independent pair rounds to ±1 ulp
	}
	return d
}

// HardAccuracy is the fraction of the N rows of pi (N, L, V) whose argmax
// over V equals y (N, L) at every position.
func HardAccuracy(pi []float32, y []int32, N, L, V int) float64 {
	if len(pi) < N*L*V || len(y) < N*L {
		panic("model: HardAccuracy: pi or y too short")
	}
	if N == 0 {
		return 0
	}
	ok := 0
	for n := 0; n < N; n++ {
		right := true
		for l := 0; l < L && right; l++ {
			right = argmax(pi[(n*L+l)*V:(n*L+l+1)*V]) == int(y[n*L+l])
		}
		if right {
			ok++
		}
	}
	return float64(ok) / float64(N)
}

// entropy returns the entropy (nats) of softmax(row), with max the row's
// largest element, in float64; p log p is taken as 0 where p underflows.
func entropy(row []float32, max float64) float64 {
	z := 0.0
	for _, v := range row {
		z += math.Exp(float64(v) - max)
	}
	lz := math.Log(z)
	h := 0.0
	for _, v := range row {
		lp := float64(v) - max - lz
		if p := math.Exp(lp); p > 0 {
			h -= p * lp
		}
	}
	return h
}

// entropyBits is the entropy (bits) of the empirical distribution counts/n.
func entropyBits[K comparable](counts map[K]int, n int) float64 {
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(n)
			h -= p * math.Log2(p)
		}
	}
	return h
}

// diagState is the trainer's diagnostics workspace, made on the first
// diagnosed step: a forward-only tape, host buffers and the gradient views
// of the three parts of the parameter arena.
type diagState struct {
	tp             *Tape
	lg, pi         []float32 // (B, T, K) mean-pooled logits, (N, L, V) hard final states
	y              []int32   // (N, L) targets
	enc, head, exe *Tensor   // gradients of the encoder, the head (head.*) and the rest
	norm           *Tensor   // scratch scalar
	host1          [1]float32
}

func newDiagState(tr *Trainer) *diagState {
	m, b := tr.M, tr.M.B
	cfg := m.Cfg
	N := cfg.Train.Batch * cfg.Train.Pairs
	d := &diagState{
		tp:   NewTape(b),
		lg:   make([]float32, cfg.Train.Batch*cfg.T*cfg.K),
		pi:   make([]float32, N*cfg.L*cfg.V),
		y:    make([]int32, N*cfg.L),
		norm: NewView(b.Alloc(1), 0, 1),
	}
	d.tp.NoGrad = true
	// The head's parameters sit between the encoder's and the interpreter's
	// in the arena (ParamSpecs), so they split it in three spans.
	spans, err := m.P.LRSpans("head.", 1, 1)
	if err != nil || len(spans) != 3 {
		panic("model: diagnose: the head's parameters do not split the arena in three")
	}
	d.enc, d.head, d.exe = spans[0].g, spans[1].g, spans[2].g
	return d
}

// normOf returns the L2 norm of g.
func (d *diagState) normOf(b Backend, g *Tensor) float64 {
	b.SumSquares(d.norm, g)
	b.Download(d.host1[:], d.norm)
	return math.Sqrt(float64(d.host1[0]))
}

// diagnose computes the diagnostics of the batch whose forward and backward
// pass the training tape holds (tr.enc, tr.lg, tr.x, tr.y, tr.prog), before
// the update. It draws no random numbers and changes no parameter, so a run
// trains the same whether or not it is diagnosed.
func (tr *Trainer) diagnose() *Diagnostics {
	if tr.diag == nil {
		tr.diag = newDiagState(tr)
	}
	d, m, b := tr.diag, tr.M, tr.M.B
	cfg := m.Cfg
	B, P, N := cfg.Train.Batch, cfg.Train.Pairs, tr.x.Dim(0)
	tp := d.tp
	tp.Reset()
	lg := m.Head(tp, tp.PoolPairs(tr.enc, P, false))                // (B, T, K)
	pi := m.Execute(tp, tr.x, tp.ArgmaxOneHot(tr.lg), 1, nil, true) // (N, L, V)
	b.Download(d.lg, lg)
	b.Download(d.pi, pi)
	b.DownloadInt(d.y, tr.y)
	res := InductorStats(d.lg, tr.prog, B, cfg.T, cfg.K)
	res.HardAcc = HardAccuracy(d.pi, d.y, N, cfg.L, cfg.V)
	res.GNEnc, res.GNHead, res.GNExe = d.normOf(b, d.enc), d.normOf(b, d.head), d.normOf(b, d.exe)
	return &res
}
