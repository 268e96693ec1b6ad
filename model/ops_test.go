// Tests of the CPU backend's ops: every backward against central finite
// differences of a float64 mirror of its forward, forward values against the
// same mirror, accumulation (+=), unchanged inputs, NaN guard regions, size-1
// dimensions, bit-identical results for 1 and 2 workers, no allocations on
// the hot paths; plus the Gemm benchmarks.

package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Harness.

const guardLen = 5 // NaN elements on each side of every output view

// opHarness makes tensors on a CPU and remembers what to check afterwards:
// outputs' NaN guards and inputs that must come back unchanged.
type opHarness struct {
	t      *testing.T
	c      *CPU
	rng    *rand.Rand
	guards []*Tensor   // views whose surrounding guard elements must stay NaN
	inputs []*Tensor   // input views that must not change
	saved  [][]float32 // their values at creation
	ints   []*Tensor   // int inputs that must not change
	savedI [][]int32   // their values at creation
}

func newHarness(t *testing.T, workers int, seed uint64) *opHarness {
	return &opHarness{t: t, c: NewCPU(workers), rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// vals returns n uniform values in [lo, hi).
func (h *opHarness) vals(n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*h.rng.Float64())
	}
	return v
}

// guarded returns an n-element view in the middle of NaN-filled memory.
func (h *opHarness) guarded(n int) *Tensor {
	m := h.c.Alloc(n + 2*guardLen)
	for i := range m.F32 {
		m.F32[i] = float32(math.NaN())
	}
	t := NewView(m, guardLen, n)
	h.guards = append(h.guards, t)
	return t
}

// in returns an input tensor holding v, guarded, checked unchanged at finish.
func (h *opHarness) in(v []float32) *Tensor {
	t := h.guarded(len(v))
	copy(t.F32(), v)
	h.inputs = append(h.inputs, t)
	h.saved = append(h.saved, append([]float32(nil), v...))
	return t
}

// inInt returns an int input tensor holding v, checked unchanged at finish.
func (h *opHarness) inInt(v []int32) *Tensor {
	m := h.c.AllocInt(len(v))
	copy(m.I32, v)
	t := NewView(m, 0, len(v))
	h.ints = append(h.ints, t)
	h.savedI = append(h.savedI, append([]int32(nil), v...))
	return t
}

// out returns an output tensor of n elements, all NaN, guarded.
func (h *opHarness) out(n int) *Tensor { return h.guarded(n) }

// acc returns a gradient (accumulating) output holding v, guarded.
func (h *opHarness) acc(v []float32) *Tensor {
	t := h.guarded(len(v))
	copy(t.F32(), v)
	return t
}

