// Tests of test-time search: every method's answer is consistent with
// re-executing its program; abort and early exit; zero allocations per
// search step; and benchmarks of one search step.

package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomModel is a freshly initialised model of cfg; with Exec "sym" its
// symB (zero at Init) is drawn N(0, 0.5²) too, so that tests see the bias.
func randomModel(t testing.TB, b Backend, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := NewModel(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(seed)
	if cfg.Sym() {
		rng := rand.New(rand.NewPCG(seed, 0x73796d))
		h := make([]float32, m.symB.Len())
		for i := range h {
			h[i] = float32(0.5 * rng.NormFloat64())
		}
		b.Upload(m.symB, h)
	}
	return m
}

// checkResults re-executes each result's program on the specification and
// the query and checks the reported counts, predictions and correctness.
func checkResults(t *testing.T, s *Searcher, tasks []Task, res []Result) {
	t.Helper()
	T := s.M.Cfg.T
	for i, r := range res {
		if len(r.Program) != T {
			t.Fatalf("task %d: program of %d symbols, want %d", i, len(r.Program), T)
		}
		for _, v := range r.Program {
			if v < 0 || v >= s.M.Cfg.K {
				t.Fatalf("task %d: symbol %d out of range", i, v)
			}
		}
		x, y := tasks[i].SpecArrays()
		progs := make([][]int, len(tasks[i].Train))
		for j := range progs {
			progs[j] = r.Program
		}
		out := s.Run(progs, x)
		exact := 0
		for j := range progs {
			if slices.Equal(out[j*SeqLen:(j+1)*SeqLen], y[j*SeqLen:(j+1)*SeqLen]) {
				exact++
			}
		}
		if exact != r.SpecPairs {
			t.Errorf("task %d: reported %d spec pairs reproduced, re-execution gives %d", i, r.SpecPairs, exact)
		}
		q := appendInts(nil, tasks[i].Test[0].Input)
		pred := s.Run([][]int{r.Program}, q)
		if !slices.Equal(pred, r.Pred) {
			t.Errorf("task %d: prediction %v, re-execution %v", i, r.Pred, pred)
		}
		want := appendInts(nil, tasks[i].Test[0].Output)
		if r.Correct != slices.Equal(pred, want) {
			t.Errorf("task %d: Correct = %v, but prediction %v vs answer %v", i, r.Correct, pred, want)
		}
	}
}

func TestSearchMethodsConsistent(t *testing.T) {
	cfg := Tiny()
	m := randomModel(t, NewCPU(2), cfg, 5)
	s := NewSearcher(m)
	tasks := GenTasks(SplitShiftL, PartOOD, 3, 4, 9)
	tb, err := NewTaskBatch(tasks)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, s, tasks, s.Induce(tb))
	checkResults(t, s, tasks, s.Prior(tb, 8, 1))
	sc := cfg.Search
	sc.Starts, sc.Steps, sc.CheckEvery = 4, 6, 3
	steps := 0
	res := s.Gradient(tb, sc, 2, func(info StepInfo) bool {
		steps++
		if info.Step != steps {
			t.Errorf("step %d reported as %d", steps, info.Step)
		}
		return true
	})
	if steps != 6 && res[0].SolvedAt < 0 {
		t.Errorf("ran %d steps without solving, want 6", steps)
	}
	checkResults(t, s, tasks, res)
	// Gradients of the model are restored after a search.
	for _, p := range m.P.List {
		if p.T.Grad == nil {
			t.Fatalf("%s lost its gradient after search", p.Name)
		}
	}
}

func TestSearchAbort(t *testing.T) {
	cfg := Tiny()
	s := NewSearcher(randomModel(t, NewCPU(1), cfg, 5))
	tasks := GenTasks(SplitCompI, PartOOD, 1, 4, 3)
	tb, _ := NewTaskBatch(tasks)
	sc := cfg.Search
	sc.Starts, sc.Steps, sc.CheckEvery = 4, 50, 1
	n := 0
	res := s.Gradient(tb, sc, 1, func(StepInfo) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("abort after 3 callbacks ran %d steps", n)
	}
	checkResults(t, s, tasks, res)
}

