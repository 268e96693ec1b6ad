// Package modeltest holds the conformance suite every model.Backend must
// pass: each op of the closed list runs on the backend under test and on the
// reference CPU backend with identical inputs, and the results must agree.
package modeltest

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/nli-go/nli/model"
)

// Default tolerances, |got−want| ≤ atol + rtol·|want|. A case that needs a
// looser one says why on the line where it sets it.
const (
	fwdAtol, fwdRtol   = 1e-5, 1e-4 // forward values
	gradAtol, gradRtol = 1e-4, 1e-3 // gradients
)

// guard is the number of NaN elements on each side of every view the suite
// hands to an op; they must still be NaN afterwards.
const guard = 7

// Conformance runs every op of the Backend interface on b and on
// model.NewCPU(1) with identical random inputs (fixed-seed PCG; odd sizes,
// size 1, and size 0 where the op allows it) and compares forward outputs
// and gradients. Inputs are uploaded with b.Upload and results read back with
// b.Download. Every view sits inside a NaN guard region that must survive,
// inputs must come back unchanged, and the first mismatch is reported with
// its index, got and want. Each method is a subtest named after it.
func Conformance(t *testing.T, b model.Backend) {
	ref := model.NewCPU(1)
	covered := map[string]bool{}
	for _, c := range cases() {
		covered[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, b, ref, c.name)
			c.run(h)
			h.finish()
		})
	}
	iface := reflect.TypeFor[model.Backend]()
	for i := range iface.NumMethod() {
		if name := iface.Method(i).Name; !covered[name] {
			t.Errorf("conformance: no case for Backend.%s", name)
		}
	}
}

// ---------------------------------------------------------------------------
// Harness.

// side selects the backend under test (0) or the reference (1).
type side int

const (
	test side = iota
	reference
)

// pair is one tensor present on both backends, each a view of n elements at
// offset g in memory of n+2·g elements (g = guard unless the harness's
// aligned mode, for vectorised device paths, set it to 8).
type pair struct {
	name  string
	g     int
	mem   [2]*model.Memory
	view  [2]*model.Tensor
	n     int
	isInt bool
	init  []float32 // values before the op (inputs: must stay so)
	initI []int32
	input bool
}

// on returns the view on side s; a nil pair gives a nil tensor.
func (p *pair) on(s side) *model.Tensor {
	if p == nil {
		return nil
	}
	return p.view[s]
}

type harness struct {
	t     *testing.T
	be    [2]model.Backend
	rng   *rand.Rand
	pairs []*pair
	// aligned: new pairs get 8 guard elements, so that their views start
	// 32 bytes into an allocation (16-byte aligned where allocations are):
	// the device may take its vectorised path, which guard = 7 never does.
	aligned bool
}

func newHarness(t *testing.T, b, ref model.Backend, name string) *harness {
	f := fnv.New64a()
	f.Write([]byte(name))
	return &harness{t: t, be: [2]model.Backend{b, ref}, rng: rand.New(rand.NewPCG(f.Sum64(), 2024))}
}

// vals returns n uniform values in [lo, hi).
func (h *harness) vals(n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*h.rng.Float64())
	}
	return v
}

// ints returns n uniform values in [0, k).
func (h *harness) ints(n, k int) []int32 {
	v := make([]int32, n)
	for i := range v {
		v[i] = int32(h.rng.IntN(k))
	}
	return v
}

// newPair allocates name on both backends with middle values mid (nil: NaN).
func (h *harness) newPair(name string, n int, mid []float32) *pair {
	p := &pair{name: name, n: n, init: mid, g: guard}
	if h.aligned {
		p.g = 8
	}
	g := p.g
	host := make([]float32, n+2*g)
	for i := range host {
		host[i] = float32(math.NaN())
	}
	copy(host[g:], mid)
	for s, be := range h.be {
		p.mem[s] = be.Alloc(n + 2*g)
		be.Upload(model.NewView(p.mem[s], 0, n+2*g), host)
		p.view[s] = model.NewView(p.mem[s], g, n)
	}
	h.pairs = append(h.pairs, p)
	return p
}

// input is a float input holding v; it must come back unchanged.
func (h *harness) input(name string, v []float32) *pair {
	p := h.newPair(name, len(v), v)
	p.input = true
	return p
}

// output is a forward output of n elements, NaN before the op.
func (h *harness) output(name string, n int) *pair { return h.newPair(name, n, nil) }

// grad is an accumulating output holding v before the op.
func (h *harness) grad(name string, v []float32) *pair { return h.newPair(name, len(v), v) }

// intInput is an int32 input holding v (no guard region); it must come back
// unchanged.
func (h *harness) intInput(name string, v []int32) *pair {
	p := &pair{name: name, n: len(v), isInt: true, initI: v, input: true}
	for s, be := range h.be {
		p.mem[s] = be.AllocInt(len(v))
		p.view[s] = model.NewView(p.mem[s], 0, len(v))
		be.UploadInt(p.view[s], v)
	}
	h.pairs = append(h.pairs, p)
	return p
}

// both runs op on the backend under test, then on the reference.
func (h *harness) both(op func(be model.Backend, s side)) {
	op(h.be[test], test)
	op(h.be[reference], reference)
}

// download reads the whole memory of p on side s, guards included.
func (h *harness) download(p *pair, s side) []float32 {
	full := make([]float32, p.n+2*p.g)
	h.be[s].Download(full, model.NewView(p.mem[s], 0, p.n+2*p.g))
	return full
}

// check compares p on the backend under test with the reference.
func (h *harness) check(p *pair, atol, rtol float64) {
	h.t.Helper()
	got := h.download(p, test)[p.g : p.g+p.n]
	want := h.download(p, reference)[p.g : p.g+p.n]
	for i := range want {
		if !closeTo(float64(got[i]), float64(want[i]), atol, rtol) {
			h.t.Errorf("%s: first mismatch at %d: got %.9g, want %.9g (atol %g, rtol %g)", p.name, i, got[i], want[i], atol, rtol)
			return
		}
	}
}

// checkFwd and checkGrad compare with the default tolerances.
func (h *harness) checkFwd(ps ...*pair) {
	h.t.Helper()
	for _, p := range ps {
		h.check(p, fwdAtol, fwdRtol)
	}
}

func (h *harness) checkGrad(ps ...*pair) {
	h.t.Helper()
	for _, p := range ps {
		h.check(p, gradAtol, gradRtol)
	}
}

// closeTo reports |got−want| ≤ atol + rtol·|want|; NaN matches only NaN and
// an infinity only itself.
func closeTo(got, want, atol, rtol float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	if math.IsInf(want, 0) || math.IsInf(got, 0) {
		return got == want
	}
	return math.Abs(got-want) <= atol+rtol*math.Abs(want)
}

