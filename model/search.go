// Test-time search (SPEC §4): the inductor alone, prior search (sampling
// programs from the inductor), and multi-start annealed gradient search over
// the pooled slot embeddings through the frozen networks, with hard-program
// selection against the specification and early exit.

package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// TaskBatch is n tasks with the same number m of specification pairs, as
// flat host arrays ready for the model.
type TaskBatch struct {
	N, M   int
	XS, YS []int32 // (n, m, L) specification pairs
	XQ     []int32 // (n, L) query inputs
	YQ     []int32 // (n, L) query answers (zeros where unknown)
	Known  []bool  // (n) whether the query answer is known
}

// NewTaskBatch flattens tasks that all have m specification pairs; the
// query is each task's first test pair.
func NewTaskBatch(tasks []Task) (*TaskBatch, error) {
	if len(tasks) == 0 {
		return nil, fmt.Errorf("search: no tasks")
	}
	m := len(tasks[0].Train)
	tb := &TaskBatch{N: len(tasks), M: m}
	for i, t := range tasks {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("task %d (%s): %w", i, t.ID, err)
		}
		if len(t.Train) != m {
			return nil, fmt.Errorf("task %d (%s): %d specification pairs, the batch has %d", i, t.ID, len(t.Train), m)
		}
		for _, p := range t.Train {
			tb.XS = appendInts(tb.XS, p.Input)
			tb.YS = appendInts(tb.YS, p.Output)
		}
		q := t.Test[0]
		tb.XQ = appendInts(tb.XQ, q.Input)
		if q.Output != nil {
			tb.YQ = appendInts(tb.YQ, q.Output)
			tb.Known = append(tb.Known, true)
		} else {
			tb.YQ = append(tb.YQ, make([]int32, len(q.Input))...)
			tb.Known = append(tb.Known, false)
		}
	}
	return tb, nil
}

// Slice returns tasks [lo, hi) of the batch (sharing the arrays).
func (tb *TaskBatch) Slice(lo, hi int) *TaskBatch {
	L, m := SeqLen, tb.M
	return &TaskBatch{N: hi - lo, M: m,
		XS: tb.XS[lo*m*L : hi*m*L], YS: tb.YS[lo*m*L : hi*m*L],
		XQ: tb.XQ[lo*L : hi*L], YQ: tb.YQ[lo*L : hi*L], Known: tb.Known[lo:hi]}
}

func appendInts(dst []int32, src []int) []int32 {
	for _, v := range src {
		dst = append(dst, int32(v))
	}
	return dst
}

// Result is the answer of one search method on one task.
type Result struct {
	Program   []int   `json:"program"`    // T symbol ids of the chosen hard program
	SpecPairs int     `json:"spec_pairs"` // specification pairs it reproduces exactly
	LogLik    float64 `json:"loglik"`     // soft log-likelihood used to break ties
	Pred      []int32 `json:"pred"`       // its output on the query input
	SolvedAt  int     `json:"solved_at"`  // first search step with every pair reproduced; −1 never
	Correct   bool    `json:"correct"`    // Pred equals the known answer
}

// StepInfo reports one gradient-search step of a single-task search (the
// fields describe task 0 of the batch).
type StepInfo struct {
	Step   int     // 1-based
	Loss   float64 // summed NLL over starts and pairs, per start and pair
	TauE   float64
	TauD   float64
	Best   Result // best hard program so far (valid after the first check)
	Solved int    // tasks solved so far
}

// Searcher runs the search methods for one model. It keeps its buffers
// between calls and is not safe for concurrent use.
type Searcher struct {
	M  *Model
	tp *Tape
	// MaxSeqs caps n·S·m sequences per interpreter batch; callers split
	// task batches above it (see Chunk).
	MaxSeqs int
	// Plain makes gradient search run the interpreter in its training form
	// instead of the folded search form (see Model.execute); the two agree
	// up to float rounding. For comparisons and tests.
	Plain bool
}

// NewSearcher returns a searcher for m.
func NewSearcher(m *Model) *Searcher {
	return &Searcher{M: m, tp: NewTape(m.B), MaxSeqs: 8192}
}

// Chunk returns how many tasks of m pairs fit in one batch with S starts.
func (s *Searcher) Chunk(S, m int) int { return max(1, s.MaxSeqs/(S*m)) }

// freeze detaches parameter gradients so searches backpropagate only to
// the searched embeddings; it returns the function that restores them.
func (m *Model) freeze() func() {
	saved := make([]*Tensor, len(m.P.List))
	for i, p := range m.P.List {
		saved[i], p.T.Grad = p.T.Grad, nil
	}
	return func() {
		for i, p := range m.P.List {
			p.T.Grad = saved[i]
		}
	}
}

