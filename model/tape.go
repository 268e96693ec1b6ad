// The tape: reverse-mode autodiff over the closed op list. Each tape method
// runs one op's forward on the backend, allocates its output from a reusable
// arena and records a node; Backward replays the nodes in reverse, calling
// each op's backward. The graph of a training or search step is the same
// every step, so after the first step the tape allocates nothing.

package model

// opKind names a recorded op.
type opKind uint8

const (
	opLinear opKind = iota + 1
	opMatMul
	opLayerNorm
	opAttention
	opGELU
	opAdd
	opAddRows
	opPairEmbed
	opSliceRows
	opPool
	opRepeat
	opTranspose
	opSoftmax
	opSkipMix
	opSoftmaxMix
	opNLL
	opReuse
	opAddScaled
	opMul
	opBiasGELU
	opStraight
)

// node is one recorded op: its tensors, integer dimensions and scalars.
type node struct {
	op   opKind
	t    [8]*Tensor
	i    [6]int
	f    float32
	flag bool
}

// arena hands out views of large backend allocations in a fixed sequence,
// restarting from the beginning on reset.
type arena struct {
	chunks []*Memory
	ci     int  // current chunk
	used   int  // elements used in the current chunk
	ints   bool // int32 chunks (AllocInt) rather than float32
}

const arenaChunk = 1 << 20

// arenaAlign is the alignment of tensors in an arena, in elements.
const arenaAlign = 32

func (a *arena) take(b Backend, n int) (*Memory, int) {
	for {
		if a.ci < len(a.chunks) {
			c := a.chunks[a.ci]
			if a.used+n <= c.Len {
				off := a.used
				// The next tensor starts on a 128-byte boundary (chunks are
				// aligned at least that much on a device): coalesced rows, and
				// the device's vectorised (float4) paths apply.
				a.used = min(c.Len, (a.used+n+arenaAlign-1)&^(arenaAlign-1))
				return c, off
			}
			a.ci++
			a.used = 0
			continue
		}
		if a.ints {
			a.chunks = append(a.chunks, b.AllocInt(max(n, arenaChunk/16)))
		} else {
			a.chunks = append(a.chunks, b.Alloc(max(n, arenaChunk)))
		}
	}
}

func (a *arena) reset() { a.ci, a.used = 0, 0 }

func (a *arena) free(b Backend) {
	for _, c := range a.chunks {
		b.Free(c)
	}
	a.chunks = nil
	a.reset()
}

// Tape records ops for backpropagation and owns the activations of one
// forward pass. Call Reset before each new forward pass.
type Tape struct {
	B Backend
	// NoGrad makes the tape run forward only: nothing is recorded and no
	// gradient memory is allocated (evaluation, hard execution).
	NoGrad bool
	// Transposed maps a frozen weight W (OC, C) of Linear or LinearAcc to a
	// copy of Wᵀ (C, OC); Backward then computes the input's gradient
	// dout·W as dout·(Wᵀ)ᵀ, a product with the second operand transposed,
	// which cuBLAS's TF32 kernels run 1.2–1.6× faster than the plain form at
	// the search's shapes (docs/CUDA.md). The values are the same (the CPU's
	// Gemm packs every transpose into one micro-kernel: bit for bit). The
	// search sets it for the interpreter's weights; nil: off.
	Transposed map[*Tensor]*Tensor

	nodes []node
	pool  []*Tensor
	npool int
	act   arena
	grad  arena
	iact  arena // int tensors
	host1 [1]float32
	zero  Tensor // view used to clear gradient regions

	// First-write gradients (Backward): the arena's gradient chunks, the
	// gradient regions that have partial views (zeroed at the start of
	// Backward, always accumulated), and the regions written so far.
	gradMem  map[*Memory]bool
	partial  map[region]bool
	partials []region
	written  map[region]bool
	// For tests: zeroAll restores clear-everything-then-accumulate;
	// beforeBackward runs first in Backward (to poison the gradient arena).
	zeroAll        bool
	beforeBackward func()
}

// region is the span of memory a gradient tensor covers.
type region struct {
	m      *Memory
	off, n int
}

func regionOf(t *Tensor) region { return region{t.mem, t.off, t.n} }