// finish checks the guards and the inputs and forgets them.
func (h *opHarness) finish(name string) {
	h.t.Helper()
	for _, t := range h.guards {
		m, off := t.Mem()
		for i, v := range m.F32 {
			if (i < off || i >= off+t.Len()) && !math.IsNaN(float64(v)) {
				h.t.Errorf("%s: guard element %d (view [%d,%d)) overwritten with %v", name, i, off, off+t.Len(), v)
				break
			}
		}
	}
	for k, t := range h.inputs {
		for i, v := range t.F32() {
			if math.Float32bits(v) != math.Float32bits(h.saved[k][i]) {
				h.t.Errorf("%s: input %d changed at %d: %v, was %v", name, k, i, v, h.saved[k][i])
				break
			}
		}
	}
	for k, t := range h.ints {
		for i, v := range t.I32() {
			if v != h.savedI[k][i] {
				h.t.Errorf("%s: int input %d changed at %d", name, k, i)
				break
			}
		}
	}
	h.guards, h.inputs, h.saved, h.ints, h.savedI = nil, nil, nil, nil, nil
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// closeTo reports |got−want| ≤ atol + rtol·|want| (NaN matches only NaN).
func closeTo(got, want, atol, rtol float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= atol+rtol*math.Abs(want)
}

// checkClose reports the first element where got and want differ beyond
// tolerance; it returns whether all matched.
func checkClose(t *testing.T, what string, got, want []float64, atol, rtol float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: length %d, want %d", what, len(got), len(want))
		return false
	}
	for i := range want {
		if !closeTo(got[i], want[i], atol, rtol) {
			t.Errorf("%s: first mismatch at %d: got %.9g, want %.9g (atol %g, rtol %g)", what, i, got[i], want[i], atol, rtol)
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Finite-difference gradient checks.

// gradCase is one differentiable op on one shape. The loss is
// L = Σ out ⊙ r for a random r; mirror computes out in float64 from the
// float inputs (in order), fwd runs the float32 forward, bwd runs the
// float32 backward with dout = r, accumulating into grads[k] for every k
// with diff[k] (other entries are nil).
type gradCase struct {
	name   string
	ins    [][]float32
	diff   []bool
	nout   int
	mirror func(in [][]float64) []float64
	fwd    func(out *Tensor, ins []*Tensor)
	bwd    func(dout *Tensor, ins, grads []*Tensor)
	// over, if set, is bwd's overwriting form (acc false): run on gradients
	// filled with NaN, it must give what bwd added.
	over func(dout *Tensor, ins, grads []*Tensor)

	fatol, frtol float64 // forward tolerance (zero: default 1e-5, 1e-4)
	atol, rtol   float64 // gradient tolerance (zero: default 1e-4, 1e-3)
}

// fdGrad is the central difference dL/din[k] of L = Σ f(in)·r.
func fdGrad(f func([][]float64) []float64, in [][]float64, r []float64, k int) []float64 {
	loss := func() float64 {
		var s float64
		for i, v := range f(in) {
			s += v * r[i]
		}
		return s
	}
	x := in[k]
	g := make([]float64, len(x))
	for i, old := range x {
		step := 1e-6 * max(1, math.Abs(old))
		x[i] = old + step
		lp := loss()
		x[i] = old - step
		lm := loss()
		x[i] = old
		g[i] = (lp - lm) / (2 * step)
	}
	return g
}

// runGrad checks forward values, gradients, accumulation, guards and inputs.
func runGrad(t *testing.T, h *opHarness, gc gradCase) {
	t.Helper()
	for _, d := range []struct {
		v   *float64
		def float64
	}{{&gc.fatol, 1e-5}, {&gc.frtol, 1e-4}, {&gc.atol, 1e-4}, {&gc.rtol, 1e-3}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	ins := make([]*Tensor, len(gc.ins))
	in64 := make([][]float64, len(gc.ins))
	for k, v := range gc.ins {
		ins[k] = h.in(v)
		in64[k] = to64(v)
	}
	want := gc.mirror(in64)
	if len(want) != gc.nout {
		t.Fatalf("%s: mirror gives %d outputs, want %d", gc.name, len(want), gc.nout)
	}
	out := h.out(gc.nout)
	gc.fwd(out, ins)
	checkClose(t, gc.name+" forward", to64(out.F32()), want, gc.fatol, gc.frtol)

	r := h.vals(gc.nout, -1, 1)
	dout := h.in(r)
	grads := make([]*Tensor, len(gc.ins))
	g0 := make([][]float32, len(gc.ins))
	for k, d := range gc.diff {
		if d {
			g0[k] = h.vals(len(gc.ins[k]), -1, 1)
			grads[k] = h.acc(g0[k])
		}
	}
	gc.bwd(dout, ins, grads)
	g1 := make([][]float32, len(gc.ins))
	for k, g := range grads {
		if g != nil {
			g1[k] = append([]float32(nil), g.F32()...)
		}
	}
	gc.bwd(dout, ins, grads) // again: must add the same amount
	r64 := to64(r)
	added := make([][]float64, len(grads))
	for k, g := range grads {
		if g == nil {
			continue
		}
		ref := fdGrad(gc.mirror, in64, r64, k)
		d1 := make([]float64, len(ref))
		d2 := make([]float64, len(ref))
		for i := range ref {
			d1[i] = float64(g1[k][i]) - float64(g0[k][i])
			d2[i] = float64(g.F32()[i]) - float64(g1[k][i])
		}
		checkClose(t, fmt.Sprintf("%s d(input %d)", gc.name, k), d1, ref, gc.atol, gc.rtol)
		checkClose(t, fmt.Sprintf("%s d(input %d) second call (accumulate)", gc.name, k), d2, d1, 1e-6, 1e-5)
		added[k] = d1
	}
	if gc.over != nil {
		for _, g := range grads {
			if g != nil {
				for i := range g.F32() {
					g.F32()[i] = float32(math.NaN())
				}
			}
		}
		gc.over(dout, ins, grads)
		for k, g := range grads {
			if g != nil {
				checkClose(t, fmt.Sprintf("%s d(input %d) overwriting form", gc.name, k), to64(g.F32()), added[k], 1e-6, 1e-5)
			}
		}
	}
	h.finish(gc.name)
}

// ---------------------------------------------------------------------------
// float64 mirrors of the forward ops.

func gemm64(a, b, c []float64, ta, tb bool, M, N, K int, alpha, beta float64) []float64 {
	out := make([]float64, M*N)
	for i := range M {
		for j := range N {
			var s float64
			for k := range K {
				av, bv := a[i*K+k], 0.0
				if ta {
					av = a[k*M+i]
				}
				if tb {
					bv = b[j*K+k]
				} else {
					bv = b[k*N+j]
				}
				s += av * bv
			}
			out[i*N+j] = alpha * s
			if beta != 0 {
				out[i*N+j] += beta * c[i*N+j]
			}
		}
	}
	return out
}

func layerNorm64(x, w, b []float64, N, C int) []float64 {
	out := make([]float64, N*C)
	for n := range N {
		row := x[n*C : (n+1)*C]
		var m, v float64
		for _, e := range row {
			m += e
		}
		m /= float64(C)
		for _, e := range row {
			v += (e - m) * (e - m)
		}
		v /= float64(C)
		rs := 1 / math.Sqrt(v+1e-5)
		for i, e := range row {
			out[n*C+i] = (e-m)*rs*w[i] + b[i]
		}
	}
	return out
}

func attention64(qkv []float64, B, S, C, NH int) []float64 {
	hs := C / NH
	scale := 1 / math.Sqrt(float64(hs))
	out := make([]float64, B*S*C)
	pre := make([]float64, S)
	for b := range B {
		for h := range NH {
			for t := range S {
				mx := math.Inf(-1)
				for t2 := range S {
					var d float64
					for i := range hs {
						d += qkv[(b*S+t)*3*C+h*hs+i] * qkv[(b*S+t2)*3*C+C+h*hs+i]
					}
					pre[t2] = d * scale
					mx = max(mx, pre[t2])
				}
				var sum float64
				for t2 := range S {
					pre[t2] = math.Exp(pre[t2] - mx)
					sum += pre[t2]
				}
				for t2 := range S {
					for i := range hs {
						out[(b*S+t)*C+h*hs+i] += pre[t2] / sum * qkv[(b*S+t2)*3*C+2*C+h*hs+i]
					}
				}
			}
		}
	}
	return out
}

func gelu64(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func softmax64(l, noise []float64, tau float64, N, K int) []float64 {
	out := make([]float64, N*K)
	for n := range N {
		mx := math.Inf(-1)
		for k := range K {
			v := l[n*K+k]
			if noise != nil {
				v += noise[n*K+k]
			}
			out[n*K+k] = v / tau
			mx = max(mx, out[n*K+k])
		}
		var s float64
		for k := range K {
			out[n*K+k] = math.Exp(out[n*K+k] - mx)
			s += out[n*K+k]
		}
		for k := range K {
			out[n*K+k] /= s
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Gradient tests, one per differentiable op.

func TestGradGemm(t *testing.T) {
	h := newHarness(t, 2, 1)
	type shape struct{ M, N, K int }
	for _, s := range []shape{{3, 5, 7}, {1, 1, 1}, {4, 1, 3}, {1, 6, 2}, {5, 4, 260}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, ab := range [][2]float32{{1, 0}, {0.7, 1}, {-1.3, 0.4}} {
					M, N, K, alpha, beta := s.M, s.N, s.K, ab[0], ab[1]
					runGrad(t, h, gradCase{
						name: fmt.Sprintf("Gemm M%d N%d K%d tA=%v tB=%v alpha=%v beta=%v", M, N, K, ta, tb, alpha, beta),
						ins:  [][]float32{h.vals(M*K, -1, 1), h.vals(K*N, -1, 1), h.vals(M*N, -1, 1)},
						diff: []bool{true, true, true},
						nout: M * N,
						mirror: func(in [][]float64) []float64 {
							return gemm64(in[0], in[1], in[2], ta, tb, M, N, K, float64(alpha), float64(beta))
						},
						fwd: func(out *Tensor, in []*Tensor) {
							if beta != 0 {
								h.c.Copy(out, in[2])
							}
							h.c.Gemm(out, in[0], in[1], ta, tb, M, N, K, alpha, beta)
						},
						bwd: func(dC *Tensor, in, g []*Tensor) {
							c, A, B := h.c, in[0], in[1]
							switch { // dA = alpha·dC·op(B)ᵀ, laid out as A
							case !ta && tb:
								c.Gemm(g[0], dC, B, false, false, M, K, N, alpha, 1)
							case !ta && !tb:
								c.Gemm(g[0], dC, B, false, true, M, K, N, alpha, 1)
							case ta && tb:
								c.Gemm(g[0], B, dC, true, true, K, M, N, alpha, 1)
							default:
								c.Gemm(g[0], B, dC, false, true, K, M, N, alpha, 1)
							}
							switch { // dB = alpha·op(A)ᵀ·dC, laid out as B
							case !tb && ta:
								c.Gemm(g[1], A, dC, false, false, K, N, M, alpha, 1)
							case !tb && !ta:
								c.Gemm(g[1], A, dC, true, false, K, N, M, alpha, 1)
							case tb && !ta:
								c.Gemm(g[1], dC, A, true, false, N, K, M, alpha, 1)
							default:
								c.Gemm(g[1], dC, A, true, true, N, K, M, alpha, 1)
							}
							c.Axpy(g[2], beta, dC)
						},
						// K = 260 sums 260 float32 products.
						fatol: 1e-5 * math.Sqrt(float64(K)), atol: 1e-4 * math.Sqrt(float64(K)),
					})
				}
			}
		}
	}
}

func TestGradPairEmbed(t *testing.T) {
	h := newHarness(t, 2, 2)
	for _, s := range [][4]int{{3, 4, 2, 5}, {1, 1, 1, 1}, {2, 3, 0, 3}} {
		N, L, T, C := s[0], s[1], s[2], s[3]
		const V = 6
		S := 2*L + T
		x, y := make([]int32, N*L), make([]int32, N*L)
		for i := range x {
			x[i], y[i] = int32(h.rng.IntN(V)), int32(h.rng.IntN(V))
		}
		xt, yt := h.inInt(x), h.inInt(y)
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("PairEmbed N%d L%d T%d C%d", N, L, T, C),
			ins:  [][]float32{h.vals(V*C, -1, 1), h.vals(L*C, -1, 1), h.vals(3*C, -1, 1), h.vals(T*C, -1, 1)},
			diff: []bool{true, true, true, true},
			nout: N * S * C,
			mirror: func(in [][]float64) []float64 {
				val, pos, chn, slot := in[0], in[1], in[2], in[3]
				out := make([]float64, N*S*C)
				for n := range N {
					for l := range L {
						for i := range C {
							out[(n*S+l)*C+i] = val[int(x[n*L+l])*C+i] + pos[l*C+i] + chn[i]
							out[(n*S+L+l)*C+i] = val[int(y[n*L+l])*C+i] + pos[l*C+i] + chn[C+i]
						}
					}
					for tt := range T {
						for i := range C {
							out[(n*S+2*L+tt)*C+i] = slot[tt*C+i] + chn[2*C+i]
						}
					}
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.PairEmbed(out, xt, yt, in[0], in[1], in[2], in[3], N, L, T, C) },
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.PairEmbedBackward(g[0], g[1], g[2], g[3], dout, xt, yt, N, L, T, C)
			},
		})
	}
}

func TestGradLayerNorm(t *testing.T) {
	h := newHarness(t, 2, 3)
	for _, s := range [][2]int{{3, 5}, {1, 1}, {4, 1}, {1, 7}, {70, 9}} {
		N, C := s[0], s[1]
		mean, rstd := h.out(N), h.out(N)
		runGrad(t, h, gradCase{
			name:   fmt.Sprintf("LayerNorm N%d C%d", N, C),
			ins:    [][]float32{h.vals(N*C, -2, 2), h.vals(C, 0.5, 1.5), h.vals(C, -1, 1)},
			diff:   []bool{true, true, true},
			nout:   N * C,
			mirror: func(in [][]float64) []float64 { return layerNorm64(in[0], in[1], in[2], N, C) },
			fwd:    func(out *Tensor, in []*Tensor) { h.c.LayerNorm(out, mean, rstd, in[0], in[1], in[2], N, C) },
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.LayerNormBackward(g[0], g[1], g[2], dout, in[0], in[1], mean, rstd, N, C)
			},
			// C = 1 normalises to exactly 0 with rstd = 1/sqrt(1e-5); float32 rounding
			// of (x−mean) is amplified by rstd ≈ 316.
			fatol: 1e-4, atol: 1e-3,
		})
	}
}

func TestGradAttention(t *testing.T) {
	h := newHarness(t, 2, 4)
	for _, s := range [][4]int{{2, 3, 6, 2}, {1, 1, 1, 1}, {1, 5, 4, 1}, {3, 2, 6, 3}} {
		B, S, C, NH := s[0], s[1], s[2], s[3]
		att, scratch := h.out(B*NH*S*S), h.out(B*NH*S*S)
		runGrad(t, h, gradCase{
			name:   fmt.Sprintf("Attention B%d S%d C%d NH%d", B, S, C, NH),
			ins:    [][]float32{h.vals(B*S*3*C, -1.5, 1.5)},
			diff:   []bool{true},
			nout:   B * S * C,
			mirror: func(in [][]float64) []float64 { return attention64(in[0], B, S, C, NH) },
			fwd:    func(out *Tensor, in []*Tensor) { h.c.Attention(out, att, in[0], B, S, C, NH) },
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.AttentionBackward(g[0], scratch, dout, in[0], att, B, S, C, NH)
			},
		})
	}
}

func TestGradGELU(t *testing.T) {
	h := newHarness(t, 2, 5)
	for _, n := range []int{1, 7, 2100} {
		x := h.vals(n, -4, 4)
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("GELU n%d", n),
			ins:  [][]float32{x},
			diff: []bool{true},
			nout: n,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, len(in[0]))
				for i, v := range in[0] {
					out[i] = gelu64(v)
				}
				return out
			},
			fwd:  func(out *Tensor, in []*Tensor) { h.c.GELU(out, in[0]) },
			bwd:  func(dout *Tensor, in, g []*Tensor) { h.c.GELUBackward(g[0], dout, in[0], true) },
			over: func(dout *Tensor, in, g []*Tensor) { h.c.GELUBackward(g[0], dout, in[0], false) },
		})
	}
}