// finish checks, on the backend under test, that every guard is still NaN
// and every input unchanged, and that the backend reports no error.
func (h *harness) finish() {
	h.t.Helper()
	for _, p := range h.pairs {
		if p.isInt {
			got := make([]int32, p.n)
			h.be[test].DownloadInt(got, p.view[test])
			for i := range got {
				if got[i] != p.initI[i] {
					h.t.Errorf("%s: int input changed at %d: got %d, want %d", p.name, i, got[i], p.initI[i])
					break
				}
			}
			continue
		}
		full := h.download(p, test)
		for i, v := range full {
			if (i < p.g || i >= p.g+p.n) && !math.IsNaN(float64(v)) {
				h.t.Errorf("%s: guard element %d (view [%d,%d)) overwritten with %v", p.name, i, p.g, p.g+p.n, v)
				break
			}
		}
		if p.input {
			for i, v := range full[p.g : p.g+p.n] {
				if math.Float32bits(v) != math.Float32bits(p.init[i]) {
					h.t.Errorf("%s: input changed at %d: got %v, want %v", p.name, i, v, p.init[i])
					break
				}
			}
		}
	}
	if err := h.be[test].Sync(); err != nil {
		h.t.Errorf("Sync: %v", err)
	}
	if err := h.be[test].Err(); err != nil {
		h.t.Errorf("Err: %v", err)
	}
	for _, p := range h.pairs {
		for s, be := range h.be {
			be.Free(p.mem[s])
		}
	}
	h.pairs = nil
}

// refSaved runs a forward on the reference only and returns the values of
// p, so that a backward case can feed both backends identical saved values.
func (h *harness) refSaved(p *pair, op func(be model.Backend, s side)) []float32 {
	op(h.be[reference], reference)
	return h.download(p, reference)[p.g : p.g+p.n]
}

// ---------------------------------------------------------------------------
// Cases, one per method of model.Backend.

type opCase struct {
	name string
	run  func(h *harness)
}

func cases() []opCase {
	return []opCase{
		{"Name", caseName},
		{"Alloc", caseAlloc},
		{"AllocInt", caseAllocInt},
		{"Free", caseFree},
		{"Upload", caseUpload},
		{"UploadInt", caseUploadInt},
		{"Download", caseUpload},
		{"DownloadInt", caseUploadInt},
		{"Sync", caseSync},
		{"Err", caseSync},
		{"Zero", caseZero},
		{"Copy", caseCopy},
		{"Axpy", caseAxpy},
		{"Scale", caseScale},
		{"Add", caseAdd},
		{"Mul", caseMul},
		{"MulBackward", caseMulBackward},
		{"AddRows", caseAddRows},
		{"SumRows", caseSumRows},
		{"Gemm", caseGemm},
		{"PairEmbed", casePairEmbed},
		{"PairEmbedBackward", casePairEmbedBackward},
		{"LayerNorm", caseLayerNorm},
		{"LayerNormBackward", caseLayerNormBackward},
		{"Attention", caseAttention},
		{"AttentionBackward", caseAttentionBackward},
		{"GELU", caseGELU},
		{"GELUBackward", caseGELUBackward},
		{"BiasGELU", caseBiasGELU},
		{"BiasGELUBackward", caseBiasGELUBackward},
		{"SliceRows", caseSliceRows},
		{"SliceRowsBackward", caseSliceRowsBackward},
		{"PoolPairs", casePoolPairs},
		{"PoolPairsBackward", casePoolPairsBackward},
		{"RepeatRows", caseRepeatRows},
		{"RepeatRowsBackward", caseRepeatRowsBackward},
		{"Transpose01", caseTranspose01},
		{"Gumbel", caseGumbel},
		{"Softmax", caseSoftmax},
		{"SoftmaxBackward", caseSoftmaxBackward},
		{"OneHot", caseOneHot},
		{"ArgmaxOneHot", caseArgmaxOneHot},
		{"SkipMix", caseSkipMix},
		{"SkipMixBackward", caseSkipMixBackward},
		{"SoftmaxMix", caseSoftmaxMix},
		{"SoftmaxMixBackward", caseSoftmaxMixBackward},
		{"NLL", caseNLL},
		{"NLLBackward", caseNLLBackward},
		{"SeqScore", caseSeqScore},
		{"ReuseReg", caseReuseReg},
		{"ReuseRegBackward", caseReuseRegBackward},
		{"SumSquares", caseSumSquares},
		{"AdamW", caseAdamW},
	}
}

func caseName(h *harness) {
	if h.be[test].Name() == "" {
		h.t.Error("Name is empty")
	}
}

func caseAlloc(h *harness) {
	for _, n := range []int{0, 1, 7, 1000} {
		m := h.be[test].Alloc(n)
		if m.Len != n || m.Int {
			h.t.Errorf("Alloc(%d): Len %d, Int %v", n, m.Len, m.Int)
			continue
		}
		got := make([]float32, n)
		for i := range got {
			got[i] = 1
		}
		h.be[test].Download(got, model.NewView(m, 0, n))
		for i, v := range got {
			if v != 0 {
				h.t.Errorf("Alloc(%d): element %d = %v, want 0", n, i, v)
				break
			}
		}
		h.be[test].Free(m)
	}
}

func caseAllocInt(h *harness) {
	for _, n := range []int{0, 1, 7, 1000} {
		m := h.be[test].AllocInt(n)
		if m.Len != n || !m.Int {
			h.t.Errorf("AllocInt(%d): Len %d, Int %v", n, m.Len, m.Int)
			continue
		}
		got := make([]int32, n)
		for i := range got {
			got[i] = 1
		}
		h.be[test].DownloadInt(got, model.NewView(m, 0, n))
		for i, v := range got {
			if v != 0 {
				h.t.Errorf("AllocInt(%d): element %d = %v, want 0", n, i, v)
				break
			}
		}
		h.be[test].Free(m)
	}
}

func caseFree(h *harness) {
	b := h.be[test]
	for _, n := range []int{0, 1, 100} {
		m := b.Alloc(n)
		b.Zero(model.NewView(m, 0, n))
		b.Free(m)
		b.Free(b.AllocInt(n))
	}
}

// caseUpload round-trips float values through a guarded view.
func caseUpload(h *harness) {
	for _, n := range []int{0, 1, 13} {
		v := h.vals(n, -10, 10)
		p := h.output(fmt.Sprintf("n%d", n), n)
		h.be[test].Upload(p.on(test), v)
		got := make([]float32, n)
		h.be[test].Download(got, p.on(test))
		for i := range v {
			if math.Float32bits(got[i]) != math.Float32bits(v[i]) {
				h.t.Errorf("n%d: round trip at %d: got %v, want %v", n, i, got[i], v[i])
				break
			}
		}
	}
}

// caseUploadInt round-trips int values through a view in the middle.
func caseUploadInt(h *harness) {
	b := h.be[test]
	for _, n := range []int{0, 1, 13} {
		v := h.ints(n, 1000)
		m := b.AllocInt(n + 2)
		mid := model.NewView(m, 1, n)
		b.UploadInt(mid, v)
		got := make([]int32, n+2)
		b.DownloadInt(got, model.NewView(m, 0, n+2))
		if got[0] != 0 || got[n+1] != 0 {
			h.t.Errorf("n%d: UploadInt wrote outside its view: %v", n, got)
		}
		for i := range v {
			if got[1+i] != v[i] {
				h.t.Errorf("n%d: round trip at %d: got %v, want %v", n, i, got[1+i], v[i])
				break
			}
		}
		b.Free(m)
	}
}