// TestSearchCheckEvery: with a hard check every k steps, the best program
// (and solved count) change only at multiples of k and at the last step,
// and a task's SolvedAt is such a step.
func TestSearchCheckEvery(t *testing.T) {
	cfg := Tiny()
	s := NewSearcher(randomModel(t, NewCPU(1), cfg, 5))
	tasks := GenTasks(SplitShiftL, PartOOD, 2, 4, 3)
	tb, _ := NewTaskBatch(tasks)
	sc := cfg.Search
	sc.Starts, sc.Steps, sc.CheckEvery = 4, 10, 4
	checked := func(step int) bool { return step%sc.CheckEvery == 0 || step == sc.Steps }
	var prev StepInfo
	res := s.Gradient(tb, sc, 1, func(info StepInfo) bool {
		if !checked(info.Step) {
			if !slices.Equal(info.Best.Program, prev.Best.Program) || info.Solved != prev.Solved {
				t.Errorf("step %d (no check): best or solved count changed", info.Step)
			}
		} else if info.Best.Program == nil {
			t.Errorf("step %d (check): no best program", info.Step)
		}
		prev = info
		prev.Best.Program = slices.Clone(info.Best.Program)
		return true
	})
	for i, r := range res {
		if r.SolvedAt >= 0 && !checked(r.SolvedAt) {
			t.Errorf("task %d: solved at step %d, not a check step", i, r.SolvedAt)
		}
	}
	checkResults(t, s, tasks, res)
}

// executeForm runs the interpreter in the given form on n random sequences
// with the relaxed program softmax(Head(E)) and returns the final state pi
// and d(NLL)/dE, as search computes them (model frozen). E holds n/rep
// programs, each shared by rep consecutive sequences: passed to execute with
// rep, or (repeatFirst) repeated to n rows first and passed with rep 1.
func executeForm(t *testing.T, m *Model, fold, hard bool, rep int, repeatFirst bool) (pi, dE []float32) {
	t.Helper()
	cfg, b := m.Cfg, m.B
	defer m.freeze()()
	const n = 6
	P := n / rep
	rng := rand.New(rand.NewPCG(11, 12))
	tp := NewTape(b)
	defer tp.Free()
	e := make([]float32, P*cfg.T*cfg.D)
	for i := range e {
		e[i] = float32(rng.NormFloat64())
	}
	xs, ys := make([]int32, n*cfg.L), make([]int32, n*cfg.L)
	for i := range xs {
		xs[i], ys[i] = int32(rng.IntN(cfg.V)), int32(rng.IntN(cfg.V))
	}
	E := NewView(b.Alloc(len(e)), 0, P, cfg.T, cfg.D)
	E.Grad = NewView(b.Alloc(len(e)), 0, P, cfg.T, cfg.D)
	b.Upload(E, e)
	x, y := tp.NewInt(n, cfg.L), tp.NewInt(n, cfg.L)
	b.UploadInt(x, xs)
	b.UploadInt(y, ys)
	noise := tp.New(false, cfg.T, n, cfg.L, cfg.V)
	b.Gumbel(noise, 5)
	logits := m.Head(tp, E)
	var z *Tensor
	if hard {
		tp.NoGrad = true
		z = tp.ArgmaxOneHot(logits)
	} else {
		z = tp.Softmax(logits, nil, 0.7)
	}
	var f *firstLayer
	if fold {
		mem := b.Alloc(m.foldLen())
		defer b.Free(mem)
		f = m.foldFirstLayer(mem)
	}
	if repeatFirst {
		z, rep = tp.RepeatRows(z, rep), 1
	}
	p := m.execute(tp, x, z, 0.8, noise, hard, f, rep)
	pi = make([]float32, p.Len())
	b.Download(pi, p)
	if !hard {
		tp.Backward(tp.NLL(p, y, 1))
		dE = make([]float32, len(e))
		b.Download(dE, E.Grad)
	}
	return pi, dE
}