func TestGradBiasGELU(t *testing.T) {
	h := newHarness(t, 2, 15)
	for _, d := range [][3]int{{1, 1, 1}, {1, 7, 5}, {3, 4, 5}, {6, 1, 3}, {2, 33, 70}} {
		R, m, C := d[0], d[1], d[2]
		mirror := func(in [][]float64) []float64 {
			out := make([]float64, 0, R*m*C)
			for r := range R {
				for j := range m {
					for c := range C {
						out = append(out, gelu64(in[0][(r*m+j)*C+c]+in[1][r*C+c]))
					}
				}
			}
			return out
		}
		ins := [][]float32{h.vals(R*m*C, -3, 3), h.vals(R*C, -1, 1)}
		fwd := func(out *Tensor, in []*Tensor) { h.c.BiasGELU(out, in[0], in[1], R, m, C) }
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("BiasGELU R%d m%d C%d", R, m, C), ins: ins, diff: []bool{true, true},
			nout: R * m * C, mirror: mirror, fwd: fwd,
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.BiasGELUBackward(g[0], g[1], dout, in[0], in[1], R, m, C, true)
			},
		})
		// The overwriting form of dinp (dbias always accumulates), and the
		// bias gradient alone (dinp nil).
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("BiasGELU dinp R%d m%d C%d", R, m, C), ins: ins, diff: []bool{true, false},
			nout: R * m * C, mirror: mirror, fwd: fwd,
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.BiasGELUBackward(g[0], nil, dout, in[0], in[1], R, m, C, true)
			},
			over: func(dout *Tensor, in, g []*Tensor) {
				h.c.BiasGELUBackward(g[0], nil, dout, in[0], in[1], R, m, C, false)
			},
		})
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("BiasGELU dbias R%d m%d C%d", R, m, C), ins: ins, diff: []bool{false, true},
			nout: R * m * C, mirror: mirror, fwd: fwd,
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.BiasGELUBackward(nil, g[1], dout, in[0], in[1], R, m, C, false)
			},
		})
	}
}

// ofF32 returns a CPU tensor holding v (not copied).
func ofF32(v []float32) *Tensor {
	return NewView(&Memory{Len: len(v), F32: v}, 0, len(v))
}

// TestBiasGELUEqualsParts checks BiasGELU against the ops it replaces, bit
// for bit: GELU(AddRows(x, b)) for one bias row, GELU(Add(x, RepeatRows(b,
// m))) for R rows, forward and both gradients (acc false and true).
func TestBiasGELUEqualsParts(t *testing.T) {
	c := NewCPU(3)
	rng := rand.New(rand.NewPCG(5, 6))
	vals := func(n int) *Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 2)
		}
		return ofF32(v)
	}
	for _, d := range [][3]int{{1, 300, 17}, {40, 4, 33}, {7, 1, 2}} {
		R, m, C := d[0], d[1], d[2]
		n := R * m * C
		x, b, dout := vals(n), vals(R*C), vals(n)
		sum, want, got := ofF32(make([]float32, n)), ofF32(make([]float32, n)), ofF32(make([]float32, n))
		if R == 1 {
			c.AddRows(sum, x, b, m, C)
		} else {
			rep := ofF32(make([]float32, n))
			c.RepeatRows(rep, b, R, m, C)
			c.Add(sum, x, rep)
		}
		c.GELU(want, sum)
		c.BiasGELU(got, x, b, R, m, C)
		if !slices.Equal(want.F32(), got.F32()) {
			t.Errorf("R%d m%d C%d: BiasGELU differs from GELU of the sum", R, m, C)
		}
		for _, acc := range []bool{false, true} {
			start := vals(n)
			wantDx := ofF32(slices.Clone(start.F32()))
			c.GELUBackward(wantDx, dout, sum, acc)
			wantDb := vals(R * C)
			gotDb := ofF32(slices.Clone(wantDb.F32()))
			dsum := ofF32(make([]float32, n))
			c.GELUBackward(dsum, dout, sum, false)
			c.RepeatRowsBackward(wantDb, dsum, R, m, C)
			gotDx := ofF32(slices.Clone(start.F32()))
			c.BiasGELUBackward(gotDx, gotDb, dout, x, b, R, m, C, acc)
			if !slices.Equal(wantDx.F32(), gotDx.F32()) || !slices.Equal(wantDb.F32(), gotDb.F32()) {
				t.Errorf("R%d m%d C%d acc %v: BiasGELUBackward differs from GELUBackward and RepeatRowsBackward", R, m, C, acc)
			}
		}
	}
}