func caseSync(h *harness) {
	p := h.input("x", h.vals(100, -1, 1))
	y := h.grad("y", h.vals(100, -1, 1))
	h.both(func(be model.Backend, s side) { be.Axpy(y.on(s), 2, p.on(s)) })
	if err := h.be[test].Sync(); err != nil {
		h.t.Errorf("Sync after ops: %v", err)
	}
	if err := h.be[test].Err(); err != nil {
		h.t.Errorf("Err after ops: %v", err)
	}
	h.checkFwd(y)
}

func caseZero(h *harness) {
	for _, n := range []int{0, 1, 1001} {
		p := h.grad(fmt.Sprintf("n%d", n), h.vals(n, -1, 1))
		h.both(func(be model.Backend, s side) { be.Zero(p.on(s)) })
		h.checkFwd(p)
	}
}

func caseCopy(h *harness) {
	for _, n := range []int{0, 1, 1001} {
		src := h.input(fmt.Sprintf("src n%d", n), h.vals(n, -1, 1))
		dst := h.output(fmt.Sprintf("dst n%d", n), n)
		h.both(func(be model.Backend, s side) { be.Copy(dst.on(s), src.on(s)) })
		h.check(dst, 0, 0)
	}
}

func caseAxpy(h *harness) {
	for _, n := range []int{0, 1, 1001} {
		x := h.input(fmt.Sprintf("x n%d", n), h.vals(n, -1, 1))
		y := h.grad(fmt.Sprintf("y n%d", n), h.vals(n, -1, 1))
		h.both(func(be model.Backend, s side) { be.Axpy(y.on(s), -0.37, x.on(s)) })
		h.checkFwd(y)
	}
}

func caseScale(h *harness) {
	for _, n := range []int{0, 1, 1001} {
		p := h.grad(fmt.Sprintf("n%d", n), h.vals(n, -1, 1))
		h.both(func(be model.Backend, s side) { be.Scale(p.on(s), 1.7) })
		h.checkFwd(p)
	}
}

func caseAdd(h *harness) {
	for _, n := range []int{0, 1, 1001} {
		a := h.input(fmt.Sprintf("a n%d", n), h.vals(n, -1, 1))
		b := h.input(fmt.Sprintf("b n%d", n), h.vals(n, -1, 1))
		out := h.output(fmt.Sprintf("out n%d", n), n)
		h.both(func(be model.Backend, s side) { be.Add(out.on(s), a.on(s), b.on(s)) })
		h.checkFwd(out)
		// out may alias a or b.
		acc := h.grad(fmt.Sprintf("in place n%d", n), h.vals(n, -1, 1))
		h.both(func(be model.Backend, s side) {
			be.Add(acc.on(s), acc.on(s), b.on(s))
			be.Add(acc.on(s), a.on(s), acc.on(s))
		})
		h.checkFwd(acc)
	}
}

func caseMul(h *harness) {
	for _, n := range []int{0, 1, 1001} {
		a := h.input(fmt.Sprintf("a n%d", n), h.vals(n, -2, 2))
		b := h.input(fmt.Sprintf("b n%d", n), h.vals(n, -2, 2))
		out := h.output(fmt.Sprintf("out n%d", n), n)
		h.both(func(be model.Backend, s side) { be.Mul(out.on(s), a.on(s), b.on(s)) })
		h.checkFwd(out)
	}
}

func caseMulBackward(h *harness) {
	for k, n := range []int{0, 1, 1001, 257} {
		name := fmt.Sprintf("n%d", n)
		a := h.input("a "+name, h.vals(n, -2, 2))
		b := h.input("b "+name, h.vals(n, -2, 2))
		dout := h.input("dout "+name, h.vals(n, -1, 1))
		da := h.grad("da "+name, h.vals(n, -1, 1))
		db := h.grad("db "+name, h.vals(n, -1, 1))
		if k == 3 {
			da = nil // nil gradients are skipped
		}
		h.both(func(be model.Backend, s side) { be.MulBackward(da.on(s), db.on(s), dout.on(s), a.on(s), b.on(s)) })
		for _, p := range []*pair{da, db} {
			if p != nil {
				h.checkGrad(p)
			}
		}
	}
}

func caseAddRows(h *harness) {
	for _, d := range [][2]int{{3, 5}, {1, 1}, {0, 4}, {200, 33}} {
		N, C := d[0], d[1]
		name := fmt.Sprintf("N%d C%d", N, C)
		inp := h.input("inp "+name, h.vals(N*C, -1, 1))
		row := h.input("row "+name, h.vals(C, -1, 1))
		out := h.output("out "+name, N*C)
		h.both(func(be model.Backend, s side) { be.AddRows(out.on(s), inp.on(s), row.on(s), N, C) })
		h.checkFwd(out)
		acc := h.grad("in place "+name, h.vals(N*C, -1, 1)) // out may alias inp
		h.both(func(be model.Backend, s side) { be.AddRows(acc.on(s), acc.on(s), row.on(s), N, C) })
		h.checkFwd(acc)
	}
}

func caseSumRows(h *harness) {
	for _, d := range [][2]int{{3, 5}, {1, 1}, {0, 4}, {2000, 33}} {
		N, C := d[0], d[1]
		name := fmt.Sprintf("N%d C%d", N, C)
		dout := h.input("dout "+name, h.vals(N*C, -1, 1))
		drow := h.grad("drow "+name, h.vals(C, -1, 1))
		h.both(func(be model.Backend, s side) { be.SumRows(drow.on(s), dout.on(s), N, C) })
		h.checkGrad(drow)
	}
}

func caseGemm(h *harness) {
	type shape struct{ M, N, K int }
	for _, d := range []shape{{3, 5, 7}, {1, 1, 1}, {0, 4, 3}, {4, 0, 3}, {5, 4, 0}, {1, 300, 17}, {130, 65, 33}, {37, 131, 300}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-1.5, 0.25}} {
					M, N, K, alpha, beta := d.M, d.N, d.K, ab[0], ab[1]
					name := fmt.Sprintf("M%d N%d K%d tA=%v tB=%v alpha=%v beta=%v", M, N, K, ta, tb, alpha, beta)
					a := h.input("A "+name, h.vals(M*K, -1, 1))
					b := h.input("B "+name, h.vals(K*N, -1, 1))
					c := h.output("C "+name, M*N) // NaN: beta = 0 must overwrite it
					if beta != 0 {
						c = h.grad("C "+name, h.vals(M*N, -1, 1))
					}
					h.both(func(be model.Backend, s side) {
						be.Gemm(c.on(s), a.on(s), b.on(s), ta, tb, M, N, K, alpha, beta)
					})
					// A sum of K float32 products: rounding grows like sqrt(K).
					h.check(c, fwdAtol*math.Sqrt(float64(K)+1), fwdRtol)
				}
			}
		}
	}
}

// pairEmbedShapes are (N, L, T, C); V = 6 values.
var pairEmbedShapes = [][4]int{{3, 4, 2, 5}, {1, 1, 1, 1}, {0, 2, 1, 3}, {2, 3, 0, 4}, {64, 20, 12, 16}}