// upInt uploads host ints into a fresh int tensor of the tape.
func (s *Searcher) upInt(v []int32, shape ...int) *Tensor {
	t := s.tp.NewInt(shape...)
	s.M.B.UploadInt(t, v)
	return t
}

// pooled runs the inductor on the specification and returns ē (n,T,d).
func (s *Searcher) pooled(tb *TaskBatch) *Tensor {
	L := s.M.Cfg.L
	x := s.upInt(tb.XS, tb.N*tb.M, L)
	y := s.upInt(tb.YS, tb.N*tb.M, L)
	e := s.M.Encode(s.tp, x, y)
	return s.tp.PoolPairs(e, tb.M, false)
}

// repeatInts lays out src (n, m, L) as (n, S, m, L).
func repeatInts(src []int32, n, S, per int) []int32 {
	out := make([]int32, 0, n*S*per)
	for i := 0; i < n; i++ {
		for j := 0; j < S; j++ {
			out = append(out, src[i*per:(i+1)*per]...)
		}
	}
	return out
}

// scratch holds host buffers reused between hard checks, so that a search
// step with a check allocates nothing once the buffers have grown.
type scratch struct {
	lh, eh, logits []float32 // logits: the symbol ids as floats (symbols)
	iota           []float32
	counts         []int
	ll             []float64
	ids            []int
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// scoreHard executes hard programs z (n·S, T, K) on the specification
// (repeated per start) and returns per-start exact-pair counts and hard
// log-likelihoods, in buffers owned by sc. A non-nil f selects the
// interpreter's search form (see Model.execute).
func (s *Searcher) scoreHard(sc *scratch, tb *TaskBatch, S int, z *Tensor, xr, yr *Tensor, f *firstLayer) (counts []int, ll []float64) {
	tp, cfg := s.tp, s.M.Cfg
	R := tb.N * S * tb.M
	pi := s.M.execute(tp, xr, z, 1, nil, true, f, tb.M)
	lt, et := tp.New(false, R), tp.New(false, R)
	s.M.B.SeqScore(lt, et, pi, yr, R, cfg.L, cfg.V)
	sc.lh, sc.eh = growF32(sc.lh, R), growF32(sc.eh, R)
	s.M.B.Download(sc.lh, lt)
	s.M.B.Download(sc.eh, et)
	if cap(sc.counts) < tb.N*S {
		sc.counts, sc.ll = make([]int, tb.N*S), make([]float64, tb.N*S)
	}
	counts, ll = sc.counts[:tb.N*S], sc.ll[:tb.N*S]
	for i := range counts {
		counts[i], ll[i] = 0, 0
	}
	for r := 0; r < R; r++ {
		counts[r/tb.M] += int(sc.eh[r])
		ll[r/tb.M] += float64(sc.lh[r])
	}
	return counts, ll
}

// symbols returns the symbol ids (rows, T) of one-hot programs z (rows, T,
// K), from ArgmaxOneHot, in sc's buffer (callers copy what they keep). The
// ids are computed on the backend as z·(0, 1, …, K−1) — one nonzero term per
// row, an exact small integer even in TF32 — so that a hard check downloads
// rows·T floats instead of the rows·T·K logits (39 MB per check at 200 tasks
// × 64 starts: a GPU search spent ~6% of its time on that download).
func (s *Searcher) symbols(sc *scratch, z *Tensor) []int {
	K, tp := s.M.Cfg.K, s.tp
	n := z.Len() / K
	if cap(sc.iota) < K {
		sc.iota = make([]float32, K)
	}
	sc.iota = sc.iota[:K]
	for k := range sc.iota {
		sc.iota[k] = float32(k)
	}
	iota, ids := tp.New(false, K), tp.New(false, n)
	s.M.B.Upload(iota, sc.iota)
	s.M.B.Gemm(ids, z, iota, false, false, n, 1, K, 1, 0)
	sc.logits = growF32(sc.logits, n)
	s.M.B.Download(sc.logits, ids)
	if cap(sc.ids) < n {
		sc.ids = make([]int, n)
	}
	out := sc.ids[:n]
	for r, v := range sc.logits {
		out[r] = int(v)
	}
	return out
}

// Run executes hard programs (n, T symbol ids) on inputs x (n, L) and
// returns the outputs (n, L).
func (s *Searcher) Run(progs [][]int, x []int32) []int32 {
	cfg := s.M.Cfg
	n := len(progs)
	tp := s.tp
	tp.NoGrad = true
	tp.Reset()
	defer s.M.freeze()()
	ids := make([]int32, 0, n*cfg.T)
	for _, p := range progs {
		for _, v := range p {
			ids = append(ids, int32(v))
		}
	}
	z := tp.OneHot(s.upInt(ids, n, cfg.T), cfg.K)
	pi := s.M.Execute(tp, s.upInt(x, n, cfg.L), z, 1, nil, true)
	h := make([]float32, pi.Len())
	s.M.B.Download(h, pi)
	out := make([]int32, n*cfg.L)
	for r := range out {
		best := 0
		for v := 1; v < cfg.V; v++ {
			if h[r*cfg.V+v] > h[r*cfg.V+best] {
				best = v
			}
		}
		out[r] = int32(best)
	}
	return out
}

// finish fills predictions and correctness for chosen programs.
func (s *Searcher) finish(tb *TaskBatch, res []Result) []Result {
	progs := make([][]int, len(res))
	for i := range res {
		progs[i] = res[i].Program
	}
	pred := s.Run(progs, tb.XQ)
	L := s.M.Cfg.L
	for i := range res {
		res[i].Pred = pred[i*L : (i+1)*L]
		res[i].Correct = tb.Known[i] && slices.Equal(res[i].Pred, tb.YQ[i*L:(i+1)*L])
	}
	return res
}

// Induce answers each task with the inductor's own program: the argmax
// symbols of the head applied to the mean-pooled encodings.
func (s *Searcher) Induce(tb *TaskBatch) []Result {
	defer s.M.freeze()()
	tp, cfg := s.tp, s.M.Cfg
	tp.NoGrad = true
	tp.Reset()
	logits := s.M.Head(tp, s.pooled(tb)) // (n, T, K)
	var sc scratch
	z := tp.ArgmaxOneHot(logits)
	ids := s.symbols(&sc, z)
	xr := s.upInt(tb.XS, tb.N*tb.M, cfg.L)
	yr := s.upInt(tb.YS, tb.N*tb.M, cfg.L)
	counts, ll := s.scoreHard(&sc, tb, 1, z, xr, yr, nil)
	res := make([]Result, tb.N)
	for i := range res {
		res[i] = Result{Program: ids[i*cfg.T : (i+1)*cfg.T], SpecPairs: counts[i], LogLik: ll[i], SolvedAt: -1}
		if counts[i] == tb.M {
			res[i].SolvedAt = 0
		}
	}
	return s.finish(tb, res)
}

// Prior samples S programs per task from the inductor's distribution
// (Gumbel-max on its logits) and keeps the one that reproduces the most
// specification pairs (ties: higher hard log-likelihood, then lower index).
func (s *Searcher) Prior(tb *TaskBatch, S int, seed uint64) []Result {
	defer s.M.freeze()()
	tp, cfg := s.tp, s.M.Cfg
	tp.NoGrad = true
	tp.Reset()
	logits := tp.RepeatRows(s.M.Head(tp, s.pooled(tb)), S) // (n·S, T, K)
	g := tp.New(false, logits.Shape()...)
	s.M.B.Gumbel(g, seed)
	noisy := tp.Add(logits, g)
	var sc scratch
	z := tp.ArgmaxOneHot(noisy)
	ids := s.symbols(&sc, z)
	xr := s.upInt(repeatInts(tb.XS, tb.N, S, tb.M*cfg.L), tb.N*S*tb.M, cfg.L)
	yr := s.upInt(repeatInts(tb.YS, tb.N, S, tb.M*cfg.L), tb.N*S*tb.M, cfg.L)
	counts, ll := s.scoreHard(&sc, tb, S, z, xr, yr, nil)
	res := make([]Result, tb.N)
	for i := range res {
		best := i * S
		for j := i*S + 1; j < (i+1)*S; j++ {
			if counts[j] > counts[best] || counts[j] == counts[best] && ll[j] > ll[best] {
				best = j
			}
		}
		res[i] = Result{Program: ids[best*cfg.T : (best+1)*cfg.T], SpecPairs: counts[best], LogLik: ll[best], SolvedAt: -1}
		if counts[best] == tb.M {
			res[i].SolvedAt = 0
		}
	}
	return s.finish(tb, res)
}

// Gradient runs multi-start annealed gradient search (SPEC §4) with the
// settings sc: S starts around the pooled embedding, Adam on the starts'
// embeddings, a hard check every sc.CheckEvery steps and at the end that
// keeps each task's best program along the trajectory, and early exit once
// every task has a program that reproduces all its pairs. onStep, when not
// nil, is called after every step; returning false aborts the search (the
// best programs so far are still answered).
func (s *Searcher) Gradient(tb *TaskBatch, sc SearchConfig, seed uint64, onStep func(StepInfo) bool) []Result {
	run := s.StartGradient(tb, sc, seed)
	defer run.Close()
	for {
		info, more := run.Step()
		if onStep != nil && !onStep(info) {
			break
		}
		if !more {
			break
		}
	}
	return run.Results()
}

// GradientRun is one gradient search in progress, advanced one step at a
// time by Step (so hosts such as the browser can report and abort between
// steps). Close releases its memory.
type GradientRun struct {
	s        *Searcher
	tb       *TaskBatch
	sc       SearchConfig
	seed     uint64
	it       int
	E        *Tensor      // (n·S, T, d) searched embeddings, with gradient
	em, ev   *Tensor      // Adam moments
	xr, yr   *Tensor      // (n·S·m, L) specification pairs per start
	nz, ns   *Tensor      // noise buffers
	nsSrc    *GumbelNoise // ns's fused noise (FusedGumbeler), else nil
	mems     []*Memory
	best     []Result
	solved   int
	softLL   []float64
	llH      []float32
	restore  func()
	finished bool
	buf      scratch
	fl       *firstLayer         // the folded first layer; nil with Searcher.Plain
	wt       map[*Tensor]*Tensor // transposes of the frozen interpreter weights (Tape.Transposed); nil with Plain
}

// StartGradient prepares a gradient search; see Gradient.
func (s *Searcher) StartGradient(tb *TaskBatch, sc SearchConfig, seed uint64) *GradientRun {
	m, tp, cfg, b := s.M, s.tp, s.M.Cfg, s.M.B
	S, n, pairs := sc.Starts, tb.N, tb.M
	T, D := cfg.T, cfg.D
	r := &GradientRun{s: s, tb: tb, sc: sc, seed: seed, restore: m.freeze()}

	// Starting points: ē + σ·N(0, I) per start.
	tp.NoGrad = true
	tp.Reset()
	eb := s.pooled(tb)
	host := make([]float32, eb.Len())
	b.Download(host, eb)
	rng := rand.New(rand.NewPCG(seed, 0x73656172))
	start := make([]float32, n*S*T*D)
	for i := 0; i < n; i++ {
		for j := 0; j < S; j++ {
			dst := start[(i*S+j)*T*D : (i*S+j+1)*T*D]
			for k := range dst {
				dst[k] = host[i*T*D+k] + float32(sc.Sigma*rng.NormFloat64())
			}
		}
	}
	alloc := func(n int) *Memory { mm := b.Alloc(n); r.mems = append(r.mems, mm); return mm }
	r.E = NewView(alloc(len(start)), 0, n*S, T, D)
	r.E.Grad = NewView(alloc(len(start)), 0, n*S, T, D)
	r.em, r.ev = NewView(alloc(len(start)), 0, len(start)), NewView(alloc(len(start)), 0, len(start))
	b.Upload(r.E, start)

	R := n * S * pairs
	ints := b.AllocInt(2 * R * cfg.L)
	r.mems = append(r.mems, ints)
	r.xr, r.yr = NewView(ints, 0, R, cfg.L), NewView(ints, R*cfg.L, R, cfg.L)
	b.UploadInt(r.xr, repeatInts(tb.XS, n, S, pairs*cfg.L))
	b.UploadInt(r.yr, repeatInts(tb.YS, n, S, pairs*cfg.L))
	if !s.Plain {
		r.fl = m.foldFirstLayer(alloc(m.foldLen()))
		// Transposed copies of the interpreter's frozen weights
		// (Tape.Transposed). Exec sym has none: its products are MatMuls,
		// whose input gradient already multiplies by the transpose.
		if !cfg.Sym() {
			r.wt = map[*Tensor]*Tensor{}
			for _, w := range []*Tensor{r.fl.w, m.w1v, m.w2, m.w3} {
				OC, C := w.Dim(0), w.Dim(1)
				t := NewView(alloc(OC*C), 0, C, OC)
				b.Transpose01(t, w, OC, C, 1, false)
				r.wt[w] = t
			}
		}
	}
	r.nz = NewView(alloc(n*S*T*cfg.K), 0, n*S, T, cfg.K)
	if fusedGumbel(b) { // drawn inside SoftmaxMix: no buffer, no Gumbel pass
		r.nsSrc = &GumbelNoise{}
		r.ns = NewGumbelNoise(r.nsSrc, T, R, cfg.L, cfg.V)
	} else {
		r.ns = NewView(alloc(T*R*cfg.L*cfg.V), 0, T, R, cfg.L, cfg.V)
	}
	r.llH = make([]float32, R)
	r.softLL = make([]float64, n*S)
	r.best = make([]Result, n)
	for i := range r.best {
		r.best[i] = Result{SpecPairs: -1, LogLik: math.Inf(-1), SolvedAt: -1}
	}
	return r
}

// Step runs one search step and reports it; more is false once the search
// has run all its steps or every task is solved.
func (r *GradientRun) Step() (info StepInfo, more bool) {
	if r.finished {
		return StepInfo{Step: r.it, Best: r.best[0], Solved: r.solved}, false
	}
	s, sc, tb := r.s, r.sc, r.tb
	m, tp, cfg, b := s.M, s.tp, s.M.Cfg, s.M.B
	S, n, pairs, T := sc.Starts, tb.N, tb.M, cfg.T
	R := n * S * pairs
	it := r.it
	f := float64(it) / float64(max(1, sc.Steps-1))
	tauE, tauD := Anneal(sc.TauE0, sc.TauE1, f), Anneal(sc.TauD0, sc.TauD1, f)
	tp.NoGrad = false
	tp.Reset()
	b.Zero(r.E.Grad)
	b.Gumbel(r.nz, noiseSeed(r.seed, it, 2))
	if r.nsSrc != nil {
		r.nsSrc.Seed = noiseSeed(r.seed, it, 3)
	} else {
		b.Gumbel(r.ns, noiseSeed(r.seed, it, 3))
	}
	logits := m.Head(tp, r.E)
	z := tp.Softmax(logits, r.nz, float32(tauE))
	pi := m.execute(tp, r.xr, z, float32(tauD), r.ns, false, r.fl, pairs)
	loss := tp.NLL(pi, r.yr, 1)
	tp.Transposed = r.wt
	tp.Backward(loss)
	tp.Transposed = nil
	lossV := tp.Scalar(loss)

	check := (it+1)%sc.CheckEvery == 0 || it == sc.Steps-1
	if check {
		// Soft log-likelihood per start (for ties) from this step's pass.
		tp.NoGrad = true
		lt, et := tp.New(false, R), tp.New(false, R)
		b.SeqScore(lt, et, pi, r.yr, R, cfg.L, cfg.V)
		b.Download(r.llH, lt)
		for k := range r.softLL {
			r.softLL[k] = 0
		}
		for k := 0; k < R; k++ {
			r.softLL[k/pairs] += float64(r.llH[k])
		}
		hard := tp.ArgmaxOneHot(logits)
		ids := s.symbols(&r.buf, hard)
		counts, _ := s.scoreHard(&r.buf, tb, S, hard, r.xr, r.yr, r.fl)
		for i := 0; i < n; i++ {
			bi := &r.best[i]
			for j := i * S; j < (i+1)*S; j++ {
				if counts[j] > bi.SpecPairs || counts[j] == bi.SpecPairs && r.softLL[j] > bi.LogLik {
					if counts[j] == pairs && bi.SolvedAt < 0 {
						bi.SolvedAt = it + 1
						r.solved++
					}
					bi.SpecPairs, bi.LogLik = counts[j], r.softLL[j]
					bi.Program = append(bi.Program[:0], ids[j*T:(j+1)*T]...)
				}
			}
		}
	}
	b.AdamW(r.E, r.E.Grad, r.em, r.ev, float32(sc.LR), 0.9, 0.999, 1e-8, 0, 1, it+1)
	r.it++
	r.finished = r.it >= sc.Steps || check && r.solved == n
	return StepInfo{Step: r.it, Loss: lossV / float64(R), TauE: tauE, TauD: tauD, Best: r.best[0], Solved: r.solved}, !r.finished
}

// Results answers every task with its best program so far.
func (r *GradientRun) Results() []Result {
	best := make([]Result, len(r.best))
	copy(best, r.best)
	for i := range best {
		if best[i].Program == nil { // stopped before the first check
			best[i].Program = make([]int, r.s.M.Cfg.T)
			best[i].SpecPairs = 0
		}
	}
	return r.s.finish(r.tb, best)
}

// Close releases the run's memory and restores the model's gradients.
func (r *GradientRun) Close() {
	for _, mm := range r.mems {
		r.s.M.B.Free(mm)
	}
	r.mems = nil
	if r.restore != nil {
		r.restore()
		r.restore = nil
	}
}