// TestSoftmaxMixEqualsParts checks that SoftmaxMix is AddRows, Softmax and
// SkipMix bit for bit, and its backward SkipMixBackward then
// SoftmaxBackward, for every accumulate flag, nil outputs, with and without
// bias and noise, with several softmax rows per gate row.
func TestSoftmaxMixEqualsParts(t *testing.T) {
	c := NewCPU(3)
	rng := rand.New(rand.NewPCG(7, 8))
	vals := func(n int, scale float64) *Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return ofF32(v)
	}
	clone := func(x *Tensor) *Tensor { return ofF32(slices.Clone(x.F32())) }
	// (N gate rows, D per gate row, K, Db, Kz, skip)
	for _, d := range [][6]int{{5, 40, 10, 20, 7, 3}, {3, 12, 4, 0, 2, 0}, {1, 9, 9, 9, 1, 0}, {64, 800, 10, 200, 16, 0}} {
		N, D, K, Db, Kz, skip := d[0], d[1], d[2], d[3], d[4], d[5]
		for _, noisy := range []bool{false, true} {
			name := fmt.Sprintf("N%d D%d K%d Db%d Kz%d noise %v", N, D, K, Db, Kz, noisy)
			n := N * D
			logits, prev, z := vals(n, 2), vals(n, 1), vals(N*Kz, 1)
			var bias, noise *Tensor
			if Db > 0 {
				bias = vals(Db, 1)
			}
			if noisy {
				noise = vals(n, 1)
			}
			const tau = 0.7
			// The parts.
			sum := clone(logits)
			if bias != nil {
				c.AddRows(sum, logits, bias, n/Db, Db)
			}
			wantHat, want := ofF32(make([]float32, n)), ofF32(make([]float32, n))
			c.Softmax(wantHat, sum, noise, tau, n/K, K)
			c.SkipMix(want, prev, wantHat, z, N, D, Kz, skip)
			gotHat, got := ofF32(make([]float32, n)), ofF32(make([]float32, n))
			c.SoftmaxMix(got, gotHat, logits, bias, noise, prev, z, tau, N, D, K, Db, Kz, skip)
			if !slices.Equal(wantHat.F32(), gotHat.F32()) || !slices.Equal(want.F32(), got.F32()) {
				t.Fatalf("%s: SoftmaxMix differs from AddRows, Softmax and SkipMix", name)
			}
			dout := vals(n, 1)
			for acc := range SkipMixAccAll + 1 {
				for _, nilPrev := range []bool{false, true} {
					dl0, dp0, dz0 := vals(n, 1), vals(n, 1), vals(N*Kz, 1)
					wl, wp, wz := clone(dl0), clone(dp0), clone(dz0)
					gl, gp, gz := clone(dl0), clone(dp0), clone(dz0)
					if nilPrev {
						wp, gp = nil, nil
					}
					dhat := ofF32(make([]float32, n))
					c.SkipMixBackward(wp, dhat, wz, dout, prev, wantHat, z, N, D, Kz, skip, acc&^SkipMixAccHat)
					c.SoftmaxBackward(wl, dhat, wantHat, tau, n/K, K, acc&SkipMixAccHat != 0)
					c.SoftmaxMixBackward(gl, gp, gz, dout, prev, gotHat, z, tau, N, D, K, Kz, skip, acc)
					same := slices.Equal(wl.F32(), gl.F32()) && slices.Equal(wz.F32(), gz.F32())
					if !nilPrev {
						same = same && slices.Equal(wp.F32(), gp.F32())
					}
					if !same {
						t.Errorf("%s acc %03b nil dprev %v: SoftmaxMixBackward differs from SkipMixBackward and SoftmaxBackward", name, acc, nilPrev)
					}
				}
			}
		}
	}
}

func TestGradSliceRows(t *testing.T) {
	h := newHarness(t, 1, 6)
	for _, s := range [][5]int{{3, 7, 2, 4, 5}, {1, 1, 0, 1, 1}, {2, 5, 5, 0, 3}} {
		N, S, start, R, C := s[0], s[1], s[2], s[3], s[4]
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("SliceRows N%d S%d start%d R%d C%d", N, S, start, R, C),
			ins:  [][]float32{h.vals(N*S*C, -1, 1)},
			diff: []bool{true},
			nout: N * R * C,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, 0, N*R*C)
				for n := range N {
					out = append(out, in[0][(n*S+start)*C:(n*S+start+R)*C]...)
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.SliceRows(out, in[0], N, S, start, R, C) },
			bwd: func(dout *Tensor, in, g []*Tensor) { h.c.SliceRowsBackward(g[0], dout, N, S, start, R, C) },
		})
	}
}

func TestGradPoolPairs(t *testing.T) {
	h := newHarness(t, 1, 7)
	for _, loo := range []bool{true, false} {
		for _, s := range [][3]int{{3, 4, 5}, {1, 2, 1}, {2, 1, 3}, {1, 3, 1}} {
			B, m, C := s[0], s[1], s[2]
			if loo && m < 2 {
				continue
			}
			nout := B * C
			if loo {
				nout = B * m * C
			}
			runGrad(t, h, gradCase{
				name: fmt.Sprintf("PoolPairs loo=%v B%d m%d C%d", loo, B, m, C),
				ins:  [][]float32{h.vals(B*m*C, -1, 1)},
				diff: []bool{true},
				nout: nout,
				mirror: func(in [][]float64) []float64 {
					out := make([]float64, nout)
					for b := range B {
						for k := range C {
							var s float64
							for j := range m {
								s += in[0][(b*m+j)*C+k]
							}
							if !loo {
								out[b*C+k] = s / float64(m)
								continue
							}
							for i := range m {
								out[(b*m+i)*C+k] = (s - in[0][(b*m+i)*C+k]) / float64(m-1)
							}
						}
					}
					return out
				},
				fwd: func(out *Tensor, in []*Tensor) { h.c.PoolPairs(out, in[0], B, m, C, loo) },
				bwd: func(dout *Tensor, in, g []*Tensor) { h.c.PoolPairsBackward(g[0], dout, B, m, C, loo) },
			})
		}
	}
}

func TestGradRepeatRows(t *testing.T) {
	h := newHarness(t, 1, 8)
	for _, s := range [][3]int{{3, 4, 5}, {1, 1, 1}, {2, 3, 1}} {
		R, m, C := s[0], s[1], s[2]
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("RepeatRows R%d m%d C%d", R, m, C),
			ins:  [][]float32{h.vals(R*C, -1, 1)},
			diff: []bool{true},
			nout: R * m * C,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, 0, R*m*C)
				for r := range R {
					for range m {
						out = append(out, in[0][r*C:(r+1)*C]...)
					}
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.RepeatRows(out, in[0], R, m, C) },
			bwd: func(dout *Tensor, in, g []*Tensor) { h.c.RepeatRowsBackward(g[0], dout, R, m, C) },
		})
	}
}

func TestGradTranspose01(t *testing.T) {
	h := newHarness(t, 1, 9)
	for _, s := range [][3]int{{3, 4, 5}, {1, 1, 1}, {2, 1, 3}, {1, 3, 2}} {
		A, B, C := s[0], s[1], s[2]
		mirror := func(in [][]float64) []float64 {
			out := make([]float64, A*B*C)
			for a := range A {
				for b := range B {
					copy(out[(b*A+a)*C:(b*A+a+1)*C], in[0][(a*B+b)*C:(a*B+b+1)*C])
				}
			}
			return out
		}
		runGrad(t, h, gradCase{
			name:   fmt.Sprintf("Transpose01 A%d B%d C%d", A, B, C),
			ins:    [][]float32{h.vals(A*B*C, -1, 1)},
			diff:   []bool{true},
			nout:   A * B * C,
			mirror: mirror,
			fwd:    func(out *Tensor, in []*Tensor) { h.c.Transpose01(out, in[0], A, B, C, false) },
			bwd:    func(dout *Tensor, in, g []*Tensor) { h.c.Transpose01(g[0], dout, B, A, C, true) },
		})
		// acc = true adds onto the output.
		x, o0 := h.vals(A*B*C, -1, 1), h.vals(A*B*C, -1, 1)
		out := h.acc(o0)
		h.c.Transpose01(out, h.in(x), A, B, C, true)
		want := mirror([][]float64{to64(x)})
		for i := range want {
			want[i] += float64(o0[i])
		}
		checkClose(t, "Transpose01 acc", to64(out.F32()), want, 1e-6, 1e-6)
		h.finish("Transpose01 acc")
	}
}

func TestGradSoftmax(t *testing.T) {
	h := newHarness(t, 2, 10)
	for _, s := range [][2]int{{3, 7}, {1, 1}, {4, 1}, {1, 5}, {9, 64}} {
		for _, noisy := range []bool{false, true} {
			for _, tau := range []float32{1, 0.37, 2.5} {
				N, K := s[0], s[1]
				var noise []float32
				var noiseT *Tensor
				if noisy {
					noise = h.vals(N*K, -1, 3)
					noiseT = h.in(noise)
				}
				runGrad(t, h, gradCase{
					name: fmt.Sprintf("Softmax N%d K%d noise=%v tau=%v", N, K, noisy, tau),
					ins:  [][]float32{h.vals(N*K, -3, 3)},
					diff: []bool{true},
					nout: N * K,
					mirror: func(in [][]float64) []float64 {
						var nz []float64
						if noisy {
							nz = to64(noise)
						}
						return softmax64(in[0], nz, float64(tau), N, K)
					},
					fwd: func(out *Tensor, in []*Tensor) { h.c.Softmax(out, in[0], noiseT, tau, N, K) },
					bwd: func(dout *Tensor, in, g []*Tensor) {
						p := h.out(N * K)
						h.c.Softmax(p, in[0], noiseT, tau, N, K)
						h.c.SoftmaxBackward(g[0], dout, p, tau, N, K, true)
					},
					over: func(dout *Tensor, in, g []*Tensor) {
						p := h.out(N * K)
						h.c.Softmax(p, in[0], noiseT, tau, N, K)
						h.c.SoftmaxBackward(g[0], dout, p, tau, N, K, false)
					},
				})
			}
		}
	}
}