func casePairEmbed(h *harness) {
	const V = 6
	for _, d := range pairEmbedShapes {
		N, L, T, C := d[0], d[1], d[2], d[3]
		name := fmt.Sprintf("N%d L%d T%d C%d", N, L, T, C)
		x := h.intInput("x "+name, h.ints(N*L, V))
		y := h.intInput("y "+name, h.ints(N*L, V))
		val := h.input("val "+name, h.vals(V*C, -1, 1))
		pos := h.input("pos "+name, h.vals(L*C, -1, 1))
		chn := h.input("chn "+name, h.vals(3*C, -1, 1))
		slot := h.input("slot "+name, h.vals(T*C, -1, 1))
		out := h.output("out "+name, N*(2*L+T)*C)
		h.both(func(be model.Backend, s side) {
			be.PairEmbed(out.on(s), x.on(s), y.on(s), val.on(s), pos.on(s), chn.on(s), slot.on(s), N, L, T, C)
		})
		h.checkFwd(out)
	}
}

func casePairEmbedBackward(h *harness) {
	const V = 6
	for k, d := range pairEmbedShapes {
		N, L, T, C := d[0], d[1], d[2], d[3]
		name := fmt.Sprintf("N%d L%d T%d C%d", N, L, T, C)
		x := h.intInput("x "+name, h.ints(N*L, V))
		y := h.intInput("y "+name, h.ints(N*L, V))
		dout := h.input("dout "+name, h.vals(N*(2*L+T)*C, -1, 1))
		dval := h.grad("dval "+name, h.vals(V*C, -1, 1))
		dpos := h.grad("dpos "+name, h.vals(L*C, -1, 1))
		dchn := h.grad("dchn "+name, h.vals(3*C, -1, 1))
		dslot := h.grad("dslot "+name, h.vals(T*C, -1, 1))
		if k == 1 { // nil gradients are skipped
			dval, dslot = nil, nil
		}
		h.both(func(be model.Backend, s side) {
			be.PairEmbedBackward(dval.on(s), dpos.on(s), dchn.on(s), dslot.on(s), dout.on(s), x.on(s), y.on(s), N, L, T, C)
		})
		for _, p := range []*pair{dval, dpos, dchn, dslot} {
			if p != nil {
				h.checkGrad(p)
			}
		}
	}
}

var layerNormShapes = [][2]int{{3, 5}, {1, 1}, {0, 4}, {1, 7}, {70, 33}, {300, 128}}

func caseLayerNorm(h *harness) {
	for _, d := range layerNormShapes {
		N, C := d[0], d[1]
		name := fmt.Sprintf("N%d C%d", N, C)
		inp := h.input("inp "+name, h.vals(N*C, -2, 3))
		w := h.input("w "+name, h.vals(C, 0.5, 1.5))
		b := h.input("b "+name, h.vals(C, -1, 1))
		out, mean, rstd := h.output("out "+name, N*C), h.output("mean "+name, N), h.output("rstd "+name, N)
		h.both(func(be model.Backend, s side) {
			be.LayerNorm(out.on(s), mean.on(s), rstd.on(s), inp.on(s), w.on(s), b.on(s), N, C)
		})
		h.checkFwd(out, mean)
		// rstd = 1/sqrt(var+1e-5) reaches 316 (C = 1); relative error is what counts.
		h.check(rstd, fwdAtol, 2*fwdRtol)
	}
}

func caseLayerNormBackward(h *harness) {
	for k, d := range layerNormShapes {
		N, C := d[0], d[1]
		name := fmt.Sprintf("N%d C%d", N, C)
		inpV, wV := h.vals(N*C, -2, 3), h.vals(C, 0.5, 1.5)
		inp, w := h.input("inp "+name, inpV), h.input("w "+name, wV)
		// Identical saved mean and rstd on both sides, from the reference.
		tmpOut, tmpMean, tmpRstd := h.output("tmp out "+name, N*C), h.output("tmp mean "+name, N), h.output("tmp rstd "+name, N)
		b := h.input("b "+name, make([]float32, C))
		fwd := func(be model.Backend, s side) {
			be.LayerNorm(tmpOut.on(s), tmpMean.on(s), tmpRstd.on(s), inp.on(s), w.on(s), b.on(s), N, C)
		}
		mean := h.input("mean "+name, h.refSaved(tmpMean, fwd))
		rstd := h.input("rstd "+name, h.download(tmpRstd, reference)[guard:guard+N])

		dout := h.input("dout "+name, h.vals(N*C, -1, 1))
		dinp := h.grad("dinp "+name, h.vals(N*C, -1, 1))
		dw := h.grad("dw "+name, h.vals(C, -1, 1))
		db := h.grad("db "+name, h.vals(C, -1, 1))
		if k == 1 {
			dw = nil // nil gradients are skipped
		}
		if k == 3 {
			dinp = nil
		}
		h.both(func(be model.Backend, s side) {
			be.LayerNormBackward(dinp.on(s), dw.on(s), db.on(s), dout.on(s), inp.on(s), w.on(s), mean.on(s), rstd.on(s), N, C)
		})
		for _, p := range []*pair{dinp, dw, db} {
			if p != nil {
				// dinp is a difference of O(1) terms scaled by rstd (up to 316 when C = 1).
				h.check(p, gradAtol*10, gradRtol)
			}
		}
	}
}

var attentionShapes = [][4]int{{2, 3, 6, 2}, {1, 1, 1, 1}, {0, 3, 4, 2}, {3, 13, 12, 3}, {4, 52, 32, 4}}

func caseAttention(h *harness) {
	for _, d := range attentionShapes {
		B, S, C, NH := d[0], d[1], d[2], d[3]
		name := fmt.Sprintf("B%d S%d C%d NH%d", B, S, C, NH)
		qkv := h.input("qkv "+name, h.vals(B*S*3*C, -2, 2))
		out, att := h.output("out "+name, B*S*C), h.output("att "+name, B*NH*S*S)
		h.both(func(be model.Backend, s side) { be.Attention(out.on(s), att.on(s), qkv.on(s), B, S, C, NH) })
		h.checkFwd(out, att)
	}
}

func caseAttentionBackward(h *harness) {
	for _, d := range attentionShapes {
		B, S, C, NH := d[0], d[1], d[2], d[3]
		name := fmt.Sprintf("B%d S%d C%d NH%d", B, S, C, NH)
		qkv := h.input("qkv "+name, h.vals(B*S*3*C, -2, 2))
		tmpOut, tmpAtt := h.output("tmp out "+name, B*S*C), h.output("tmp att "+name, B*NH*S*S)
		fwd := func(be model.Backend, s side) { be.Attention(tmpOut.on(s), tmpAtt.on(s), qkv.on(s), B, S, C, NH) }
		att := h.input("att "+name, h.refSaved(tmpAtt, fwd))

		dout := h.input("dout "+name, h.vals(B*S*C, -1, 1))
		dqkv := h.grad("dqkv "+name, h.vals(B*S*3*C, -1, 1))
		scratch := h.output("scratch "+name, B*NH*S*S) // overwritten, contents unspecified
		h.both(func(be model.Backend, s side) {
			be.AttentionBackward(dqkv.on(s), scratch.on(s), dout.on(s), qkv.on(s), att.on(s), B, S, C, NH)
		})
		h.checkGrad(dqkv)
	}
}