// NewTape returns an empty tape on backend b.
func NewTape(b Backend) *Tape {
	return &Tape{B: b, iact: arena{ints: true},
		gradMem: map[*Memory]bool{}, partial: map[region]bool{}, written: map[region]bool{}}
}

// Reset forgets the recorded ops and recycles all activation memory.
// Tensors returned before the reset must no longer be used.
func (tp *Tape) Reset() {
	tp.nodes = tp.nodes[:0]
	tp.npool = 0
	tp.act.reset()
	tp.grad.reset()
	tp.iact.reset()
	clear(tp.partial)
	tp.partials = tp.partials[:0]
}

// Free releases all memory held by the tape.
func (tp *Tape) Free() {
	tp.Reset()
	tp.act.free(tp.B)
	tp.grad.free(tp.B)
	tp.iact.free(tp.B)
	clear(tp.gradMem)
}

func (tp *Tape) tensor() *Tensor {
	if tp.npool == len(tp.pool) {
		tp.pool = append(tp.pool, &Tensor{})
	}
	t := tp.pool[tp.npool]
	tp.npool++
	return t
}

// New returns a fresh float32 activation of the given shape. Its contents
// are undefined until written. When grad is true and the tape records
// gradients, it gets a gradient tensor too.
func (tp *Tape) New(grad bool, shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	mem, off := tp.act.take(tp.B, n)
	t := tp.tensor()
	t.set(mem, off, shape...)
	if grad && !tp.NoGrad {
		gm, goff := tp.grad.take(tp.B, n)
		tp.gradMem[gm] = true
		g := tp.tensor()
		g.set(gm, goff, shape...)
		t.Grad = g
	}
	return t
}

// NewInt returns a fresh int32 activation (inputs, targets).
func (tp *Tape) NewInt(shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	mem, off := tp.iact.take(tp.B, n)
	t := tp.tensor()
	t.set(mem, off, shape...)
	return t
}

// View returns a view of t's elements [off, off+prod(shape)) with the given
// shape; its gradient (if any) views the matching part of t's gradient.
func (tp *Tape) View(t *Tensor, off int, shape ...int) *Tensor {
	v := tp.tensor()
	v.set(t.mem, t.off+off, shape...)
	if off+v.n > t.n {
		panic("model: View outside its tensor")
	}
	if t.Grad != nil {
		g := tp.tensor()
		g.set(t.Grad.mem, t.Grad.off+off, shape...)
		v.Grad = g
		if v.n < t.n && tp.gradMem[t.Grad.mem] {
			if r := regionOf(t.Grad); !tp.partial[r] {
				tp.partial[r] = true
				tp.partials = append(tp.partials, r)
			}
		}
	}
	return v
}

// Sub is View of the i-th slice along the first dimension.
func (tp *Tape) Sub(t *Tensor, i int) *Tensor {
	if t.rank < 1 || i < 0 || i >= t.dims[0] {
		panic("model: Sub index out of range")
	}
	inner := t.n / t.dims[0]
	v := tp.View(t, i*inner, t.dims[1:t.rank]...)
	return v
}

func needs(ts ...*Tensor) bool {
	for _, t := range ts {
		if t != nil && t.Grad != nil {
			return true
		}
	}
	return false
}

func (tp *Tape) record(n node) {
	if !tp.NoGrad {
		tp.nodes = append(tp.nodes, n)
	}
}

// outLike allocates an output with x's shape but the last dimension set to last.
func (tp *Tape) outLike(x *Tensor, last int, grad bool) *Tensor {
	var d [MaxRank]int
	copy(d[:], x.dims[:x.rank])
	d[x.rank-1] = last
	return tp.New(grad, d[:x.rank]...)
}

func lastDim(t *Tensor) int { return t.dims[t.rank-1] }

// Linear: out = x·Wᵀ + b over the last dimension. x (…,C), W (OC,C), b (OC) or nil.
func (tp *Tape) Linear(x, W, b *Tensor) *Tensor {
	OC, C := W.Dim(0), W.Dim(1)
	if lastDim(x) != C {
		panic("model: Linear input width mismatch")
	}
	N := x.n / C
	g := needs(x, W, b)
	out := tp.outLike(x, OC, g)
	tp.B.Gemm(out, x, W, false, true, N, OC, C, 1, 0)
	if b != nil {
		tp.B.AddRows(out, out, b, N, OC)
	}
	if g {
		tp.record(node{op: opLinear, t: [8]*Tensor{out, x, W, b}, i: [6]int{N, C, OC}})
	}
	return out
}