func TestGradSkipMix(t *testing.T) {
	h := newHarness(t, 1, 11)
	for _, s := range [][4]int{{3, 5, 4, 0}, {3, 5, 4, 2}, {1, 1, 1, 0}} {
		N, D, K, skip := s[0], s[1], s[2], s[3]
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("SkipMix N%d D%d K%d skip%d", N, D, K, skip),
			ins:  [][]float32{h.vals(N*D, -1, 1), h.vals(N*D, -1, 1), h.vals(N*K, 0, 1)},
			diff: []bool{true, true, true},
			nout: N * D,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, N*D)
				for n := range N {
					g := in[2][n*K+skip]
					for i := range D {
						out[n*D+i] = g*in[0][n*D+i] + (1-g)*in[1][n*D+i]
					}
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.SkipMix(out, in[0], in[1], in[2], N, D, K, skip) },
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.SkipMixBackward(g[0], g[1], g[2], dout, in[0], in[1], in[2], N, D, K, skip, SkipMixAccAll)
			},
			over: func(dout *Tensor, in, g []*Tensor) {
				h.c.SkipMixBackward(g[0], g[1], g[2], dout, in[0], in[1], in[2], N, D, K, skip, 0)
			},
		})
	}
}

func TestGradNLL(t *testing.T) {
	h := newHarness(t, 1, 12)
	for _, s := range [][2]int{{3, 7}, {1, 1}, {5, 2}} {
		N, V := s[0], s[1]
		y := make([]int32, N)
		for i := range y {
			y[i] = int32(h.rng.IntN(V))
		}
		yt := h.inInt(y)
		const scale = 0.3
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("NLL N%d V%d", N, V),
			ins:  [][]float32{h.vals(N*V, 0.05, 1)},
			diff: []bool{true},
			nout: 1,
			mirror: func(in [][]float64) []float64 {
				var s float64
				for n, t := range y {
					s -= math.Log(max(in[0][n*V+int(t)], 1e-8))
				}
				return []float64{scale * s}
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.NLL(out, in[0], yt, N, V, scale) },
			bwd: func(dout *Tensor, in, g []*Tensor) { h.c.NLLBackward(g[0], dout, in[0], yt, N, V, scale) },
		})
	}
	// Clamp: p ≤ 1e-8 counts as 1e-8 and gets no gradient.
	p := h.in([]float32{0, 0.5, 1e-9, 0.5})
	y := h.inInt([]int32{0, 0})
	out, dp := h.out(1), h.acc(make([]float32, 4))
	h.c.NLL(out, p, y, 2, 2, 1)
	checkClose(t, "NLL clamp", to64(out.F32()), []float64{-2 * math.Log(1e-8)}, 1e-4, 1e-6)
	h.c.NLLBackward(dp, h.in([]float32{1}), p, y, 2, 2, 1)
	checkClose(t, "NLL clamp grad", to64(dp.F32()), []float64{0, 0, 0, 0}, 0, 0)
	h.finish("NLL clamp")
}

func TestGradReuseReg(t *testing.T) {
	h := newHarness(t, 1, 13)
	for _, s := range [][2]int{{3, 7}, {1, 1}, {6, 2}} {
		N, D := s[0], s[1]
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("ReuseReg N%d D%d", N, D),
			ins:  [][]float32{h.vals(N*D, 0, 0.9)},
			diff: []bool{true},
			nout: 1,
			mirror: func(in [][]float64) []float64 {
				var s float64
				for d := range D {
					var sd float64
					for n := range N {
						sd += math.Log1p(-min(in[0][n*D+d], 1-1e-6))
					}
					s += 1 - math.Exp(sd)
				}
				return []float64{s}
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.ReuseReg(out, in[0], N, D) },
			bwd: func(dout *Tensor, in, g []*Tensor) { h.c.ReuseRegBackward(g[0], dout, in[0], N, D) },
		})
	}
	// Clamp: q = 1 counts as 1−1e-6 and gets no gradient.
	q := h.in([]float32{1, 0.5})
	out, dq := h.out(1), h.acc([]float32{0, 0})
	h.c.ReuseReg(out, q, 2, 1)
	checkClose(t, "ReuseReg clamp", to64(out.F32()), []float64{1 - 1e-6*0.5}, 1e-6, 1e-6)
	h.c.ReuseRegBackward(dq, h.in([]float32{1}), q, 2, 1)
	checkClose(t, "ReuseReg clamp grad", to64(dq.F32()), []float64{0, 1e-6 * 0.5 / 0.5}, 1e-9, 1e-4)
	h.finish("ReuseReg clamp")
}

func TestGradAddRows(t *testing.T) {
	h := newHarness(t, 1, 14)
	for _, s := range [][2]int{{3, 5}, {1, 1}, {4, 1}} {
		N, C := s[0], s[1]
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("AddRows/SumRows N%d C%d", N, C),
			ins:  [][]float32{h.vals(N*C, -1, 1), h.vals(C, -1, 1)},
			diff: []bool{true, true},
			nout: N * C,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, N*C)
				for n := range N {
					for i := range C {
						out[n*C+i] = in[0][n*C+i] + in[1][i]
					}
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.AddRows(out, in[0], in[1], N, C) },
			bwd: func(dout *Tensor, in, g []*Tensor) {
				h.c.Axpy(g[0], 1, dout)
				h.c.SumRows(g[1], dout, N, C)
			},
		})
	}
	// out may alias inp.
	x, r := h.vals(6, -1, 1), h.vals(3, -1, 1)
	xt := h.acc(x)
	h.c.AddRows(xt, xt, h.in(r), 2, 3)
	for i, v := range xt.F32() {
		if v != x[i]+r[i%3] {
			t.Errorf("AddRows in place: element %d = %v, want %v", i, v, x[i]+r[i%3])
		}
	}
	h.finish("AddRows in place")
}

func TestGradAxpyAdd(t *testing.T) {
	h := newHarness(t, 1, 15)
	const alpha = -0.7
	for _, n := range []int{1, 7} {
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("Copy+Axpy n%d", n),
			ins:  [][]float32{h.vals(n, -1, 1), h.vals(n, -1, 1)},
			diff: []bool{true, true},
			nout: n,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, n)
				for i := range out {
					out[i] = in[0][i] + alpha*in[1][i]
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.Copy(out, in[0]); h.c.Axpy(out, alpha, in[1]) },
			bwd: func(dout *Tensor, in, g []*Tensor) { h.c.Axpy(g[0], 1, dout); h.c.Axpy(g[1], alpha, dout) },
		})
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("Add n%d", n),
			ins:  [][]float32{h.vals(n, -1, 1), h.vals(n, -1, 1)},
			diff: []bool{true, true},
			nout: n,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, n)
				for i := range out {
					out[i] = in[0][i] + in[1][i]
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.Add(out, in[0], in[1]) },
			bwd: func(dout *Tensor, in, g []*Tensor) { h.c.Axpy(g[0], 1, dout); h.c.Axpy(g[1], 1, dout) },
		})
	}
	// Add in place, Scale, Zero.
	a, b := h.vals(5, -1, 1), h.vals(5, -1, 1)
	at := h.acc(a)
	h.c.Add(at, at, h.in(b))
	h.c.Scale(at, 2)
	for i, v := range at.F32() {
		if v != 2*(a[i]+b[i]) {
			t.Errorf("Add in place + Scale: element %d = %v, want %v", i, v, 2*(a[i]+b[i]))
		}
	}
	h.c.Zero(at)
	for i, v := range at.F32() {
		if v != 0 {
			t.Errorf("Zero: element %d = %v", i, v)
		}
	}
	h.finish("Add in place")
}