func caseGELU(h *harness) {
	for _, n := range []int{0, 1, 7, 5000} {
		inp := h.input(fmt.Sprintf("inp n%d", n), h.vals(n, -6, 6))
		out := h.output(fmt.Sprintf("out n%d", n), n)
		h.both(func(be model.Backend, s side) { be.GELU(out.on(s), inp.on(s)) })
		h.checkFwd(out)
	}
}

func caseGELUBackward(h *harness) {
	for _, n := range []int{0, 1, 7, 5000} {
		inp := h.input(fmt.Sprintf("inp n%d", n), h.vals(n, -6, 6))
		dout := h.input(fmt.Sprintf("dout n%d", n), h.vals(n, -1, 1))
		dinp := h.grad(fmt.Sprintf("dinp n%d", n), h.vals(n, -1, 1))
		h.both(func(be model.Backend, s side) { be.GELUBackward(dinp.on(s), dout.on(s), inp.on(s), true) })
		h.checkGrad(dinp)
		// acc false: overwrites (dinp starts as NaN)
		over := h.output(fmt.Sprintf("dinp (overwritten) n%d", n), n)
		h.both(func(be model.Backend, s side) { be.GELUBackward(over.on(s), dout.on(s), inp.on(s), false) })
		h.checkGrad(over)
	}
}

// biasGELUShapes are (R, m, C): one bias row for many rows (the Linear
// bias), a few rows per bias row (the search's per-start instruction term),
// more rows per bias row than a device may sum in one thread, size 0 and 1.
// Each runs unaligned (guard 7) and aligned (guard 8: a device's
// vectorised path where C is a multiple of 4).
var biasGELUShapes = [][3]int{{1, 1, 1}, {1, 300, 17}, {3, 4, 5}, {128, 4, 96}, {3, 70, 9}, {0, 4, 3}, {2, 0, 3},
	{5, 1, 2}, {1, 300, 64}, {2, 40, 64}, {64, 4, 200}, {7, 3, 4}}

// biasGELUCases calls f for every shape, unaligned and aligned.
func biasGELUCases(h *harness, f func(R, m, C int, name string)) {
	for _, aligned := range []bool{false, true} {
		h.aligned = aligned
		for _, d := range biasGELUShapes {
			f(d[0], d[1], d[2], fmt.Sprintf("R%d m%d C%d aligned=%v", d[0], d[1], d[2], aligned))
		}
	}
	h.aligned = false
}

func caseBiasGELU(h *harness) {
	biasGELUCases(h, func(R, m, C int, name string) {
		inp := h.input("inp "+name, h.vals(R*m*C, -5, 5))
		bias := h.input("bias "+name, h.vals(R*C, -1, 1))
		out := h.output("out "+name, R*m*C)
		h.both(func(be model.Backend, s side) { be.BiasGELU(out.on(s), inp.on(s), bias.on(s), R, m, C) })
		h.checkFwd(out)
	})
}

func caseBiasGELUBackward(h *harness) {
	biasGELUCases(h, func(R, m, C int, name string) {
		inp := h.input("inp "+name, h.vals(R*m*C, -5, 5))
		bias := h.input("bias "+name, h.vals(R*C, -1, 1))
		dout := h.input("dout "+name, h.vals(R*m*C, -1, 1))
		dinp := h.grad("dinp "+name, h.vals(R*m*C, -1, 1))
		dbias := h.grad("dbias "+name, h.vals(R*C, -1, 1))
		h.both(func(be model.Backend, s side) {
			be.BiasGELUBackward(dinp.on(s), dbias.on(s), dout.on(s), inp.on(s), bias.on(s), R, m, C, true)
		})
		h.checkGrad(dinp, dbias)
		// acc false overwrites dinp (NaN before); dbias still accumulates.
		over := h.output("dinp (overwritten) "+name, R*m*C)
		dbias2 := h.grad("dbias (with overwritten dinp) "+name, h.vals(R*C, -1, 1))
		h.both(func(be model.Backend, s side) {
			be.BiasGELUBackward(over.on(s), dbias2.on(s), dout.on(s), inp.on(s), bias.on(s), R, m, C, false)
		})
		h.checkGrad(over, dbias2)
		// Either gradient alone.
		only := h.grad("dinp alone "+name, h.vals(R*m*C, -1, 1))
		h.both(func(be model.Backend, s side) {
			be.BiasGELUBackward(only.on(s), nil, dout.on(s), inp.on(s), bias.on(s), R, m, C, true)
		})
		dbOnly := h.grad("dbias alone "+name, h.vals(R*C, -1, 1))
		h.both(func(be model.Backend, s side) {
			be.BiasGELUBackward(nil, dbOnly.on(s), dout.on(s), inp.on(s), bias.on(s), R, m, C, false)
		})
		h.checkGrad(only, dbOnly)
	})
}

// sliceShapes are (N, S, start, R, C).
var sliceShapes = [][5]int{{3, 7, 2, 4, 5}, {1, 1, 0, 1, 1}, {0, 3, 1, 2, 2}, {2, 5, 5, 0, 3}, {4, 52, 40, 12, 16}}

func caseSliceRows(h *harness) {
	for _, d := range sliceShapes {
		N, S, start, R, C := d[0], d[1], d[2], d[3], d[4]
		name := fmt.Sprintf("N%d S%d start%d R%d C%d", N, S, start, R, C)
		inp := h.input("inp "+name, h.vals(N*S*C, -1, 1))
		out := h.output("out "+name, N*R*C)
		h.both(func(be model.Backend, s side) { be.SliceRows(out.on(s), inp.on(s), N, S, start, R, C) })
		h.check(out, 0, 0)
	}
}

func caseSliceRowsBackward(h *harness) {
	for _, d := range sliceShapes {
		N, S, start, R, C := d[0], d[1], d[2], d[3], d[4]
		name := fmt.Sprintf("N%d S%d start%d R%d C%d", N, S, start, R, C)
		dout := h.input("dout "+name, h.vals(N*R*C, -1, 1))
		dinp := h.grad("dinp "+name, h.vals(N*S*C, -1, 1))
		h.both(func(be model.Backend, s side) { be.SliceRowsBackward(dinp.on(s), dout.on(s), N, S, start, R, C) })
		h.checkGrad(dinp)
	}
}

// poolShapes are (B, m, C); leave-one-out skips m < 2.
var poolShapes = [][3]int{{3, 4, 5}, {1, 2, 1}, {2, 1, 3}, {0, 3, 2}, {128, 4, 128}}