// TestExecuteSearchForm: the interpreter's search form (Model.execute with
// the folded first layer) gives the plain form's states and gradients up to float
// rounding: forward within 1e-5 + 1e-4·|ref|, gradients within
// 1e-4·max|ref| + 1e-3·|ref| (the package's forward and gradient
// tolerances); hard states exactly.
func TestExecuteSearchForm(t *testing.T) {
	for _, cfg := range []Config{Tiny(), Default(), withFiLM(Tiny()), withSym(Tiny()), withSym(Default())} {
		m := randomModel(t, NewCPU(2), cfg, 3)
		for _, hard := range []bool{false, true} {
			name := fmt.Sprintf("%s hard=%v", cfg.Name, hard)
			piRef, dRef := executeForm(t, m, false, hard, 1, false)
			pi, d := executeForm(t, m, true, hard, 1, false)
			for i := range piRef {
				if hard && pi[i] != piRef[i] || !closeTo(float64(pi[i]), float64(piRef[i]), 1e-5, 1e-4) {
					t.Fatalf("%s: pi[%d] = %g, plain form %g", name, i, pi[i], piRef[i])
				}
			}
			var scale float64
			for _, v := range dRef {
				scale = max(scale, math.Abs(float64(v)))
			}
			for i := range dRef {
				if !closeTo(float64(d[i]), float64(dRef[i]), 1e-4*scale, 1e-3) {
					t.Fatalf("%s: dE[%d] = %g, plain form %g (max |dE| %g)", name, i, d[i], dRef[i], scale)
				}
			}
		}
	}
}

// TestExecuteRep: execute with one program per rep rows (the search's
// instruction terms computed once per start) gives the states of repeating
// the programs first, and their gradients up to the order of summation over
// the pairs; in both interpreter forms, relaxed and hard.
func TestExecuteRep(t *testing.T) {
	for _, cfg := range []Config{Tiny(), withFiLM(Tiny()), withSym(Tiny())} {
		m := randomModel(t, NewCPU(2), cfg, 3)
		for _, fold := range []bool{false, true} {
			for _, hard := range []bool{false, true} {
				for _, rep := range []int{2, 3} {
					name := fmt.Sprintf("%s fold=%v hard=%v rep=%d", cfg.Name, fold, hard, rep)
					piRef, dRef := executeForm(t, m, fold, hard, rep, true)
					pi, d := executeForm(t, m, fold, hard, rep, false)
					for i := range piRef {
						if pi[i] != piRef[i] {
							t.Fatalf("%s: pi[%d] = %g, repeated first %g", name, i, pi[i], piRef[i])
						}
					}
					var scale float64
					for _, v := range dRef {
						scale = max(scale, math.Abs(float64(v)))
					}
					if !hard && scale == 0 {
						t.Fatalf("%s: zero gradient", name)
					}
					for i := range dRef {
						if !closeTo(float64(d[i]), float64(dRef[i]), 1e-5*scale, 1e-4) {
							t.Fatalf("%s: dE[%d] = %g, repeated first %g (max |dE| %g)", name, i, d[i], dRef[i], scale)
						}
					}
				}
			}
		}
	}
}

// TestSearchFoldMatchesPlain runs the same gradient search with the folded
// and the plain interpreter: the per-step losses agree within 1e-5 relative
// (float rounding only; Adam's updates carry it along the trajectory).
// TestExecuteSearchForm is the precise check; this one covers the run.
func TestSearchFoldMatchesPlain(t *testing.T) {
	for _, cfg := range []Config{Tiny(), withSym(Tiny())} {
		t.Run(cfg.Name, func(t *testing.T) { testSearchFoldMatchesPlain(t, cfg) })
	}
}