// LinearAcc: acc += x·Wᵀ over the last dimension, in place, returning acc.
// x (…,C), W (OC,C), acc (…,OC). acc's old value is consumed: nothing may
// read it afterwards (its gradient is the result's, as d acc = d out). It
// saves the separate bias and sum passes of Linear followed by Add when
// the bias and the other summand are already in acc.
func (tp *Tape) LinearAcc(acc, x, W *Tensor) *Tensor {
	OC, C := W.Dim(0), W.Dim(1)
	if lastDim(x) != C || lastDim(acc) != OC || acc.n/OC != x.n/C {
		panic("model: LinearAcc shape mismatch")
	}
	N := x.n / C
	g := needs(x, W)
	if g && !tp.NoGrad && acc.Grad == nil {
		panic("model: LinearAcc: acc has no gradient but x or W needs one")
	}
	tp.B.Gemm(acc, x, W, false, true, N, OC, C, 1, 1)
	if g {
		tp.record(node{op: opLinear, t: [8]*Tensor{acc, x, W, nil}, i: [6]int{N, C, OC}})
	}
	return acc
}

// MatMul: out = x·W over the last dimension. x (…,C), W (C,OC).
func (tp *Tape) MatMul(x, W *Tensor) *Tensor {
	C, OC := W.Dim(0), W.Dim(1)
	if lastDim(x) != C {
		panic("model: MatMul input width mismatch")
	}
	N := x.n / C
	g := needs(x, W)
	out := tp.outLike(x, OC, g)
	tp.B.Gemm(out, x, W, false, false, N, OC, C, 1, 0)
	if g {
		tp.record(node{op: opMatMul, t: [8]*Tensor{out, x, W}, i: [6]int{N, C, OC}})
	}
	return out
}

// LayerNorm over the last dimension with weight w and bias b (C).
func (tp *Tape) LayerNorm(x, w, b *Tensor) *Tensor {
	C := lastDim(x)
	N := x.n / C
	g := needs(x, w, b)
	out := tp.outLike(x, C, g)
	mean := tp.New(false, N)
	rstd := tp.New(false, N)
	tp.B.LayerNorm(out, mean, rstd, x, w, b, N, C)
	if g {
		tp.record(node{op: opLayerNorm, t: [8]*Tensor{out, x, w, b, mean, rstd}, i: [6]int{N, C}})
	}
	return out
}

// Attention runs multi-head self-attention on qkv (B,S,3C) with NH heads.
func (tp *Tape) Attention(qkv *Tensor, NH int) *Tensor {
	B, S, C3 := qkv.Dim(0), qkv.Dim(1), qkv.Dim(2)
	C := C3 / 3
	g := needs(qkv)
	out := tp.New(g, B, S, C)
	att := tp.New(false, B, NH, S, S)
	tp.B.Attention(out, att, qkv, B, S, C, NH)
	if g {
		tp.record(node{op: opAttention, t: [8]*Tensor{out, qkv, att}, i: [6]int{B, S, C, NH}})
	}
	return out
}

// GELU applies the exact GELU elementwise.
func (tp *Tape) GELU(x *Tensor) *Tensor {
	g := needs(x)
	out := tp.outLike(x, lastDim(x), g)
	tp.B.GELU(out, x)
	if g {
		tp.record(node{op: opGELU, t: [8]*Tensor{out, x}})
	}
	return out
}

// BiasGELU returns GELU(x + bias), bias (R, C) (or (C) for R = 1) added to
// each group of m = rows/R consecutive rows of x (…, C): bias row r to rows
// r·m … r·m+m−1. It equals GELU(Add(x, RepeatRows(bias, m))) — for R = 1
// GELU(AddRows(x, bias)) — bit for bit on the CPU, in one pass instead of
// two or three, and its backward sums the bias gradient in the same pass.
func (tp *Tape) BiasGELU(x, bias *Tensor) *Tensor {
	C := lastDim(x)
	N := x.n / max(C, 1)
	R := bias.n / max(C, 1)
	if C == 0 || bias.n != R*C || R == 0 || N%R != 0 {
		panic("model: BiasGELU: bias is not (R, C) with R dividing the rows of x")
	}
	m := N / R
	g := needs(x, bias)
	out := tp.outLike(x, C, g)
	tp.B.BiasGELU(out, x, bias, R, m, C)
	if g {
		tp.record(node{op: opBiasGELU, t: [8]*Tensor{out, x, bias}, i: [6]int{R, m, C}})
	}
	return out
}