func TestGradMul(t *testing.T) {
	h := newHarness(t, 1, 16)
	for _, n := range []int{1, 7, 130} {
		runGrad(t, h, gradCase{
			name: fmt.Sprintf("Mul n%d", n),
			ins:  [][]float32{h.vals(n, -2, 2), h.vals(n, -2, 2)},
			diff: []bool{true, true},
			nout: n,
			mirror: func(in [][]float64) []float64 {
				out := make([]float64, n)
				for i := range out {
					out[i] = in[0][i] * in[1][i]
				}
				return out
			},
			fwd: func(out *Tensor, in []*Tensor) { h.c.Mul(out, in[0], in[1]) },
			bwd: func(dout *Tensor, in, g []*Tensor) { h.c.MulBackward(g[0], g[1], dout, in[0], in[1]) },
		})
	}
	// One gradient only: the other is skipped.
	a, b := h.vals(4, -1, 1), h.vals(4, -1, 1)
	dout := h.vals(4, -1, 1)
	db := h.acc(make([]float32, 4))
	h.c.MulBackward(nil, db, h.in(dout), h.in(a), h.in(b))
	for i, v := range db.F32() {
		if v != dout[i]*a[i] {
			t.Errorf("MulBackward db[%d] = %v, want %v", i, v, dout[i]*a[i])
		}
	}
	h.finish("MulBackward one gradient")
}

// ---------------------------------------------------------------------------
// Forward-only ops and the optimiser.

func TestOpAdamW(t *testing.T) {
	c := NewCPU(1)
	p, g, m, v := c.Alloc(1), c.Alloc(1), c.Alloc(1), c.Alloc(1)
	pt, gt, mt, vt := NewView(p, 0, 1), NewView(g, 0, 1), NewView(m, 0, 1), NewView(v, 0, 1)
	p.F32[0] = 1
	// lr 0.1, β 0.9/0.999, eps 1e-8, wd 0.01; gradients 0.5 then −0.25 after
	// gradScale 0.5. By hand (float64):
	// step 1: p = 1·(1−0.001) = 0.999; m = 0.05; v = 0.00025;
	//         m̂ = 0.5, v̂ = 0.25; p = 0.999 − 0.1·0.5/(0.5+1e-8) = 0.899000002
	// step 2: p = 0.899000002·0.999 = 0.898101002; m = 0.02; v = 0.00031225;
	//         m̂ = 0.02/0.19, v̂ = 0.00031225/0.001999; p = 0.8714672987
	steps := []struct{ g, p, m, v float64 }{
		{1.0, 0.899000002, 0.05, 0.00025},
		{-0.5, 0.8714672987058463, 0.02, 0.00031225},
	}
	for i, s := range steps {
		g.F32[0] = float32(s.g)
		c.AdamW(pt, gt, mt, vt, 0.1, 0.9, 0.999, 1e-8, 0.01, 0.5, i+1)
		checkClose(t, fmt.Sprintf("AdamW step %d p", i+1), to64(p.F32), []float64{s.p}, 1e-7, 1e-6)
		checkClose(t, fmt.Sprintf("AdamW step %d m", i+1), to64(m.F32), []float64{s.m}, 1e-9, 1e-6)
		checkClose(t, fmt.Sprintf("AdamW step %d v", i+1), to64(v.F32), []float64{s.v}, 1e-12, 1e-6)
	}
	if g.F32[0] != -0.5 {
		t.Errorf("AdamW changed the gradient: %v", g.F32[0])
	}
}

func TestOpGumbel(t *testing.T) {
	c := NewCPU(1)
	const n = 100000
	a, b, d := c.Alloc(n), c.Alloc(n), c.Alloc(n)
	at, bt, dt := NewView(a, 0, n), NewView(b, 0, n), NewView(d, 0, n)
	c.Gumbel(at, 42)
	c.Gumbel(bt, 42)
	c.Gumbel(dt, 43)
	same := 0
	var s, ss float64
	for i := range n {
		if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
			t.Fatalf("Gumbel not deterministic at %d", i)
		}
		if a.F32[i] == d.F32[i] {
			same++
		}
		u := GumbelUniform(42, uint64(i))
		if want := float32(-math.Log(-math.Log(u))); a.F32[i] != want {
			t.Fatalf("Gumbel[%d] = %v, want %v", i, a.F32[i], want)
		}
		s += float64(a.F32[i])
		ss += float64(a.F32[i]) * float64(a.F32[i])
	}
	if same > n/100 {
		t.Errorf("seeds 42 and 43 agree on %d of %d draws", same, n)
	}
	mean := s / n
	variance := ss/n - mean*mean
	// Standard Gumbel: mean = Euler–Mascheroni γ, variance π²/6; the standard
	// error of the mean over 1e5 draws is 0.004.
	if math.Abs(mean-0.5772156649) > 0.02 {
		t.Errorf("Gumbel mean %v, want ≈ 0.5772", mean)
	}
	if math.Abs(variance-math.Pi*math.Pi/6) > 0.05 {
		t.Errorf("Gumbel variance %v, want ≈ %v", variance, math.Pi*math.Pi/6)
	}
	// A view draws by its own element index.
	v := NewView(a, 10, 5)
	c.Gumbel(v, 42)
	if a.F32[10] != b.F32[0] {
		t.Errorf("Gumbel on a view: element 0 = %v, want %v", a.F32[10], b.F32[0])
	}
}

func TestOpOneHot(t *testing.T) {
	h := newHarness(t, 1, 16)
	out := h.out(3 * 4)
	h.c.OneHot(out, h.inInt([]int32{2, 0, 3}), 3, 4)
	want := []float64{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1}
	checkClose(t, "OneHot", to64(out.F32()), want, 0, 0)

	out = h.out(3 * 4)
	h.c.ArgmaxOneHot(out, h.in([]float32{
		0.1, 0.7, 0.7, -1, // tie: first max wins
		-3, -2, -5, -2.5,
		9, 1, 2, 3,
	}), 3, 4)
	want = []float64{0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0}
	checkClose(t, "ArgmaxOneHot", to64(out.F32()), want, 0, 0)

	out = h.out(2)
	h.c.ArgmaxOneHot(out, h.in([]float32{5, 6}), 2, 1) // K = 1
	checkClose(t, "ArgmaxOneHot K=1", to64(out.F32()), []float64{1, 1}, 0, 0)

	// SeqScore: R = 2 sequences of L = 2 positions over V = 3.
	ll, ex := h.out(2), h.out(2)
	h.c.SeqScore(ll, ex, h.in([]float32{
		0.2, 0.5, 0.3, 0.6, 0.3, 0.1, // r0: argmax 1, 0; targets 1, 0: exact
		0.2, 0.5, 0.3, 0, 0.3, 0.7, // r1: targets 1, 0: position 1 misses, p = 0 clamps
	}), h.inInt([]int32{1, 0, 1, 0}), 2, 2, 3)
	checkClose(t, "SeqScore loglik", to64(ll.F32()),
		[]float64{math.Log(0.5) + math.Log(0.6), math.Log(0.5) + math.Log(1e-8)}, 1e-6, 1e-6)
	checkClose(t, "SeqScore exact", to64(ex.F32()), []float64{1, 0}, 0, 0)
	h.finish("OneHot/ArgmaxOneHot/SeqScore")
}

func TestOpSumSquares(t *testing.T) {
	for _, n := range []int{0, 1, 7, 4096, 50001} {
		c1, c2 := NewCPU(1), NewCPU(2)
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		x := make([]float32, n)
		var want float64
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			want += float64(x[i]) * float64(x[i])
		}
		m := c1.Alloc(n)
		copy(m.F32, x)
		xt := NewView(m, 0, n)
		o1, o2 := NewView(c1.Alloc(1), 0, 1), NewView(c2.Alloc(1), 0, 1)
		c1.SumSquares(o1, xt)
		c2.SumSquares(o2, xt)
		checkClose(t, fmt.Sprintf("SumSquares n%d", n), to64(o1.F32()), []float64{want}, 1e-6, 1e-6)
		if math.Float32bits(o1.F32()[0]) != math.Float32bits(o2.F32()[0]) {
			t.Errorf("SumSquares n%d: 1 worker %v, 2 workers %v", n, o1.F32()[0], o2.F32()[0])
		}
	}
}

