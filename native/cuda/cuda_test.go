//go:build cuda

// Tests of the CUDA backend on a GPU: the conformance suite against the CPU
// reference (float32 Gemm), TF32 Gemm and float32 GELU (SetFastGELU) against
// the CPU with looser bounds, Gumbel noise bit for bit, the index-error flag,
// and 20 training steps on CPU and CUDA from identical weights and batches.
// Without a device every test skips.

package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nli-go/nli/model"
	"github.com/nli-go/nli/model/modeltest"
)

var (
	shared     *Backend
	sharedErr  error
	sharedOnce sync.Once
)

// newBackend returns a fresh backend, skipping the test without a device.
func newBackend(t *testing.T) *Backend {
	t.Helper()
	runtime.LockOSThread() // New creates the context on this thread
	defer runtime.UnlockOSThread()
	b, err := New()
	if errors.Is(err, ErrNoDevice) {
		t.Skip("no CUDA device")
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backend returns the backend the tests share (one context for the run).
func backend(t *testing.T) *Backend {
	t.Helper()
	sharedOnce.Do(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		shared, sharedErr = New()
	})
	if errors.Is(sharedErr, ErrNoDevice) {
		t.Skip("no CUDA device")
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	if err := shared.Err(); err != nil {
		t.Fatalf("shared backend failed earlier: %v", err)
	}
	return shared
}

func TestConformance(t *testing.T) {
	modeltest.Conformance(t, backend(t))
}

// TestGemmTF32 compares Gemm with TF32 on against the CPU's float32 Gemm for
// the four transpose combinations, beta 0 and 1, at the search's shapes.
// Bound per element: |got − want| ≤ tol·(Σ_k |a_ik·b_kj| + |beta·c_ij|), with
// tol = 4e-3 because TF32 keeps a 10-bit mantissa: each input may be off by
// 2⁻¹⁰ relative (rounding or truncation), so each product by about 2·2⁻¹⁰,
// plus float32 accumulation. With TF32 switched off again the same products
// must meet the float32 bound (tol 1e-5), so the switch really goes back.
func TestGemmTF32(t *testing.T) {
	b := newBackend(t)
	defer b.Close()
	cpu := model.NewCPU(0)
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, sh := range []struct{ M, N, K int }{{3, 5, 7}, {256, 512, 640}, {257, 200, 512}, {512, 64, 200}} {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for _, beta := range []float32{0, 1} {
				M, N, K := sh.M, sh.N, sh.K
				av, bv, cv := fill(M*K), fill(K*N), fill(M*N)
				want := slices.Clone(cv)
				cpu.Gemm(cpuTensor(want), cpuTensor(av), cpuTensor(bv), tr[0], tr[1], M, N, K, 1, beta)
				// scale[i] = Σ_k |a_ik·b_kj| + |beta·c_ij|, the size of what is summed.
				scale := make([]float64, M*N)
				for i := 0; i < M; i++ {
					for j := 0; j < N; j++ {
						s := math.Abs(float64(beta * cv[i*N+j]))
						for k := 0; k < K; k++ {
							ai, bi := i*K+k, k*N+j
							if tr[0] {
								ai = k*M + i
							}
							if tr[1] {
								bi = j*K + k
							}
							s += math.Abs(float64(av[ai]) * float64(bv[bi]))
						}
						scale[i*N+j] = s
					}
				}
				for _, mode := range []struct {
					tf32 bool
					tol  float64
				}{{true, 4e-3}, {false, 1e-5}} {
					b.SetTF32(mode.tf32)
					got := gemmOn(t, b, av, bv, cv, tr[0], tr[1], M, N, K, beta)
					worst, at := 0.0, 0
					for i := range got {
						if r := math.Abs(float64(got[i])-float64(want[i])) / max(scale[i], 1e-30); r > worst {
							worst, at = r, i
						}
					}
					name := fmt.Sprintf("M%d N%d K%d transA %v transB %v beta %g tf32 %v", M, N, K, tr[0], tr[1], beta, mode.tf32)
					if worst > mode.tol || math.IsNaN(worst) {
						t.Errorf("%s: element %d: got %g, want %g (scale %g): error %.2e of the scale, bound %g",
							name, at, got[at], want[at], scale[at], worst, mode.tol)
					} else if M == 256 && N == 512 && !tr[0] && tr[1] && beta == 0 {
						t.Logf("%s: largest error %.2e of the scale (bound %g)", name, worst, mode.tol)
					}
				}
			}
		}
	}
	b.SetTF32(false)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestFastGELU compares GELU and GELUBackward with SetFastGELU(true)
// (float32 erff, expf) against the CPU's float64 reference on 2²⁰ values in
// [−8, 8]. Bound per element: |got − want| ≤ 1e-6 + 1e-5·|want|: erff and
// expf are within a few float32 ulps, and 1 + erff(x/√2) cancels for
// x ≪ 0, which costs a few 1e-8 absolute. With the switch off again the
// default kernels must meet 1e-7 + 1e-6·|want| (they follow the CPU's
// float64 operations).
func TestFastGELU(t *testing.T) {
	b := newBackend(t)
	defer b.Close()
	cpu := model.NewCPU(0)
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 1 << 20
	x, dout, dinp := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(16*rng.Float64() - 8)
		dout[i] = float32(2*rng.Float64() - 1)
		dinp[i] = float32(2*rng.Float64() - 1)
	}
	wantFwd, wantBwd := make([]float32, n), slices.Clone(dinp)
	cpu.GELU(cpuTensor(wantFwd), cpuTensor(x))
	cpu.GELUBackward(cpuTensor(wantBwd), cpuTensor(dout), cpuTensor(x), true)
	mx, mg, mo, md := b.Alloc(n), b.Alloc(n), b.Alloc(n), b.Alloc(n)
	defer b.Free(mx)
	defer b.Free(mg)
	defer b.Free(mo)
	defer b.Free(md)
	tx, tg, to, td := model.NewView(mx, 0, n), model.NewView(mg, 0, n), model.NewView(mo, 0, n), model.NewView(md, 0, n)
	b.Upload(tx, x)
	b.Upload(tg, dout)
	got := make([]float32, n)
	for _, mode := range []struct {
		fast       bool
		atol, rtol float64
	}{{true, 1e-6, 1e-5}, {false, 1e-7, 1e-6}} {
		b.SetFastGELU(mode.fast)
		b.GELU(to, tx)
		b.Upload(td, dinp)
		b.GELUBackward(td, tg, tx, true)
		for _, c := range []struct {
			name string
			t    *model.Tensor
			want []float32
		}{{"GELU", to, wantFwd}, {"GELUBackward", td, wantBwd}} {
			b.Download(got, c.t)
			worst, at := 0.0, 0
			for i := range got {
				d := math.Abs(float64(got[i]) - float64(c.want[i]))
				if r := d / (mode.atol + mode.rtol*math.Abs(float64(c.want[i]))); r > worst || math.IsNaN(d) {
					worst, at = r, i
				}
			}
			if worst > 1 || math.IsNaN(worst) {
				t.Errorf("%s fast %v: x = %g: got %.9g, want %.9g (%.2f× the bound %g + %g·|want|)",
					c.name, mode.fast, x[at], got[at], c.want[at], worst, mode.atol, mode.rtol)
			} else {
				t.Logf("%s fast %v: largest error %.2f× the bound %g + %g·|want|", c.name, mode.fast, worst, mode.atol, mode.rtol)
			}
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestFastBiasGELU compares BiasGELU and BiasGELUBackward (both kernels:
// with the bias gradient over short groups, and without it) against the
// CPU's float64 reference, with SetFastGELU on and off, for a vectorised
// width (512, the search's) and an odd one. Bounds as TestFastGELU's per
// element; the bias gradient, a sum of m elements' d, within m·atol +
// rtol·Σ_j |d_j| (float32 sums of m ≤ 32 terms add under m·2⁻²⁴ of Σ|d|).
func TestFastBiasGELU(t *testing.T) {
	b := newBackend(t)
	defer b.Close()
	cpu := model.NewCPU(0)
	rng := rand.New(rand.NewPCG(7, 8))
	var mems []*model.Memory
	defer func() { // before b.Close
		for _, mm := range mems {
			b.Free(mm)
		}
	}()
	alloc := func(n int) *model.Tensor {
		mm := b.Alloc(n)
		mems = append(mems, mm)
		return model.NewView(mm, 0, n)
	}
	fill := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	for _, shape := range []struct{ R, m, C int }{{256, 4, 512}, {37, 3, 13}} {
		R, m, C := shape.R, shape.m, shape.C
		n := R * m * C
		x, bias, dout := fill(n, -8, 8), fill(R*C, -1, 1), fill(n, -1, 1)
		wantOut, wantD, wantDB := make([]float32, n), make([]float32, n), make([]float32, R*C)
		cpu.BiasGELU(cpuTensor(wantOut), cpuTensor(x), cpuTensor(bias), R, m, C)
		cpu.BiasGELUBackward(cpuTensor(wantD), cpuTensor(wantDB), cpuTensor(dout), cpuTensor(x), cpuTensor(bias), R, m, C, false)
		absSum := make([]float64, R*C) // Σ_j |d_j| per bias element
		for r := range R {
			for j := range m {
				for c := range C {
					absSum[r*C+c] += math.Abs(float64(wantD[(r*m+j)*C+c]))
				}
			}
		}
		tx, tb, tg := alloc(n), alloc(R*C), alloc(n)
		to, td, tdb := alloc(n), alloc(n), alloc(R*C)
		b.Upload(tx, x)
		b.Upload(tb, bias)
		b.Upload(tg, dout)
		got, gotDB := make([]float32, n), make([]float32, R*C)
		for _, mode := range []struct {
			fast       bool
			atol, rtol float64
		}{{true, 1e-6, 1e-5}, {false, 1e-7, 1e-6}} {
			b.SetFastGELU(mode.fast)
			check := func(name string, got, want []float32, scale func(i int) (float64, float64)) {
				worst, at := 0.0, 0
				for i := range got {
					a, r := scale(i)
					d := math.Abs(float64(got[i]) - float64(want[i]))
					if q := d / (a + r); q > worst || math.IsNaN(d) {
						worst, at = q, i
					}
				}
				if worst > 1 || math.IsNaN(worst) {
					t.Errorf("%v %s fast %v: element %d: got %.9g, want %.9g (%.2f× the bound)", shape, name, mode.fast, at, got[at], want[at], worst)
				} else {
					t.Logf("%v %s fast %v: largest error %.2f× the bound", shape, name, mode.fast, worst)
				}
			}
			elem := func(want []float32) func(int) (float64, float64) {
				return func(i int) (float64, float64) { return mode.atol, mode.rtol * math.Abs(float64(want[i])) }
			}
			b.BiasGELU(to, tx, tb, R, m, C)
			b.Download(got, to)
			check("BiasGELU", got, wantOut, elem(wantOut))
			b.Zero(tdb)
			b.BiasGELUBackward(td, tdb, tg, tx, tb, R, m, C, false)
			b.Download(got, td)
			b.Download(gotDB, tdb)
			check("BiasGELUBackward dinp", got, wantD, elem(wantD))
			check("BiasGELUBackward dbias", gotDB, wantDB, func(i int) (float64, float64) {
				return float64(m) * mode.atol, mode.rtol * absSum[i]
			})
			b.Zero(td)
			b.BiasGELUBackward(td, nil, tg, tx, tb, R, m, C, false)
			b.Download(got, td)
			check("BiasGELUBackward dinp without dbias", got, wantD, elem(wantD))
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// cpuTensor views host data as a CPU tensor.
func cpuTensor(v []float32) *model.Tensor {
	return model.NewView(&model.Memory{Len: len(v), F32: v}, 0, len(v))
}

// gemmOn runs C = op(A)·op(B) + beta·C on b from host data and returns C.
func gemmOn(t *testing.T, b *Backend, av, bv, cv []float32, transA, transB bool, M, N, K int, beta float32) []float32 {
	t.Helper()
	ma, mb, mc := b.Alloc(len(av)), b.Alloc(len(bv)), b.Alloc(len(cv))
	defer b.Free(ma)
	defer b.Free(mb)
	defer b.Free(mc)
	ta, tb, tc := model.NewView(ma, 0, len(av)), model.NewView(mb, 0, len(bv)), model.NewView(mc, 0, len(cv))
	b.Upload(ta, av)
	b.Upload(tb, bv)
	b.Upload(tc, cv)
	b.Gemm(tc, ta, tb, transA, transB, M, N, K, 1, beta)
	got := make([]float32, len(cv))
	b.Download(got, tc)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestGumbelBitExact draws 2 × 2²⁴ noise values on both backends and
// expects every one identical, bit for bit (the uniform draw is integer
// arithmetic; −log(−log u) is float64 on both sides, then rounded).
func TestGumbelBitExact(t *testing.T) {
	b := backend(t)
	cpu := model.NewCPU(0)
	const n = 1 << 24
	mem, ref := b.Alloc(n), cpu.Alloc(n)
	defer b.Free(mem)
	got, want := make([]float32, n), make([]float32, n)
	for _, seed := range []uint64{0x5eed, 0xdeadbeefcafe} {
		b.Gumbel(model.NewView(mem, 0, n), seed)
		b.Download(got, model.NewView(mem, 0, n))
		cpu.Gumbel(model.NewView(ref, 0, n), seed)
		cpu.Download(want, model.NewView(ref, 0, n))
		bad, first := 0, -1
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				if bad == 0 {
					first = i
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("seed %#x: %d of %d values differ; first at %d: got %.9g, want %.9g (u = %.17g)",
				seed, bad, n, first, got[first], want[first], model.GumbelUniform(seed, uint64(first)))
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestFastGumbel draws 2²⁴ noise values with SetFastGumbel(true) and bounds
// their distance from the CPU's float64 noise: float32 logs of the same
// uniform draws, each log's input an exact float32, and a relative error δ
// in −log u moves −log(−log u) by δ, so |fast − exact| is a few 10⁻⁷ plus
// a few float32 ulps of the result; the bound is 4·10⁻⁶·(1 + |exact|).
// Every value must be finite, and switching back must give the CPU's noise.
func TestFastGumbel(t *testing.T) {
	b := backend(t)
	defer b.SetFastGumbel(false)
	cpu := model.NewCPU(0)
	const n = 1 << 24
	mem, ref := b.Alloc(n), cpu.Alloc(n)
	defer b.Free(mem)
	got, want := make([]float32, n), make([]float32, n)
	const seed = 0x5eed
	cpu.Gumbel(model.NewView(ref, 0, n), seed)
	cpu.Download(want, model.NewView(ref, 0, n))
	b.SetFastGumbel(true)
	b.Gumbel(model.NewView(mem, 0, n), seed)
	b.Download(got, model.NewView(mem, 0, n))
	worst, at, same := 0.0, 0, 0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			t.Fatalf("value %d is %v (u = %.17g)", i, g, model.GumbelUniform(seed, uint64(i)))
		}
		if g == w {
			same++
		}
		if d := math.Abs(g-w) / (1 + math.Abs(w)); d > worst {
			worst, at = d, i
		}
	}
	t.Logf("fast Gumbel: %d of %d values equal the float64 noise; largest |fast − exact|/(1 + |exact|) %.3g at %d (%.9g vs %.9g)",
		same, n, worst, at, got[at], want[at])
	if worst > 4e-6 {
		t.Errorf("largest |fast − exact|/(1 + |exact|) = %.3g at %d (u = %.17g): %.9g vs %.9g",
			worst, at, model.GumbelUniform(seed, uint64(at)), got[at], want[at])
	}
	b.SetFastGumbel(false)
	b.Gumbel(model.NewView(mem, 0, n), seed)
	b.Download(got, model.NewView(mem, 0, n))
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("after SetFastGumbel(false), value %d differs from the CPU's: %v vs %v", i, got[i], want[i])
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// uploadFrom returns a new tensor of n values on b, the i-th f()'s.
func uploadFrom(b *Backend, n int, f func() float32) *model.Tensor {
	h := make([]float32, n)
	for i := range h {
		h[i] = f()
	}
	x := model.NewView(b.Alloc(n), 0, n)
	b.Upload(x, h)
	return x
}

// downloadAll returns x's values.
func downloadAll(b *Backend, x *model.Tensor) []float32 {
	h := make([]float32, x.Len())
	b.Download(h, x)
	return h
}

// TestFusedGumbel: Softmax and SoftmaxMix drawing their noise themselves
// from a model.GumbelNoise tensor (a slice at an offset, as the search's
// Sub of its state noise) give the same bits as with the noise that the
// fast Gumbel wrote into a buffer, for K ≤ smallK (softmax_small) and above
// (softmax); and a whole gradient search (default and sym interpreters)
// gives the same losses at every step and the same results with fused noise
// as without.
func TestFusedGumbel(t *testing.T) {
	b := backend(t)
	defer b.SetFastGumbel(false)
	defer b.SetFusedGumbel(true)
	b.SetFastGumbel(true)
	if !b.FusedGumbel() {
		t.Fatal("FusedGumbel is off with SetFastGumbel(true) and the default SetFusedGumbel")
	}
	const seed = 0x5eed
	rng := rand.New(rand.NewPCG(3, 4))
	same := func(what string, got, want []float32) {
		t.Helper()
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d is %.9g with fused noise, %.9g with the noise buffer", what, i, got[i], want[i])
			}
		}
	}
	for _, K := range []int{10, 40} { // softmax_small and softmax
		const slices, slice = 3, 2 // noise of three steps; the third one
		D := 2 * K                 // two softmax rows per gate row
		N := 37                    // gate rows
		n := N * D
		buf := model.NewView(b.Alloc(slices*n), 0, slices, N, D)
		b.Gumbel(buf, seed)
		fused := model.NewGumbelNoise(&model.GumbelNoise{Seed: seed}, slices, N, D)
		sub := func(x *model.Tensor) *model.Tensor { m, off := x.Mem(); return model.NewView(m, off+slice*n, N, D) }
		logits := uploadFrom(b, n, func() float32 { return float32(3 * rng.NormFloat64()) })
		prev := uploadFrom(b, n, func() float32 { return rng.Float32() })
		z := uploadFrom(b, N*4, func() float32 { return rng.Float32() })
		bias := uploadFrom(b, D, func() float32 { return float32(rng.NormFloat64()) })
		out, hat := model.NewView(b.Alloc(n), 0, n), model.NewView(b.Alloc(n), 0, n)
		out2, hat2 := model.NewView(b.Alloc(n), 0, n), model.NewView(b.Alloc(n), 0, n)
		b.SoftmaxMix(out, hat, logits, bias, sub(buf), prev, z, 0.7, N, D, K, D, 4, 0)
		b.SoftmaxMix(out2, hat2, logits, bias, sub(fused), prev, z, 0.7, N, D, K, D, 4, 0)
		same(fmt.Sprintf("SoftmaxMix K %d: out", K), downloadAll(b, out2), downloadAll(b, out))
		same(fmt.Sprintf("SoftmaxMix K %d: hat", K), downloadAll(b, hat2), downloadAll(b, hat))
		b.Softmax(out, logits, sub(buf), 1.3, n/K, K)
		b.Softmax(out2, logits, sub(fused), 1.3, n/K, K)
		same(fmt.Sprintf("Softmax K %d", K), downloadAll(b, out2), downloadAll(b, out))
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
	}

	sym := model.Default()
	sym.Name, sym.Exec, sym.K = "sym", "sym", 16
	for _, cfg := range []model.Config{model.Default(), sym} {
		search := func(fused bool) ([]float64, []model.Result) {
			b.SetFusedGumbel(fused)
			defer b.SetFusedGumbel(true)
			m, err := model.NewModel(b, cfg)
			if err != nil {
				t.Fatal(err)
			}
			m.Init(5)
			tb, err := model.NewTaskBatch(model.GenTasks(model.SplitShiftL, model.PartOOD, 6, 4, 9))
			if err != nil {
				t.Fatal(err)
			}
			sc := cfg.Search
			sc.Starts, sc.Steps, sc.CheckEvery = 8, 12, 4
			var losses []float64
			res := model.NewSearcher(m).Gradient(tb, sc, 2, func(info model.StepInfo) bool {
				losses = append(losses, info.Loss)
				return true
			})
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
			return losses, res
		}
		l0, r0 := search(false)
		l1, r1 := search(true)
		if !slices.Equal(l0, l1) {
			t.Errorf("%s: search losses per step differ with fused noise:\n%v\n%v", cfg.Name, l1, l0)
		}
		if fmt.Sprint(r0) != fmt.Sprint(r1) {
			t.Errorf("%s: search results differ with fused noise:\n%v\n%v", cfg.Name, r1, r0)
		}
		t.Logf("%s: %d steps, losses %.6g … %.6g, the same with fused noise", cfg.Name, len(l0), l0[0], l0[len(l0)-1])
	}
}

// TestFastSoftmax: with SetFastSoftmax the state softmax of SoftmaxMix
// (K ≤ 32, softmax_small_f32) stays within 1e-5·|p| + 1e-7 of the float64
// version, for hat and the mixed state: __expf's error grows with |x| (2 +
// 1.16·|x| ulps; x = logit − max down to about −30 here, ~37 ulps, 2.2e-6
// relative) and the float32 sum adds a few ulps; and it gives the float64
// version's bits again when switched off.
func TestFastSoftmax(t *testing.T) {
	b := backend(t)
	defer b.SetFastSoftmax(false)
	rng := rand.New(rand.NewPCG(5, 6))
	const K, N = 10, 4099 // softmax rows of the state; gate rows of 2 softmax rows
	D := 2 * K
	n := N * D
	logits := uploadFrom(b, n, func() float32 { return float32(4 * rng.NormFloat64()) })
	noise := uploadFrom(b, n, func() float32 { return float32(rng.NormFloat64()) })
	prev := uploadFrom(b, n, func() float32 { return rng.Float32() })
	z := uploadFrom(b, N*4, func() float32 { return rng.Float32() })
	out, hat := model.NewView(b.Alloc(n), 0, n), model.NewView(b.Alloc(n), 0, n)
	run := func(fast bool) ([]float32, []float32) {
		b.SetFastSoftmax(fast)
		b.SoftmaxMix(out, hat, logits, nil, noise, prev, z, 0.5, N, D, K, 0, 4, 0)
		return downloadAll(b, out), downloadAll(b, hat)
	}
	wantOut, wantHat := run(false)
	gotOut, gotHat := run(true)
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"hat", gotHat, wantHat}, {"out", gotOut, wantOut}} {
		worst, at, same := 0.0, 0, 0
		for i := range c.got {
			g, w := float64(c.got[i]), float64(c.want[i])
			if g == w {
				same++
			}
			if d := math.Abs(g-w) / (1e-5*math.Abs(w) + 1e-7); d > worst {
				worst, at = d, i
			}
		}
		t.Logf("%s: %d of %d equal; largest |fast − exact| %.2f× the bound 1e-5·|p| + 1e-7 (%.9g vs %.9g)",
			c.name, same, n, worst, c.got[at], c.want[at])
		if worst > 1 {
			t.Errorf("%s: element %d: %.9g with the fast softmax, %.9g without: beyond 1e-5·|p| + 1e-7", c.name, at, c.got[at], c.want[at])
		}
	}
	againOut, againHat := run(false)
	if !slices.Equal(againOut, wantOut) || !slices.Equal(againHat, wantHat) {
		t.Error("after SetFastSoftmax(false) the softmax differs from the float64 one")
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestIndexError: a one-hot index out of range makes Sync report an error
// naming the op, and later ops do nothing (the error is sticky).
func TestIndexError(t *testing.T) {
	b := newBackend(t)
	defer b.Close()
	idx := model.NewView(b.AllocInt(2), 0, 2)
	out := model.NewView(b.Alloc(6), 0, 2, 3)
	b.UploadInt(idx, []int32{1, 3})
	b.OneHot(out, idx, 2, 3)
	err := b.Sync()
	if err == nil || !strings.Contains(err.Error(), "OneHot") {
		t.Fatalf("Sync after a bad index: %v, want an error naming OneHot", err)
	}
	host := []float32{7, 7, 7, 7, 7, 7}
	b.Upload(out, []float32{1, 2, 3, 4, 5, 6}) // does nothing now
	b.Download(host, out)
	if host[0] != 7 || b.Err() != err {
		t.Errorf("after the error: download wrote %v, Err %v", host, b.Err())
	}
}

// TestTrainParity runs 20 training steps of the default configuration on
// the CPU and on CUDA from identical weights (Init draws on the host) and
// identical batches and noise (same seed), and compares the losses.
func TestTrainParity(t *testing.T) {
	b := backend(t)
	// film-recipe: the recipe options of docs/experiments/go/default-film-k16.json
	// (FiLM executor, warm-ups, noise ramp, learning-rate multipliers) and
	// train.contrast, so that the op Mul, the AdamW spans and the contrast
	// loss's ops are checked end to end as well.
	film := model.Default()
	film.Name, film.Exec, film.K = "film-recipe", "film", 16
	film.Train.LR, film.Train.TauE0, film.Train.Warmup = 1e-3, 2, 5
	film.Train.LambdaWarm, film.Train.NoiseRamp = 0.5, 0.5
	film.Train.HeadLRMult, film.Train.EncLRMult = 0.2, 2
	film.Train.Contrast, film.Train.ContrastFrac = 0.5, 0.5 // the task-identity loss, on for half the steps
	// sym: the symbol-selected interpreter (exec sym, K 16, as
	// docs/experiments/go/default-sym-k16.json), built from MatMul,
	// RepeatRows with one-element rows, Mul, PoolPairs over the K maps and
	// AddScaled.
	// Batch 32: the CPU side of its 20 steps is the slow part of the test.
	sym := model.Default()
	sym.Name, sym.Exec, sym.K = "sym", "sym", 16
	sym.Train.Batch = 32
	for _, tc := range []struct {
		name string
		cfg  model.Config
	}{{"default", model.Default()}, {"film-recipe", film}, {"sym", sym}} {
		t.Run(tc.name, func(t *testing.T) { trainParity(t, b, tc.cfg) })
	}
}

// trainParity runs 20 training steps of cfg on the CPU and on b from the
// same weights, batches and noise and compares them step by step.
func trainParity(t *testing.T, b model.Backend, cfg model.Config) {
	const steps, seed = 20, 7
	run := func(be model.Backend) ([]model.StepStats, []model.NamedTensor) {
		m, err := model.NewModel(be, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.Init(seed)
		tr, err := model.NewTrainer(m, model.SplitShiftL, 1000, seed)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var st []model.StepStats
		for range steps {
			s, err := tr.TrainStep()
			if err != nil {
				t.Fatalf("%s: %v", be.Name(), err)
			}
			st = append(st, s)
		}
		return st, m.P.Export(false)
	}
	cpuSt, cpuP := run(model.NewCPU(0))
	gpuSt, gpuP := run(b)

	rel := func(a, b float64) float64 { return math.Abs(a-b) / max(math.Abs(b), 1e-12) }
	const tol = 1e-3 // relative, per step, on loss, NLL, reg and gradient norm
	var maxLoss, maxNLL, maxReg, maxGN float64
	var lines []string
	for i := range cpuSt {
		c, g := cpuSt[i], gpuSt[i]
		dl, dn, dr, dg := rel(g.Loss, c.Loss), rel(g.NLL, c.NLL), rel(g.Reg, c.Reg), rel(g.GradNorm, c.GradNorm)
		maxLoss, maxNLL, maxReg, maxGN = max(maxLoss, dl), max(maxNLL, dn), max(maxReg, dr), max(maxGN, dg)
		lines = append(lines, fmt.Sprintf("step %2d  loss cpu %.7f cuda %.7f rel %.2e  grad_norm rel %.2e", c.Step, c.Loss, g.Loss, dl, dg))
		if dl > tol || dn > tol || dr > tol || dg > tol {
			t.Errorf("step %d: CPU and CUDA differ beyond rel %g: loss %v vs %v, nll %v vs %v, reg %v vs %v, grad_norm %v vs %v",
				c.Step, tol, c.Loss, g.Loss, c.NLL, g.NLL, c.Reg, g.Reg, c.GradNorm, g.GradNorm)
		}
	}
	var maxP, maxAbs float64
	for i := range cpuP {
		for j, w := range cpuP[i].Data {
			maxP = max(maxP, math.Abs(float64(gpuP[i].Data[j])-float64(w)))
			maxAbs = max(maxAbs, math.Abs(float64(w)))
		}
	}
	t.Logf("20 steps, config %s:\n%s", cfg.Name, strings.Join(lines, "\n"))
	t.Logf("max relative difference over %d steps: loss %.2e, nll %.2e, reg %.2e, grad_norm %.2e; parameters after: max |Δ| %.2e (max |p| %.2f)",
		steps, maxLoss, maxNLL, maxReg, maxGN, maxP, maxAbs)
}