// Add returns a + b (same length; the result has a's shape).
func (tp *Tape) Add(a, b *Tensor) *Tensor {
	if a.n != b.n {
		panic("model: Add length mismatch")
	}
	g := needs(a, b)
	out := tp.outLike(a, lastDim(a), g)
	tp.B.Add(out, a, b)
	if g {
		tp.record(node{op: opAdd, t: [8]*Tensor{out, a, b}})
	}
	return out
}

// Mul returns a ⊙ b elementwise (same length; the result has a's shape).
func (tp *Tape) Mul(a, b *Tensor) *Tensor {
	if a.n != b.n {
		panic("model: Mul length mismatch")
	}
	g := needs(a, b)
	out := tp.outLike(a, lastDim(a), g)
	tp.B.Mul(out, a, b)
	if g {
		tp.record(node{op: opMul, t: [8]*Tensor{out, a, b}})
	}
	return out
}

// AddRows returns x + row broadcast over the leading rows: x (N,C…), row of length C.
func (tp *Tape) AddRows(x, row *Tensor) *Tensor {
	C := row.n
	N := x.n / C
	if N*C != x.n {
		panic("model: AddRows length mismatch")
	}
	g := needs(x, row)
	out := tp.outLike(x, lastDim(x), g)
	tp.B.AddRows(out, x, row, N, C)
	if g {
		tp.record(node{op: opAddRows, t: [8]*Tensor{out, x, row}, i: [6]int{N, C}})
	}
	return out
}

// PairEmbed builds (N, 2L+T, C) tokens from pairs x, y (N,L) int.
func (tp *Tape) PairEmbed(x, y, val, pos, chn, slot *Tensor) *Tensor {
	N, L := x.Dim(0), x.Dim(1)
	T, C := slot.Dim(0), slot.Dim(1)
	g := needs(val, pos, chn, slot)
	out := tp.New(g, N, 2*L+T, C)
	tp.B.PairEmbed(out, x, y, val, pos, chn, slot, N, L, T, C)
	if g {
		tp.record(node{op: opPairEmbed, t: [8]*Tensor{out, x, y, val, pos, chn, slot}, i: [6]int{N, L, T, C}})
	}
	return out
}

// SliceRows takes rows [start, start+R) of dimension 1 of x (N,S,C).
func (tp *Tape) SliceRows(x *Tensor, start, R int) *Tensor {
	N, S, C := x.Dim(0), x.Dim(1), x.Dim(2)
	if start < 0 || start+R > S {
		panic("model: SliceRows out of range")
	}
	g := needs(x)
	out := tp.New(g, N, R, C)
	tp.B.SliceRows(out, x, N, S, start, R, C)
	if g {
		tp.record(node{op: opSliceRows, t: [8]*Tensor{out, x}, i: [6]int{N, S, start, R, C}})
	}
	return out
}

// PoolPairs pools x (B·m, rest…) over groups of m rows: leave-one-out
// (result B·m rows) or mean (result B rows). rest is kept as the row shape.
func (tp *Tape) PoolPairs(x *Tensor, m int, loo bool) *Tensor {
	Bm := x.Dim(0)
	if Bm%m != 0 {
		panic("model: PoolPairs rows not divisible by m")
	}
	B := Bm / m
	C := x.n / Bm
	g := needs(x)
	var d [MaxRank]int
	copy(d[:], x.dims[:x.rank])
	if !loo {
		d[0] = B
	}
	out := tp.New(g, d[:x.rank]...)
	tp.B.PoolPairs(out, x, B, m, C, loo)
	if g {
		tp.record(node{op: opPool, t: [8]*Tensor{out, x}, i: [6]int{B, m, C}, flag: loo})
	}
	return out
}