func casePoolPairs(h *harness) {
	for _, loo := range []bool{true, false} {
		for _, d := range poolShapes {
			B, m, C := d[0], d[1], d[2]
			if loo && m < 2 {
				continue
			}
			nout := B * C
			if loo {
				nout = B * m * C
			}
			name := fmt.Sprintf("loo=%v B%d m%d C%d", loo, B, m, C)
			inp := h.input("inp "+name, h.vals(B*m*C, -1, 1))
			out := h.output("out "+name, nout)
			h.both(func(be model.Backend, s side) { be.PoolPairs(out.on(s), inp.on(s), B, m, C, loo) })
			h.checkFwd(out)
		}
	}
}

func casePoolPairsBackward(h *harness) {
	for _, loo := range []bool{true, false} {
		for _, d := range poolShapes {
			B, m, C := d[0], d[1], d[2]
			if loo && m < 2 {
				continue
			}
			nout := B * C
			if loo {
				nout = B * m * C
			}
			name := fmt.Sprintf("loo=%v B%d m%d C%d", loo, B, m, C)
			dout := h.input("dout "+name, h.vals(nout, -1, 1))
			dinp := h.grad("dinp "+name, h.vals(B*m*C, -1, 1))
			h.both(func(be model.Backend, s side) { be.PoolPairsBackward(dinp.on(s), dout.on(s), B, m, C, loo) })
			h.checkGrad(dinp)
		}
	}
}

// repeatShapes are (R, m, C).
var repeatShapes = [][3]int{{3, 4, 5}, {1, 1, 1}, {0, 2, 3}, {2, 3, 1}, {128, 4, 96}}

func caseRepeatRows(h *harness) {
	for _, d := range repeatShapes {
		R, m, C := d[0], d[1], d[2]
		name := fmt.Sprintf("R%d m%d C%d", R, m, C)
		inp := h.input("inp "+name, h.vals(R*C, -1, 1))
		out := h.output("out "+name, R*m*C)
		h.both(func(be model.Backend, s side) { be.RepeatRows(out.on(s), inp.on(s), R, m, C) })
		h.check(out, 0, 0)
	}
}

func caseRepeatRowsBackward(h *harness) {
	for _, d := range repeatShapes {
		R, m, C := d[0], d[1], d[2]
		name := fmt.Sprintf("R%d m%d C%d", R, m, C)
		dout := h.input("dout "+name, h.vals(R*m*C, -1, 1))
		dinp := h.grad("dinp "+name, h.vals(R*C, -1, 1))
		h.both(func(be model.Backend, s side) { be.RepeatRowsBackward(dinp.on(s), dout.on(s), R, m, C) })
		h.checkGrad(dinp)
	}
}

func caseTranspose01(h *harness) {
	for _, d := range [][3]int{{3, 4, 5}, {1, 1, 1}, {0, 3, 2}, {2, 1, 3}, {12, 512, 32}} {
		for _, acc := range []bool{false, true} {
			A, B, C := d[0], d[1], d[2]
			name := fmt.Sprintf("A%d B%d C%d acc=%v", A, B, C, acc)
			inp := h.input("inp "+name, h.vals(A*B*C, -1, 1))
			out := h.output("out "+name, A*B*C)
			if acc {
				out = h.grad("out "+name, h.vals(A*B*C, -1, 1))
			}
			h.both(func(be model.Backend, s side) { be.Transpose01(out.on(s), inp.on(s), A, B, C, acc) })
			h.checkFwd(out)
		}
	}
}

func caseGumbel(h *harness) {
	for _, n := range []int{0, 1, 7, 10000} {
		for _, seed := range []uint64{0, 1, 0xdeadbeefcafe} {
			out := h.output(fmt.Sprintf("n%d seed%d", n, seed), n)
			h.both(func(be model.Backend, s side) { be.Gumbel(out.on(s), seed) })
			h.checkFwd(out)
		}
	}
}

// softmaxShapes are (N, K). The CUDA backend takes rows of K ≤ 32 one thread
// per row in chunks of 128 rows and longer rows one warp per row: K 10 (the
// interpreter's states) over several chunks with a partial last one, K 32
// and 33 at the switch, and K 64 (the program symbols) cover both paths.
var softmaxShapes = [][2]int{{3, 7}, {1, 1}, {0, 5}, {4, 1}, {40, 64}, {30, 200}, {1000, 10}, {300, 32}, {70, 33}}

func caseSoftmax(h *harness) {
	for _, d := range softmaxShapes {
		for _, noisy := range []bool{false, true} {
			for _, tau := range []float32{1, 0.37, 2.5} {
				N, K := d[0], d[1]
				name := fmt.Sprintf("N%d K%d noise=%v tau=%v", N, K, noisy, tau)
				logits := h.input("logits "+name, h.vals(N*K, -4, 4))
				var noise *pair
				if noisy {
					noise = h.input("noise "+name, h.vals(N*K, -2, 5))
				}
				out := h.output("out "+name, N*K)
				h.both(func(be model.Backend, s side) { be.Softmax(out.on(s), logits.on(s), noise.on(s), tau, N, K) })
				h.checkFwd(out)
			}
		}
	}
}

func caseSoftmaxBackward(h *harness) {
	for _, d := range softmaxShapes {
		for _, tau := range []float32{1, 0.37} {
			N, K := d[0], d[1]
			name := fmt.Sprintf("N%d K%d tau=%v", N, K, tau)
			logits := h.input("logits "+name, h.vals(N*K, -4, 4))
			tmp := h.output("tmp "+name, N*K)
			probs := h.refSaved(tmp, func(be model.Backend, s side) { be.Softmax(tmp.on(s), logits.on(s), nil, tau, N, K) })
			out := h.input("out "+name, probs)
			dout := h.input("dout "+name, h.vals(N*K, -1, 1))
			dlogits := h.grad("dlogits "+name, h.vals(N*K, -1, 1))
			h.both(func(be model.Backend, s side) {
				be.SoftmaxBackward(dlogits.on(s), dout.on(s), out.on(s), tau, N, K, true)
			})
			h.checkGrad(dlogits)
			over := h.output("dlogits (overwritten) "+name, N*K)
			h.both(func(be model.Backend, s side) {
				be.SoftmaxBackward(over.on(s), dout.on(s), out.on(s), tau, N, K, false)
			})
			h.checkGrad(over)
		}
	}
}

func caseOneHot(h *harness) {
	for _, d := range [][2]int{{3, 7}, {1, 1}, {0, 5}, {100, 10}} {
		N, K := d[0], d[1]
		name := fmt.Sprintf("N%d K%d", N, K)
		idx := h.intInput("idx "+name, h.ints(N, K))
		out := h.output("out "+name, N*K)
		h.both(func(be model.Backend, s side) { be.OneHot(out.on(s), idx.on(s), N, K) })
		h.check(out, 0, 0)
	}
}

func caseArgmaxOneHot(h *harness) {
	for _, d := range [][2]int{{3, 7}, {1, 1}, {0, 5}, {100, 64}} {
		N, K := d[0], d[1]
		name := fmt.Sprintf("N%d K%d", N, K)
		v := h.vals(N*K, -3, 3)
		if N >= 3 && K >= 4 { // ties: the first maximum wins
			v[K+1], v[K+3] = 9, 9
			for k := range K {
				v[2*K+k] = 1
			}
		}
		logits := h.input("logits "+name, v)
		out := h.output("out "+name, N*K)
		h.both(func(be model.Backend, s side) { be.ArgmaxOneHot(out.on(s), logits.on(s), N, K) })
		h.check(out, 0, 0)
	}
}