// TestGemmBlocked runs Gemm on sizes that cross the packing blocks (K >
// gemmKC, N > gemmNC), partial tiles and the column-split path, with beta = 0
// overwriting NaN.
func TestGemmBlocked(t *testing.T) {
	h := newHarness(t, 2, 17)
	type shape struct{ M, N, K int }
	for _, s := range []shape{{37, 531, 300}, {1, 1100, 70}, {2, 700, 513}, {301, 3, 5}, {5, 4, 0}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {1.5, -0.5}} {
					M, N, K, alpha, beta := s.M, s.N, s.K, ab[0], ab[1]
					a, b := h.vals(M*K, -1, 1), h.vals(K*N, -1, 1)
					c0 := h.vals(M*N, -1, 1)
					ct := h.out(M * N) // NaN: beta = 0 must overwrite it
					if beta != 0 {
						copy(ct.F32(), c0)
					}
					h.c.Gemm(ct, h.in(a), h.in(b), ta, tb, M, N, K, alpha, beta)
					want := gemm64(to64(a), to64(b), to64(c0), ta, tb, M, N, K, float64(alpha), float64(beta))
					name := fmt.Sprintf("Gemm M%d N%d K%d tA=%v tB=%v alpha=%v beta=%v", M, N, K, ta, tb, alpha, beta)
					// Sums of K float32 products: error grows like sqrt(K).
					checkClose(t, name, to64(ct.F32()), want, 1e-5*math.Sqrt(float64(K)+1), 1e-4)
					h.finish(name)
				}
			}
		}
	}
}

// TestOpSizeZero runs ops with empty dimensions: they must do nothing.
func TestOpSizeZero(t *testing.T) {
	c := NewCPU(2)
	e := NewView(c.Alloc(0), 0, 0)
	ei := NewView(c.AllocInt(0), 0, 0)
	one := NewView(c.Alloc(1), 0, 1)
	c.Gemm(e, e, e, false, true, 0, 5, 0, 1, 0)
	c.Gemm(e, e, e, true, false, 3, 0, 0, 1, 0)
	c.LayerNorm(e, e, e, e, e, e, 0, 0)
	c.LayerNormBackward(e, e, e, e, e, e, e, e, 0, 0)
	c.Attention(e, e, e, 0, 3, 4, 2)
	c.AttentionBackward(e, e, e, e, e, 0, 3, 4, 2)
	c.GELU(e, e)
	c.GELUBackward(e, e, e, true)
	c.Softmax(e, e, nil, 1, 0, 4)
	c.SoftmaxBackward(e, e, e, 1, 0, 4, true)
	c.SumRows(e, e, 5, 0)
	c.NLL(one, e, ei, 0, 3, 1)
	if one.F32()[0] != 0 {
		t.Errorf("NLL over no rows = %v, want 0", one.F32()[0])
	}
	c.ReuseReg(one, e, 0, 0)
	c.SumSquares(one, e)
	if one.F32()[0] != 0 {
		t.Errorf("SumSquares of nothing = %v, want 0", one.F32()[0])
	}
}

// TestOpPanics checks that short tensors and bad dimensions panic with a
// "model: " message.
func TestOpPanics(t *testing.T) {
	c := NewCPU(1)
	short := NewView(c.Alloc(3), 0, 3)
	long := NewView(c.Alloc(100), 0, 100)
	idx := NewView(c.AllocInt(4), 0, 4)
	bad := NewView(c.AllocInt(2), 0, 2)
	bad.I32()[1] = 9
	cases := map[string]func(){
		"Gemm C":        func() { c.Gemm(short, long, long, false, false, 2, 2, 2, 1, 0) },
		"Gemm A":        func() { c.Gemm(long, short, long, false, false, 2, 2, 2, 1, 0) },
		"LayerNorm":     func() { c.LayerNorm(long, long, long, long, short, long, 2, 4) },
		"Attention NH":  func() { c.Attention(long, long, long, 1, 2, 3, 2) },
		"Attention qkv": func() { c.Attention(long, long, short, 1, 2, 4, 2) },
		"GELU":          func() { c.GELU(short, long) },
		"Softmax tau":   func() { c.Softmax(long, long, nil, 0, 2, 2) },
		"Softmax noise": func() { c.Softmax(long, long, short, 1, 2, 2) },
		"OneHot index":  func() { c.OneHot(long, bad, 2, 4) },
		"NLL target":    func() { c.NLL(long, long, bad, 2, 4, 1) },
		"PoolPairs loo": func() { c.PoolPairs(long, long, 2, 1, 3, true) },
		"SliceRows":     func() { c.SliceRows(long, long, 1, 4, 3, 2, 1) },
		"SkipMix skip":  func() { c.SkipMix(long, long, long, long, 2, 2, 3, 3) },
		"SoftmaxMix K":  func() { c.SoftmaxMix(long, long, long, nil, nil, long, long, 1, 2, 5, 2, 0, 3, 0) },
		"SoftmaxMix Db": func() { c.SoftmaxMix(long, long, long, long, nil, long, long, 1, 2, 4, 2, 3, 3, 0) },
		"SoftmaxMix z":  func() { c.SoftmaxMix(long, long, long, nil, nil, long, short, 1, 2, 4, 2, 0, 3, 0) },
		"SoftmaxMixBackward skip": func() {
			c.SoftmaxMixBackward(long, long, long, long, long, long, long, 1, 2, 4, 2, 3, 3, SkipMixAccAll)
		},
		"PairEmbed x":    func() { c.PairEmbed(long, bad, bad, short, long, long, long, 1, 2, 1, 1) },
		"AdamW step":     func() { c.AdamW(short, short, short, short, 1, 0.9, 0.9, 1e-8, 0, 1, 0) },
		"Upload":         func() { c.Upload(short, make([]float32, 2)) },
		"SumRows":        func() { c.SumRows(short, long, 2, 4) },
		"Negative dim":   func() { c.AddRows(long, long, long, -1, 2) },
		"Int as float":   func() { c.GELU(idx, idx) },
		"Copy mismatch":  func() { c.Copy(short, long) },
		"Mul mismatch":   func() { c.Mul(short, long, long) },
		"MulBackward":    func() { c.MulBackward(short, nil, long, long, long) },
		"SeqScore short": func() { c.SeqScore(long, long, short, idx, 2, 2, 3) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				r := recover()
				s, ok := r.(string)
				if !ok || !strings.HasPrefix(s, "model: ") {
					t.Errorf("%s: recovered %v, want a \"model: …\" panic", name, r)
				}
			}()
			f()
		}()
	}
}

// ---------------------------------------------------------------------------
// Workers: bit-identical results and no allocations.

// parallelOps runs every parallel op (forward and backward) on c with inputs
// from a fixed seed and returns all outputs in order.
func parallelOps(c *CPU) [][]float32 {
	rng := rand.New(rand.NewPCG(99, 7))
	vals := func(n int) *Tensor {
		t := NewView(c.Alloc(n), 0, n)
		for i := range t.F32() {
			t.F32()[i] = float32(rng.NormFloat64())
		}
		return t
	}
	zeros := func(n int) *Tensor { return NewView(c.Alloc(n), 0, n) }
	var outs [][]float32
	keep := func(ts ...*Tensor) {
		for _, t := range ts {
			outs = append(outs, append([]float32(nil), t.F32()...))
		}
	}
	type shape struct{ M, N, K int }
	for _, s := range []shape{{517, 131, 37}, {3, 600, 301}, {64, 64, 64}, {1200, 7, 9}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				out := vals(s.M * s.N)
				c.Gemm(out, vals(s.M*s.K), vals(s.K*s.N), ta, tb, s.M, s.N, s.K, 0.9, 0.5)
				keep(out)
			}
		}
	}
	B, S, C, NH := 5, 13, 12, 3
	qkv, att, out := vals(B*S*3*C), zeros(B*NH*S*S), zeros(B*S*C)
	c.Attention(out, att, qkv, B, S, C, NH)
	dqkv := vals(B * S * 3 * C)
	c.AttentionBackward(dqkv, zeros(B*NH*S*S), vals(B*S*C), qkv, att, B, S, C, NH)
	keep(out, att, dqkv)

	N, D := 301, 67
	x, w, b := vals(N*D), vals(D), vals(D)
	ln, mean, rstd := zeros(N*D), zeros(N), zeros(N)
	c.LayerNorm(ln, mean, rstd, x, w, b, N, D)
	dx, dw, db := vals(N*D), vals(D), vals(D)
	c.LayerNormBackward(dx, dw, db, vals(N*D), x, w, mean, rstd, N, D)
	keep(ln, mean, rstd, dx, dw, db)

	p := zeros(N * D)
	c.Softmax(p, x, vals(N*D), 0.7, N, D)
	dl := vals(N * D)
	c.SoftmaxBackward(dl, vals(N*D), p, 0.7, N, D, true)
	keep(p, dl)

	g := zeros(N * D)
	c.GELU(g, x)
	dg := vals(N * D)
	c.GELUBackward(dg, vals(N*D), x, true)
	keep(g, dg)

	bg, bias := zeros(N*D), vals(N*D/4)
	c.BiasGELU(bg, x, bias, N/4, 4, D)
	dbx, dbb := vals(N*D), vals(N*D/4)
	c.BiasGELUBackward(dbx, dbb, vals(N*D), x, bias, N/4, 4, D, true)
	keep(bg, dbx, dbb)

	ss := zeros(1)
	c.SumSquares(ss, vals(100003))
	keep(ss)
	return outs
}