// RepeatRows repeats each row of x (R, rest…) m times: (R·m, rest…).
func (tp *Tape) RepeatRows(x *Tensor, m int) *Tensor {
	R := x.Dim(0)
	C := x.n / max(R, 1)
	g := needs(x)
	var d [MaxRank]int
	copy(d[:], x.dims[:x.rank])
	d[0] = R * m
	out := tp.New(g, d[:x.rank]...)
	tp.B.RepeatRows(out, x, R, m, C)
	if g {
		tp.record(node{op: opRepeat, t: [8]*Tensor{out, x}, i: [6]int{R, m, C}})
	}
	return out
}

// Transpose01 swaps the first two dimensions of x (A,B,C) → (B,A,C).
func (tp *Tape) Transpose01(x *Tensor) *Tensor {
	A, B := x.Dim(0), x.Dim(1)
	C := x.n / max(A*B, 1)
	g := needs(x)
	out := tp.New(g, B, A, C)
	tp.B.Transpose01(out, x, A, B, C, false)
	if g {
		tp.record(node{op: opTranspose, t: [8]*Tensor{out, x}, i: [6]int{A, B, C}})
	}
	return out
}

// Softmax over the last dimension of (logits + noise)/tau; noise may be nil.
func (tp *Tape) Softmax(logits, noise *Tensor, tau float32) *Tensor {
	K := lastDim(logits)
	N := logits.n / K
	g := needs(logits)
	out := tp.outLike(logits, K, g)
	tp.B.Softmax(out, logits, noise, tau, N, K)
	if g {
		tp.record(node{op: opSoftmax, t: [8]*Tensor{out, logits}, i: [6]int{N, K}, f: tau})
	}
	return out
}

// ArgmaxOneHot returns onehot(argmax) over the last dimension (no gradient).
func (tp *Tape) ArgmaxOneHot(logits *Tensor) *Tensor {
	K := lastDim(logits)
	out := tp.outLike(logits, K, false)
	tp.B.ArgmaxOneHot(out, logits, logits.n/K, K)
	return out
}

// StraightThrough returns onehot(argmax z) over the last dimension (the
// first maximum wins), exactly one-hot, with the straight-through gradient:
// d z += d out, as if the op were the identity (recipe.py's relax with st).
func (tp *Tape) StraightThrough(z *Tensor) *Tensor {
	K := lastDim(z)
	g := needs(z)
	out := tp.outLike(z, K, g)
	tp.B.ArgmaxOneHot(out, z, z.n/max(K, 1), K)
	if g {
		tp.record(node{op: opStraight, t: [8]*Tensor{out, z}})
	}
	return out
}

// OneHot returns (shape of idx…, K) one-hot rows of the int tensor idx (no gradient).
func (tp *Tape) OneHot(idx *Tensor, K int) *Tensor {
	var d [MaxRank]int
	copy(d[:], idx.dims[:idx.rank])
	d[idx.rank] = K
	out := tp.New(false, d[:idx.rank+1]...)
	tp.B.OneHot(out, idx, idx.n, K)
	return out
}

// SkipMix gates the new state: g·prev + (1−g)·hat with g = z[:,skip].
// prev, hat (N, …); z (N, K).
func (tp *Tape) SkipMix(prev, hat, z *Tensor, skip int) *Tensor {
	N, K := z.Dim(0), z.Dim(1)
	D := prev.n / N
	g := needs(prev, hat, z)
	out := tp.outLike(prev, lastDim(prev), g)
	tp.B.SkipMix(out, prev, hat, z, N, D, K, skip)
	if g {
		tp.record(node{op: opSkipMix, t: [8]*Tensor{out, prev, hat, z}, i: [6]int{N, D, K, skip}})
	}
	return out
}

// SoftmaxMix is Softmax then SkipMix in one op: the new state
// g·prev + (1−g)·softmax((logits + bias + noise)/tau) over the last
// dimension, g = z[:,skip]. logits, prev, noise (N·r, …, K) with r rows per
// gate row of z (Ng, Kz); bias (C) is added to every row of C elements
// (AddRows), noise may be nil. A bias that needs a gradient (training) is
// added by an AddRows of its own; a frozen one (search) inside the op. The
// softmax output is kept for the backward pass only.
func (tp *Tape) SoftmaxMix(logits, bias, noise *Tensor, tau float32, prev, z *Tensor, skip int) *Tensor {
	if bias != nil && bias.Grad != nil {
		logits, bias = tp.AddRows(logits, bias), nil
	}
	K := lastDim(logits)
	Ng, Kz := z.Dim(0), z.Dim(1)
	D := prev.n / max(Ng, 1)
	if logits.n != prev.n || Ng*D != prev.n {
		panic("model: SoftmaxMix shape mismatch")
	}
	Db := 0
	if bias != nil {
		Db = bias.n
		if Db%K != 0 || logits.n%Db != 0 {
			panic("model: SoftmaxMix bias length mismatch")
		}
	}
	g := needs(logits, prev, z)
	hat := tp.outLike(logits, K, false)
	out := tp.outLike(prev, lastDim(prev), g)
	tp.B.SoftmaxMix(out, hat, logits, bias, noise, prev, z, tau, Ng, D, K, Db, Kz, skip)
	if g {
		tp.record(node{op: opSoftmaxMix, t: [8]*Tensor{out, logits, hat, prev, z}, i: [6]int{Ng, D, K, Kz, skip}, f: tau})
	}
	return out
}