// skipShapes are (N, D, K, skip).
var skipShapes = [][4]int{{3, 5, 4, 0}, {3, 5, 4, 3}, {1, 1, 1, 0}, {0, 3, 2, 1}, {512, 200, 64, 0}}

func caseSkipMix(h *harness) {
	for _, d := range skipShapes {
		N, D, K, skip := d[0], d[1], d[2], d[3]
		name := fmt.Sprintf("N%d D%d K%d skip%d", N, D, K, skip)
		prev := h.input("prev "+name, h.vals(N*D, -1, 1))
		hat := h.input("hat "+name, h.vals(N*D, -1, 1))
		z := h.input("z "+name, h.vals(N*K, 0, 1))
		out := h.output("out "+name, N*D)
		h.both(func(be model.Backend, s side) {
			be.SkipMix(out.on(s), prev.on(s), hat.on(s), z.on(s), N, D, K, skip)
		})
		h.checkFwd(out)
	}
}

func caseSkipMixBackward(h *harness) {
	for k, d := range skipShapes {
		N, D, K, skip := d[0], d[1], d[2], d[3]
		name := fmt.Sprintf("N%d D%d K%d skip%d", N, D, K, skip)
		prev := h.input("prev "+name, h.vals(N*D, -1, 1))
		hat := h.input("hat "+name, h.vals(N*D, -1, 1))
		z := h.input("z "+name, h.vals(N*K, 0, 1))
		dout := h.input("dout "+name, h.vals(N*D, -1, 1))
		dprev := h.grad("dprev "+name, h.vals(N*D, -1, 1))
		dhat := h.grad("dhat "+name, h.vals(N*D, -1, 1))
		dz := h.grad("dz "+name, h.vals(N*K, -1, 1))
		if k == 1 {
			dprev, dhat = nil, nil // nil gradients are skipped
		}
		h.both(func(be model.Backend, s side) {
			be.SkipMixBackward(dprev.on(s), dhat.on(s), dz.on(s), dout.on(s), prev.on(s), hat.on(s), z.on(s), N, D, K, skip, model.SkipMixAccAll)
		})
		for _, p := range []*pair{dprev, dhat, dz} {
			if p != nil {
				h.checkGrad(p)
			}
		}
		// Each output overwritten in turn (it starts as NaN; dz's whole rows),
		// the others accumulating.
		for _, o := range []model.SkipMixAcc{model.SkipMixAccPrev, model.SkipMixAccHat, model.SkipMixAccZ} {
			if k == 1 && o != model.SkipMixAccZ {
				continue
			}
			gp, gh, gz := h.grad("dprev "+name, h.vals(N*D, -1, 1)), h.grad("dhat "+name, h.vals(N*D, -1, 1)), h.grad("dz "+name, h.vals(N*K, -1, 1))
			over := h.output(fmt.Sprintf("overwritten output %d %s", o, name), map[bool]int{true: N * K, false: N * D}[o == model.SkipMixAccZ])
			switch o {
			case model.SkipMixAccPrev:
				gp = over
			case model.SkipMixAccHat:
				gh = over
			default:
				gz = over
			}
			if k == 1 {
				gp, gh = nil, nil
			}
			acc := model.SkipMixAccAll &^ o
			h.both(func(be model.Backend, s side) {
				be.SkipMixBackward(gp.on(s), gh.on(s), gz.on(s), dout.on(s), prev.on(s), hat.on(s), z.on(s), N, D, K, skip, acc)
			})
			for _, p := range []*pair{gp, gh, gz} {
				if p != nil {
					h.checkGrad(p)
				}
			}
		}
	}
}

// nllProbs returns N·V probabilities in (0.01, 1) with some entries at the
// targets set to 0 and 1e-9 (clamped to 1e-8).
// mixShapes are SoftmaxMix's (N gate rows, D, K, Db, Kz, skip): several
// softmax rows per gate row (the search has 80 of K 10), gate rows spanning
// more than one chunk of 128 softmax rows (130 rows), rows longer than 32
// (one warp per row), one element, no rows, and the search's shape.
var mixShapes = [][6]int{{5, 40, 10, 20, 7, 3}, {2, 1300, 10, 200, 3, 0}, {3, 80, 40, 80, 2, 1}, {4, 66, 33, 0, 5, 4},
	{1, 1, 1, 1, 1, 0}, {0, 20, 10, 20, 2, 0}, {300, 800, 10, 200, 16, 0}, {257, 20, 10, 0, 4, 2}}

// mixInputs makes SoftmaxMix's inputs for shape d; bias only where Db > 0.
func (h *harness) mixInputs(d [6]int, name string) (logits, bias, prev, z *pair) {
	N, D, Db, Kz := d[0], d[1], d[3], d[4]
	logits = h.input("logits "+name, h.vals(N*D, -4, 4))
	if Db > 0 {
		bias = h.input("bias "+name, h.vals(Db, -2, 2))
	}
	prev = h.input("prev "+name, h.vals(N*D, 0, 1))
	z = h.input("z "+name, h.vals(N*Kz, 0, 1))
	return
}

func caseSoftmaxMix(h *harness) {
	for _, d := range mixShapes {
		for _, noisy := range []bool{false, true} {
			N, D, K, Db, Kz, skip := d[0], d[1], d[2], d[3], d[4], d[5]
			name := fmt.Sprintf("N%d D%d K%d Db%d Kz%d skip%d noise=%v", N, D, K, Db, Kz, skip, noisy)
			logits, bias, prev, z := h.mixInputs(d, name)
			var noise *pair
			if noisy {
				noise = h.input("noise "+name, h.vals(N*D, -2, 5))
			}
			out, hat := h.output("out "+name, N*D), h.output("hat "+name, N*D)
			h.both(func(be model.Backend, s side) {
				be.SoftmaxMix(out.on(s), hat.on(s), logits.on(s), bias.on(s), noise.on(s), prev.on(s), z.on(s), 0.37, N, D, K, Db, Kz, skip)
			})
			h.checkFwd(out, hat)
		}
	}
}