func testSearchFoldMatchesPlain(t *testing.T, cfg Config) {
	m := randomModel(t, NewCPU(2), cfg, 5)
	tb, _ := NewTaskBatch(GenTasks(SplitShiftL, PartOOD, 2, 4, 3))
	sc := cfg.Search
	sc.Starts, sc.Steps, sc.CheckEvery = 4, 12, 4
	losses := func(plain bool) []float64 {
		s := NewSearcher(m)
		s.Plain = plain
		var l []float64
		s.Gradient(tb, sc, 1, func(info StepInfo) bool { l = append(l, info.Loss); return true })
		return l
	}
	plain, fold := losses(true), losses(false)
	if len(plain) != len(fold) {
		t.Fatalf("plain ran %d steps, folded %d", len(plain), len(fold))
	}
	for i := range plain {
		if !closeTo(fold[i], plain[i], 0, 1e-5) {
			t.Errorf("step %d: loss %.8g folded, %.8g plain", i+1, fold[i], plain[i])
		}
	}
}

func benchSearchStep(b *testing.B, workers int) {
	cfg := Default()
	s := NewSearcher(randomModel(b, NewCPU(workers), cfg, 1))
	tb, _ := NewTaskBatch(GenTasks(SplitShiftL, PartOOD, 1, 4, 3))
	sc := cfg.Search
	sc.Steps, sc.CheckEvery = 1<<30, 1<<30
	run := s.StartGradient(tb, sc, 1)
	defer run.Close()
	run.Step()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run.Step()
	}
	b.ReportMetric(float64(b.N*sc.Starts)/b.Elapsed().Seconds(), "start-steps/s")
}

// BenchmarkSearchStepDefault times one gradient-search step of the default
// config on one task with 64 starts × 4 pairs (the browser's unit of work).
func BenchmarkSearchStepDefault(b *testing.B) {
	b.Run("workers=all", func(b *testing.B) { benchSearchStep(b, 0) })
	b.Run("workers=1", func(b *testing.B) { benchSearchStep(b, 1) })
}

// TestSearchStepAllocs checks that a search step allocates nothing after
// warm-up, both a plain step and one with a hard check.
func TestSearchStepAllocs(t *testing.T) {
	for _, c := range []struct {
		name       string
		workers    int
		checkEvery int
		exec       string
	}{{"plain", 2, 1000, ""}, {"check", 1, 1, ""}, {"film check", 1, 1, ExecFiLM}, {"sym check", 1, 1, ExecSym}} {
		cfg := Tiny()
		cfg.Exec = c.exec
		s := NewSearcher(randomModel(t, NewCPU(c.workers), cfg, 5))
		tb, _ := NewTaskBatch(GenTasks(SplitShiftL, PartOOD, 2, 4, 3))
		sc := cfg.Search
		sc.Starts, sc.Steps, sc.CheckEvery = 8, 1000, c.checkEvery
		run := s.StartGradient(tb, sc, 1)
		run.Step()
		run.Step()
		if n := testing.AllocsPerRun(3, func() { run.Step() }); n != 0 {
			t.Errorf("%s: a search step allocates %v times after warm-up", c.name, n)
		}
		run.Close()
	}
}

// The transposed frozen weights (Tape.Transposed) change how the input
// gradients are multiplied, not their values: on the CPU the search runs bit
// for bit as without them.
func TestSearchTransposedWeights(t *testing.T) {
	cfg := Tiny()
	m := randomModel(t, NewCPU(2), cfg, 5)
	tb, err := NewTaskBatch(GenTasks(SplitShiftL, PartOOD, 3, 4, 9))
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.Search
	sc.Starts, sc.Steps, sc.CheckEvery = 4, 5, 5
	run := func(transposed bool) ([]float64, []float32) {
		r := NewSearcher(m).StartGradient(tb, sc, 2)
		defer r.Close()
		if len(r.wt) != 4 {
			t.Fatalf("%d transposed weights, want 4 (folded layer, w1v, w2, w3)", len(r.wt))
		}
		if !transposed {
			r.wt = nil
		}
		var losses []float64
		for more := true; more; {
			var info StepInfo
			info, more = r.Step()
			losses = append(losses, info.Loss)
		}
		e := make([]float32, r.E.Len())
		m.B.Download(e, r.E)
		return losses, e
	}
	l1, e1 := run(true)
	l0, e0 := run(false)
	if !slices.Equal(l1, l0) || !slices.Equal(e1, e0) {
		t.Errorf("with transposed weights: losses %v, without %v (embeddings equal: %v)", l1, l0, slices.Equal(e1, e0))
	}
}