func TestCPUWorkersBitIdentical(t *testing.T) {
	want := parallelOps(NewCPU(1))
	for _, w := range []int{2, 3} {
		got := parallelOps(NewCPU(w))
		for k := range want {
			for i := range want[k] {
				if math.Float32bits(got[k][i]) != math.Float32bits(want[k][i]) {
					t.Errorf("workers=%d: output %d differs at %d: %v, 1 worker %v", w, k, i, got[k][i], want[k][i])
					break
				}
			}
		}
	}
}

func TestCPUWorkers(t *testing.T) {
	if got := NewCPU(3).Workers(); got != 3 {
		t.Errorf("NewCPU(3).Workers() = %d", got)
	}
	if got := NewCPU(0).Workers(); got < 1 {
		t.Errorf("NewCPU(0).Workers() = %d", got)
	}
	if name := NewCPU(1).Name(); name != "cpu" {
		t.Errorf("Name() = %q", name)
	}
}

// TestCPUWorkersStop checks that a CPU's helper goroutines end once the CPU
// is garbage collected, even after it ran parallel ops.
func TestCPUWorkersStop(t *testing.T) {
	runtime.GC()
	before := runtime.NumGoroutine()
	for range 4 {
		c := NewCPU(4)
		x := NewView(c.Alloc(64*64), 0, 64*64)
		c.Gemm(x, x, x, false, true, 64, 64, 64, 1, 0)
		c.GELU(x, x)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before creating 4 CPUs of 4 workers", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCPUAllocs(t *testing.T) {
	for _, workers := range []int{1, 2} {
		c := NewCPU(workers)
		mk := func(n int) *Tensor {
			t := NewView(c.Alloc(n), 0, n)
			for i := range t.F32() {
				t.F32()[i] = float32(i%13)*0.1 - 0.6
			}
			return t
		}
		const M, N, K = 96, 80, 72
		a, b, out, wide := mk(M*K), mk(K*N), mk(M*N), mk(K*400)
		B, S, C, NH := 4, 11, 16, 2
		qkv, att, ao, dqkv, scratch := mk(B*S*3*C), mk(B*NH*S*S), mk(B*S*C), mk(B*S*3*C), mk(B*NH*S*S)
		R, D := 200, 64
		x, w, bb, y, mean, rstd := mk(R*D), mk(D), mk(D), mk(R*D), mk(R), mk(R)
		dx, dw, db, dy := mk(R*D), mk(D), mk(D), mk(R*D)
		noise := mk(R * D)
		ops := map[string]func(){
			"Gemm NT":           func() { c.Gemm(out, a, b, false, true, M, N, K, 1, 0) },
			"Gemm TN":           func() { c.Gemm(out, a, b, true, false, M, N, K, 1, 1) },
			"Gemm skinny":       func() { c.Gemm(out, a, wide, false, false, 2, 400, K, 1, 0) },
			"Attention":         func() { c.Attention(ao, att, qkv, B, S, C, NH) },
			"AttentionBackward": func() { c.AttentionBackward(dqkv, scratch, ao, qkv, att, B, S, C, NH) },
			"LayerNorm":         func() { c.LayerNorm(y, mean, rstd, x, w, bb, R, D) },
			"LayerNormBackward": func() { c.LayerNormBackward(dx, dw, db, dy, x, w, mean, rstd, R, D) },
			"Softmax":           func() { c.Softmax(y, x, noise, 0.5, R, D) },
			"SoftmaxBackward":   func() { c.SoftmaxBackward(dx, dy, y, 0.5, R, D, true) },
			"GELU":              func() { c.GELU(y, x) },
			"GELUBackward":      func() { c.GELUBackward(dx, dy, x, true) },
			"BiasGELU":          func() { c.BiasGELU(y, x, w, 1, R, D) },
			"BiasGELUBackward":  func() { c.BiasGELUBackward(dx, dw, dy, x, w, 1, R, D, true) },
			"SumSquares":        func() { c.SumSquares(mean, x) },
		}
		for name, f := range ops {
			if n := testing.AllocsPerRun(20, f); n != 0 {
				t.Errorf("workers=%d: %s allocates %v times per call", workers, name, n)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Benchmarks.

// naiveGemm is the textbook triple loop (NN, with the row of B innermost),
// the baseline the blocked kernel is measured against.
func naiveGemm(c, a, b []float32, transA, transB bool, M, N, K int) {
	for i := range M {
		row := c[i*N : (i+1)*N]
		clear(row)
		for k := range K {
			av := a[i*K+k]
			if transA {
				av = a[k*M+i]
			}
			for j := range row {
				if transB {
					row[j] += av * b[j*K+k]
				} else {
					row[j] += av * b[k*N+j]
				}
			}
		}
	}
}

func BenchmarkGemm(b *testing.B) {
	type size struct {
		M, N, K        int
		transA, transB bool
		name           string
	}
	sizes := []size{
		{512, 512, 512, false, true, "512x512x512_NT"},
		{512, 512, 512, false, false, "512x512x512_NN"},
		{512, 512, 512, true, false, "512x512x512_TN"},
		{6656, 384, 128, false, true, "6656x384x128_NT"},
	}
	for _, s := range sizes {
		flops := 2 * float64(s.M) * float64(s.N) * float64(s.K)
		rng := rand.New(rand.NewPCG(1, 2))
		a, bb, cc := make([]float32, s.M*s.K), make([]float32, s.K*s.N), make([]float32, s.M*s.N)
		for i := range a {
			a[i] = rng.Float32()
		}
		for i := range bb {
			bb[i] = rng.Float32()
		}
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", s.name, workers), func(b *testing.B) {
				c := NewCPU(workers)
				at := NewView(&Memory{F32: a, Len: len(a)}, 0, len(a))
				bt := NewView(&Memory{F32: bb, Len: len(bb)}, 0, len(bb))
				ct := NewView(&Memory{F32: cc, Len: len(cc)}, 0, len(cc))
				b.ResetTimer()
				for range b.N {
					c.Gemm(ct, at, bt, s.transA, s.transB, s.M, s.N, s.K, 1, 0)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		b.Run(s.name+"/naive", func(b *testing.B) {
			for range b.N {
				naiveGemm(cc, a, bb, s.transA, s.transB, s.M, s.N, s.K)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestGumbelFinite is the regression test for noise of +Inf: the largest
// counter value once rounded to u = 1 in float32.
func TestGumbelFinite(t *testing.T) {
	// The largest counter value must give finite noise.
	u := (float64(1<<24-1) + 0.5) / (1 << 24)
	if g := float32(-math.Log(-math.Log(u))); !(u < 1) || math.IsInf(float64(g), 0) {
		t.Fatalf("largest u = %v gives noise %v", u, g)
	}
	b := NewCPU(1)
	g := NewView(b.Alloc(1<<20), 0, 1<<20)
	for seed := uint64(0); seed < 4; seed++ {
		b.Gumbel(g, seed)
		for i, v := range g.F32() {
			if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
				t.Fatalf("seed %d: noise[%d] = %v", seed, i, v)
			}
		}
	}
}