func caseSoftmaxMixBackward(h *harness) {
	for k, d := range mixShapes {
		N, D, K, Db, Kz, skip := d[0], d[1], d[2], d[3], d[4], d[5]
		name := fmt.Sprintf("N%d D%d K%d Db%d Kz%d skip%d", N, D, K, Db, Kz, skip)
		logits, bias, prev, z := h.mixInputs(d, name)
		tmp, tmpOut := h.output("hat (made) "+name, N*D), h.output("out (made) "+name, N*D)
		hat := h.input("hat "+name, h.refSaved(tmp, func(be model.Backend, s side) {
			be.SoftmaxMix(tmpOut.on(s), tmp.on(s), logits.on(s), bias.on(s), nil, prev.on(s), z.on(s), 0.37, N, D, K, Db, Kz, skip)
		}))
		dout := h.input("dout "+name, h.vals(N*D, -1, 1))
		// Every accumulate flag set, then each output overwritten in turn
		// (starting as NaN), then (k odd) dprev nil.
		for _, o := range []model.SkipMixAcc{0, model.SkipMixAccHat, model.SkipMixAccPrev, model.SkipMixAccZ} {
			gl, gp := h.grad("dlogits "+name, h.vals(N*D, -1, 1)), h.grad("dprev "+name, h.vals(N*D, -1, 1))
			gz := h.grad("dz "+name, h.vals(N*Kz, -1, 1))
			over := fmt.Sprintf("overwritten output %d %s", o, name)
			switch o {
			case model.SkipMixAccHat:
				gl = h.output(over, N*D)
			case model.SkipMixAccPrev:
				gp = h.output(over, N*D)
			case model.SkipMixAccZ:
				gz = h.output(over, N*Kz)
			}
			if k%2 == 1 && o != model.SkipMixAccPrev {
				gp = nil
			}
			acc := model.SkipMixAccAll &^ o
			h.both(func(be model.Backend, s side) {
				be.SoftmaxMixBackward(gl.on(s), gp.on(s), gz.on(s), dout.on(s), prev.on(s), hat.on(s), z.on(s), 0.37, N, D, K, Kz, skip, acc)
			})
			for _, p := range []*pair{gl, gp, gz} {
				if p != nil {
					h.checkGrad(p)
				}
			}
		}
	}
}

func (h *harness) nllProbs(N, V int, y []int32) []float32 {
	p := h.vals(N*V, 0.01, 1)
	if N >= 3 {
		p[int(y[0])], p[V+int(y[1])] = 0, 1e-9
	}
	return p
}

// nllShapes are (N, V); N 10000 is over the CUDA backend's piece of 4096
// rows, so its two-pass NLL (three pieces, the last partial) runs too.
var nllShapes = [][2]int{{3, 7}, {1, 1}, {0, 4}, {640, 10}, {10000, 10}}

func caseNLL(h *harness) {
	for _, d := range nllShapes {
		N, V := d[0], d[1]
		name := fmt.Sprintf("N%d V%d", N, V)
		yv := h.ints(N, V)
		y := h.intInput("y "+name, yv)
		p := h.input("p "+name, h.nllProbs(N, V, yv))
		out := h.output("out "+name, 1)
		h.both(func(be model.Backend, s side) { be.NLL(out.on(s), p.on(s), y.on(s), N, V, 0.25) })
		h.checkFwd(out)
	}
}

func caseNLLBackward(h *harness) {
	for _, d := range nllShapes {
		N, V := d[0], d[1]
		name := fmt.Sprintf("N%d V%d", N, V)
		yv := h.ints(N, V)
		y := h.intInput("y "+name, yv)
		p := h.input("p "+name, h.nllProbs(N, V, yv))
		dout := h.input("dout "+name, []float32{0.7})
		dp := h.grad("dp "+name, h.vals(N*V, -1, 1))
		h.both(func(be model.Backend, s side) { be.NLLBackward(dp.on(s), dout.on(s), p.on(s), y.on(s), N, V, 0.25) })
		h.checkGrad(dp)
	}
}

func caseSeqScore(h *harness) {
	for _, d := range [][3]int{{3, 4, 5}, {1, 1, 1}, {0, 3, 2}, {64, 20, 10}} {
		R, L, V := d[0], d[1], d[2]
		name := fmt.Sprintf("R%d L%d V%d", R, L, V)
		p := h.vals(R*L*V, 0, 1)
		y := h.ints(R*L, V)
		for r := 0; r < R; r += 2 { // every other sequence matches its argmax
			for l := range L {
				y[r*L+l] = int32(argmax(p[(r*L+l)*V : (r*L+l+1)*V]))
			}
		}
		if R > 0 && L > 0 {
			p[int(y[0])] = 0 // clamped to 1e-8
		}
		pp, yy := h.input("p "+name, p), h.intInput("y "+name, y)
		ll, ex := h.output("loglik "+name, R), h.output("exact "+name, R)
		h.both(func(be model.Backend, s side) { be.SeqScore(ll.on(s), ex.on(s), pp.on(s), yy.on(s), R, L, V) })
		h.checkFwd(ll)
		h.check(ex, 0, 0)
	}
}

func argmax(x []float32) int {
	best := 0
	for k, v := range x {
		if v > x[best] {
			best = k
		}
	}
	return best
}

// reuseProbs returns N·D values in [0, 0.9) with one q = 1 (clamped).
func (h *harness) reuseProbs(N, D int) []float32 {
	q := h.vals(N*D, 0, 0.9)
	if len(q) > 2 {
		q[1] = 1
	}
	return q
}

var reuseShapes = [][2]int{{3, 7}, {1, 1}, {0, 4}, {512, 768}}

func caseReuseReg(h *harness) {
	for _, d := range reuseShapes {
		N, D := d[0], d[1]
		name := fmt.Sprintf("N%d D%d", N, D)
		q := h.input("q "+name, h.reuseProbs(N, D))
		out := h.output("out "+name, 1)
		h.both(func(be model.Backend, s side) { be.ReuseReg(out.on(s), q.on(s), N, D) })
		h.checkFwd(out)
	}
}

func caseReuseRegBackward(h *harness) {
	for _, d := range reuseShapes {
		N, D := d[0], d[1]
		name := fmt.Sprintf("N%d D%d", N, D)
		q := h.input("q "+name, h.reuseProbs(N, D))
		dout := h.input("dout "+name, []float32{1.3})
		dq := h.grad("dq "+name, h.vals(N*D, -1, 1))
		h.both(func(be model.Backend, s side) { be.ReuseRegBackward(dq.on(s), dout.on(s), q.on(s), N, D) })
		h.checkGrad(dq)
	}
}

func caseSumSquares(h *harness) {
	for _, n := range []int{0, 1, 7, 100003} {
		x := h.input(fmt.Sprintf("x n%d", n), h.vals(n, -2, 2))
		out := h.output(fmt.Sprintf("out n%d", n), 1)
		h.both(func(be model.Backend, s side) { be.SumSquares(out.on(s), x.on(s)) })
		h.checkFwd(out)
	}
}

func caseAdamW(h *harness) {
	for _, n := range []int{0, 1, 7, 10001} {
		for _, hp := range [][2]float32{{3e-4, 0}, {1e-2, 0.1}} { // (lr, wd)
			lr, wd := hp[0], hp[1]
			name := fmt.Sprintf("n%d lr%v wd%v", n, lr, wd)
			p := h.grad("p "+name, h.vals(n, -1, 1))
			m := h.grad("m "+name, make([]float32, n))
			v := h.grad("v "+name, make([]float32, n))
			for step := 1; step <= 3; step++ {
				g := h.input(fmt.Sprintf("g%d %s", step, name), h.vals(n, -2, 2))
				h.both(func(be model.Backend, s side) {
					be.AdamW(p.on(s), g.on(s), m.on(s), v.on(s), lr, 0.9, 0.999, 1e-8, wd, 0.5, step)
				})
			}
			h.checkFwd(p, m, v)
		}
	}
}