// symbols reads the ids of one-hot programs on the backend: they are the
// logits' first maxima, as a host argmax finds them (ties included).
func TestSymbolsArgmax(t *testing.T) {
	cfg := Tiny()
	m := randomModel(t, NewCPU(1), cfg, 5)
	s := NewSearcher(m)
	rows, K := 37, cfg.K
	h := make([]float32, rows*K)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range h {
		h[i] = float32(rng.IntN(5)) // many ties
	}
	s.tp.NoGrad = true
	s.tp.Reset()
	lg := s.tp.New(false, rows, K)
	m.B.Upload(lg, h)
	var sc scratch
	ids := s.symbols(&sc, s.tp.ArgmaxOneHot(lg))
	for r := range rows {
		want := 0
		for k := 1; k < K; k++ {
			if h[r*K+k] > h[r*K+want] {
				want = k
			}
		}
		if ids[r] != want {
			t.Fatalf("row %d: id %d, want %d (logits %v)", r, ids[r], want, h[r*K:(r+1)*K])
		}
	}
}

// fusedCPU is the CPU backend that takes GumbelNoise tensors as Softmax's
// and SoftmaxMix's noise (FusedGumbeler), drawing the whole noise memory with
// Gumbel where such a tensor is read: the search's fused-noise path on the CPU.
type fusedCPU struct {
	*CPU
	draws int // noise tensors drawn
}

func (f *fusedCPU) FusedGumbel() bool { return true }

func (f *fusedCPU) noise(t *Tensor) *Tensor {
	if t == nil || t.mem.Noise == nil {
		return t
	}
	f.draws++
	full := f.Alloc(t.mem.Len)
	f.Gumbel(NewView(full, 0, t.mem.Len), t.mem.Noise.Seed)
	v := &Tensor{}
	v.set(full, t.off, t.dims[:t.rank]...)
	return v
}

func (f *fusedCPU) Softmax(out, logits, noise *Tensor, tau float32, N, K int) {
	f.CPU.Softmax(out, logits, f.noise(noise), tau, N, K)
}

func (f *fusedCPU) SoftmaxMix(out, hat, logits, bias, noise, prev, z *Tensor, tau float32, N, D, K, Db, Kz, skip int) {
	f.CPU.SoftmaxMix(out, hat, logits, bias, f.noise(noise), prev, z, tau, N, D, K, Db, Kz, skip)
}

// TestSearchFusedNoise: on a backend that draws the state noise itself
// (GumbelNoise tensors, one seed per step), the gradient search gives the
// same losses and results as with the noise buffer, for the MLP and the sym
// interpreter.
func TestSearchFusedNoise(t *testing.T) {
	sym := Tiny()
	sym.Exec, sym.K = "sym", 8
	for _, cfg := range []Config{Tiny(), sym} {
		run := func(b Backend) ([]float64, []Result) {
			m := randomModel(t, b, cfg, 5)
			tb, err := NewTaskBatch(GenTasks(SplitShiftL, PartOOD, 3, 4, 9))
			if err != nil {
				t.Fatal(err)
			}
			sc := cfg.Search
			sc.Starts, sc.Steps, sc.CheckEvery = 4, 6, 3
			var losses []float64
			res := NewSearcher(m).Gradient(tb, sc, 2, func(info StepInfo) bool {
				losses = append(losses, info.Loss)
				return true
			})
			return losses, res
		}
		l0, r0 := run(NewCPU(1))
		f := &fusedCPU{CPU: NewCPU(1)}
		l1, r1 := run(f)
		if f.draws != 6*cfg.T {
			t.Errorf("exec %s: %d fused noise tensors read, want %d (one per step and interpreter step)", cfg.Exec, f.draws, 6*cfg.T)
		}
		if !slices.Equal(l0, l1) || fmt.Sprint(r0) != fmt.Sprint(r1) {
			t.Errorf("exec %s: the search differs with fused noise: losses %v vs %v, results %v vs %v", cfg.Exec, l1, l0, r1, r0)
		}
	}
}