// NLL returns the scalar scale·Σ −log(max(p[·,y],1e-8)) over rows of p (…,V).
func (tp *Tape) NLL(p, y *Tensor, scale float32) *Tensor {
	V := lastDim(p)
	N := p.n / V
	if y.n != N {
		panic("model: NLL target length mismatch")
	}
	g := needs(p)
	out := tp.New(g, 1)
	tp.B.NLL(out, p, y, N, V, scale)
	if g {
		tp.record(node{op: opNLL, t: [8]*Tensor{out, p, y}, i: [6]int{N, V}, f: scale})
	}
	return out
}

// ReuseReg returns the scalar reuse regulariser of q (N, D…).
func (tp *Tape) ReuseReg(q *Tensor) *Tensor {
	N := q.Dim(0)
	D := q.n / N
	g := needs(q)
	out := tp.New(g, 1)
	tp.B.ReuseReg(out, q, N, D)
	if g {
		tp.record(node{op: opReuse, t: [8]*Tensor{out, q}, i: [6]int{N, D}})
	}
	return out
}

// AddScaled returns a + lam·b for equal-length tensors (used for loss terms).
func (tp *Tape) AddScaled(a, b *Tensor, lam float32) *Tensor {
	g := needs(a, b)
	out := tp.outLike(a, lastDim(a), g)
	tp.B.Copy(out, a)
	tp.B.Axpy(out, lam, b)
	if g {
		tp.record(node{op: opAddScaled, t: [8]*Tensor{out, a, b}, f: lam})
	}
	return out
}

// inPartial reports whether gradient region r lies in a region that has
// partial views.
func (tp *Tape) inPartial(r region) bool {
	for _, p := range tp.partials {
		if p.m == r.m && r.off >= p.off && r.off+r.n <= p.off+p.n {
			return true
		}
	}
	return false
}

// first reports whether this write to gradient g is its first in this
// Backward and may therefore overwrite (and records it): g is an
// activation gradient of the tape's arena, outside every partially viewed
// region, and not written yet. Parameter and other outside gradients
// always accumulate.
func (tp *Tape) first(g *Tensor) bool {
	if g == nil || tp.zeroAll || !tp.gradMem[g.mem] {
		return false
	}
	r := regionOf(g)
	if tp.written[r] || tp.inPartial(r) {
		return false
	}
	tp.written[r] = true
	return true
}

// unwritten reports whether activation gradient g has received nothing: its
// node's backward would add zeros, so Backward skips it.
func (tp *Tape) unwritten(g *Tensor) bool {
	if g == nil || tp.zeroAll || !tp.gradMem[g.mem] {
		return false
	}
	r := regionOf(g)
	return !tp.written[r] && !tp.inPartial(r)
}

// clearFirst zeroes g before an accumulating op when this is g's first
// write (ops without an overwriting form).
func (tp *Tape) clearFirst(g *Tensor) {
	if tp.first(g) {
		tp.B.Zero(g)
	}
}

// beta is a Gemm's beta for writing into g: 0 (overwrite) on g's first
// write, else 1.
func (tp *Tape) beta(g *Tensor) float32 {
	if tp.first(g) {
		return 0
	}
	return 1
}

// Backward seeds d(loss) = 1 and runs every recorded node's backward in
// reverse. Parameter gradients accumulate; the caller zeros them before the
// forward pass. Activation gradients are not cleared first: the first write
// to each overwrites it (a product with beta 0, a copy, or a zeroing right
// before an accumulating op), a node whose output gradient was never written
// is skipped (it would add zeros), and only the regions that have partial
// views (Sub, View of a part), written piecewise and whole, are zeroed up
// front. This saves clearing the whole gradient tape every step (~10% of a
// GPU search step) and a read per first write.
func (tp *Tape) Backward(loss *Tensor) {
	if tp.NoGrad || loss.Grad == nil {
		panic("model: Backward on a tape or loss without gradients")
	}
	if tp.beforeBackward != nil {
		tp.beforeBackward()
	}
	clear(tp.written)
	if tp.zeroAll {
		for i := 0; i <= tp.grad.ci && i < len(tp.grad.chunks); i++ {
			c := tp.grad.chunks[i]
			tp.zero.set(c, 0, c.Len)
			tp.B.Zero(&tp.zero)
		}
	}
	for _, r := range tp.partials {
		tp.zero.set(r.m, r.off, r.n)
		tp.B.Zero(&tp.zero)
	}
	tp.host1[0] = 1
	tp.B.Upload(loss.Grad, tp.host1[:])
	tp.first(loss.Grad)
	b := tp.B
	for k := len(tp.nodes) - 1; k >= 0; k-- {
		n := &tp.nodes[k]
		t := n.t
		out := t[0]
		dout := out.Grad
		if tp.unwritten(dout) {
			continue
		}
		switch n.op {
		case opLinear:
			N, C, OC := n.i[0], n.i[1], n.i[2]
			x, W, bias := t[1], t[2], t[3]
			if x.Grad != nil {
				if wt := tp.Transposed[W]; wt != nil {
					b.Gemm(x.Grad, dout, wt, false, true, N, C, OC, 1, tp.beta(x.Grad))
				} else {
					b.Gemm(x.Grad, dout, W, false, false, N, C, OC, 1, tp.beta(x.Grad))
				}
			}
			if W.Grad != nil {
				b.Gemm(W.Grad, dout, x, true, false, OC, C, N, 1, tp.beta(W.Grad))
			}
			if bias != nil && bias.Grad != nil {
				tp.clearFirst(bias.Grad)
				b.SumRows(bias.Grad, dout, N, OC)
			}
		case opMatMul:
			N, C, OC := n.i[0], n.i[1], n.i[2]
			x, W := t[1], t[2]
			if x.Grad != nil {
				b.Gemm(x.Grad, dout, W, false, true, N, C, OC, 1, tp.beta(x.Grad))
			}
			if W.Grad != nil {
				b.Gemm(W.Grad, x, dout, true, false, C, OC, N, 1, tp.beta(W.Grad))
			}
		case opLayerNorm:
			x, w, bb, mean, rstd := t[1], t[2], t[3], t[4], t[5]
			tp.clearFirst(gradOf(x))
			tp.clearFirst(gradOf(w))
			tp.clearFirst(gradOf(bb))
			b.LayerNormBackward(gradOf(x), gradOf(w), gradOf(bb), dout, x, w, mean, rstd, n.i[0], n.i[1])
		case opAttention:
			qkv, att := t[1], t[2]
			// scratch (B,NH,S,S) holds d(att) during the backward.
			scratch := tp.New(false, n.i[0], n.i[3], n.i[1], n.i[1])
			tp.clearFirst(qkv.Grad)
			b.AttentionBackward(qkv.Grad, scratch, dout, qkv, att, n.i[0], n.i[1], n.i[2], n.i[3])
		case opGELU:
			b.GELUBackward(t[1].Grad, dout, t[1], !tp.first(t[1].Grad))
		case opBiasGELU:
			dx, db := t[1].Grad, t[2].Grad
			acc := dx != nil && !tp.first(dx)
			if db != nil {
				tp.clearFirst(db)
			}
			b.BiasGELUBackward(dx, db, dout, t[1], t[2], n.i[0], n.i[1], n.i[2], acc)
		case opStraight:
			tp.addInto(t[1].Grad, 1, dout)
		case opAdd:
			tp.addInto(t[1].Grad, 1, dout)
			tp.addInto(t[2].Grad, 1, dout)
		case opMul:
			tp.clearFirst(gradOf(t[1]))
			tp.clearFirst(gradOf(t[2]))
			b.MulBackward(gradOf(t[1]), gradOf(t[2]), dout, t[1], t[2])
		case opAddRows:
			tp.addInto(t[1].Grad, 1, dout)
			if t[2].Grad != nil {
				tp.clearFirst(t[2].Grad)
				b.SumRows(t[2].Grad, dout, n.i[0], n.i[1])
			}
		case opPairEmbed:
			for _, g := range [...]*Tensor{gradOf(t[3]), gradOf(t[4]), gradOf(t[5]), gradOf(t[6])} {
				tp.clearFirst(g)
			}
			b.PairEmbedBackward(gradOf(t[3]), gradOf(t[4]), gradOf(t[5]), gradOf(t[6]), dout, t[1], t[2], n.i[0], n.i[1], n.i[2], n.i[3])
		case opSliceRows:
			tp.clearFirst(t[1].Grad)
			b.SliceRowsBackward(t[1].Grad, dout, n.i[0], n.i[1], n.i[2], n.i[3], n.i[4])
		case opPool:
			tp.clearFirst(t[1].Grad)
			b.PoolPairsBackward(t[1].Grad, dout, n.i[0], n.i[1], n.i[2], n.flag)
		case opRepeat:
			tp.clearFirst(t[1].Grad)
			b.RepeatRowsBackward(t[1].Grad, dout, n.i[0], n.i[1], n.i[2])
		case opTranspose:
			A, B, C := n.i[0], n.i[1], n.i[2]
			b.Transpose01(t[1].Grad, dout, B, A, C, !tp.first(t[1].Grad))
		case opSoftmax:
			acc := !tp.first(t[1].Grad)
			b.SoftmaxBackward(t[1].Grad, dout, out, n.f, n.i[0], n.i[1], acc)
		case opSkipMix:
			acc := SkipMixAccAll
			if tp.first(gradOf(t[1])) {
				acc &^= SkipMixAccPrev
			}
			if tp.first(gradOf(t[2])) {
				acc &^= SkipMixAccHat
			}
			if tp.first(gradOf(t[3])) {
				acc &^= SkipMixAccZ
			}
			b.SkipMixBackward(gradOf(t[1]), gradOf(t[2]), gradOf(t[3]), dout, t[1], t[2], t[3], n.i[0], n.i[1], n.i[2], n.i[3], acc)
		case opSoftmaxMix:
			logits, hat, prev, z := t[1], t[2], t[3], t[4]
			acc := SkipMixAccAll
			if tp.first(gradOf(logits)) {
				acc &^= SkipMixAccHat
			}
			if tp.first(gradOf(prev)) {
				acc &^= SkipMixAccPrev
			}
			if tp.first(gradOf(z)) {
				acc &^= SkipMixAccZ
			}
			b.SoftmaxMixBackward(gradOf(logits), gradOf(prev), gradOf(z), dout, prev, hat, z, n.f, n.i[0], n.i[1], n.i[2], n.i[3], n.i[4], acc)
		case opNLL:
			tp.clearFirst(t[1].Grad)
			b.NLLBackward(t[1].Grad, dout, t[1], t[2], n.i[0], n.i[1], n.f)
		case opReuse:
			tp.clearFirst(t[1].Grad)
			b.ReuseRegBackward(t[1].Grad, dout, t[1], n.i[0], n.i[1])
		case opAddScaled:
			tp.addInto(t[1].Grad, 1, dout)
			tp.addInto(t[2].Grad, n.f, dout)
		default:
			panic("model: unknown op on tape")
		}
	}
}

// addInto is g += alpha·dout, or g = dout on g's first write when alpha is
// 1 (a copy; else the cleared g plus alpha·dout). g nil: nothing.
func (tp *Tape) addInto(g *Tensor, alpha float32, dout *Tensor) {
	if g == nil {
		return
	}
	if tp.first(g) {
		if alpha == 1 {
			tp.B.Copy(g, dout)
			return
		}
		tp.B.Zero(g)
	}
	tp.B.Axpy(g, alpha, dout)
}

// gradOf returns t's gradient or nil (t itself may be nil).
func gradOf(t *Tensor) *Tensor {
	if t == nil {
		return nil
	}
	return t.Grad
}

// Scalar downloads a one-element tensor.
func (tp *Tape) Scalar(t *Tensor) float64 {
	tp.B.Download(tp.host1[:], t)
	return float64(tp.host1[0])
}
