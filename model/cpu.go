// The CPU backend: a readable reference implementation of every op on the
// closed list (forward and backward side by side, llm.c style), with the hot
// ops (Gemm, Attention, LayerNorm, Softmax, GELU) run in parallel on a
// persistent worker pool. Gemm lives in cpu_gemm.go, the pool in pool.go.
//
// Determinism: parallel loops split only independent output rows (or
// columns); a reduction is never split across workers, so every result is
// bit-identical for any number of workers. Hot paths do not allocate: each
// parallel op keeps its job struct inside CPU and dispatches a pointer to it.

package model

import (
	"math"
	"runtime"
	"strconv"
)

// CPU is the pure-Go backend. Memory is ordinary Go memory (Memory.F32 or
// Memory.I32). A CPU is not safe for concurrent use; its worker goroutines
// stop when the CPU is garbage collected.
type CPU struct {
	pool *pool

	gemm     gemmJob
	gemmPack gemmPackJob
	attn     attnJob
	ln       layerNormJob
	lnCols   layerNormColsJob
	softmax  softmaxJob
	mix      softmaxMixJob
	gelu     geluJob
	biasGELU biasGELUJob
	sumsq    sumSquaresJob

	f64 []float64 // scratch for float64 reductions of the serial ops
	f32 []float32 // scratch for BiasGELUBackward's element gradients
}

var _ Backend = (*CPU)(nil)

// NewCPU returns a CPU backend with the given number of workers: workers <= 0
// means runtime.GOMAXPROCS(0); workers == 1 runs everything on the calling
// goroutine.
func NewCPU(workers int) *CPU {
	if workers <= 0 {
		workers = defaultWorkers()
	}
	c := &CPU{pool: newPool(workers)}
	c.gemmPack.g = &c.gemm
	c.lnCols.j = &c.ln
	runtime.AddCleanup(c, func(p *pool) { p.close() }, c.pool)
	return c
}

// Workers returns the number of goroutines the parallel ops use.
func (c *CPU) Workers() int { return c.pool.workers }

// Name returns "cpu".
func (c *CPU) Name() string { return "cpu" }

// ---------------------------------------------------------------------------
// Argument checks. Every op checks its tensors' lengths up front and panics
// with a constant "model: …" message; the slices it then works on are cut to
// exactly the elements the dimensions name.

// f32 returns the first n float32 elements of t, panicking with msg when t is
// nil or shorter.
func f32(t *Tensor, n int, msg string) []float32 {
	if t == nil || t.Len() < n {
		panic(msg)
	}
	return t.F32()[:n]
}

// grad32 is f32 for an optional gradient output: nil stays nil.
func grad32(t *Tensor, n int, msg string) []float32 {
	if t == nil {
		return nil
	}
	return f32(t, n, msg)
}

// i32 returns the first n int32 elements of t, panicking with msg when t is
// nil or shorter.
func i32(t *Tensor, n int, msg string) []int32 {
	if t == nil || t.Len() < n {
		panic(msg)
	}
	return t.I32()[:n]
}

// scratch64 returns a zeroed float64 scratch slice of length n, reusing c.f64.
func (c *CPU) scratch64(n int) []float64 {
	if cap(c.f64) < n {
		c.f64 = make([]float64, n)
	}
	s := c.f64[:n]
	clear(s)
	return s
}

// ---------------------------------------------------------------------------
// Memory.

// Alloc returns zeroed memory for n float32 elements.
func (c *CPU) Alloc(n int) *Memory {
	CheckDims("model: Alloc: negative size", n)
	return &Memory{F32: make([]float32, n), Len: n}
}

// AllocInt returns zeroed memory for n int32 elements.
func (c *CPU) AllocInt(n int) *Memory {
	CheckDims("model: AllocInt: negative size", n)
	return &Memory{I32: make([]int32, n), Len: n, Int: true}
}

// Free is a no-op: CPU memory is garbage collected.
func (c *CPU) Free(m *Memory) {}

// Upload copies src into t (len(src) == t.Len()).
func (c *CPU) Upload(t *Tensor, src []float32) {
	if len(src) != t.Len() {
		panic("model: Upload: length mismatch")
	}
	copy(t.F32(), src)
}

// UploadInt copies src into the int tensor t.
func (c *CPU) UploadInt(t *Tensor, src []int32) {
	if len(src) != t.Len() {
		panic("model: UploadInt: length mismatch")
	}
	copy(t.I32(), src)
}

// Download copies t into dst (len(dst) == t.Len()).
func (c *CPU) Download(dst []float32, t *Tensor) {
	if len(dst) != t.Len() {
		panic("model: Download: length mismatch")
	}
	copy(dst, t.F32())
}

// DownloadInt copies the int tensor t into dst.
func (c *CPU) DownloadInt(dst []int32, t *Tensor) {
	if len(dst) != t.Len() {
		panic("model: DownloadInt: length mismatch")
	}
	copy(dst, t.I32())
}

// Sync returns nil: CPU ops finish before they return.
func (c *CPU) Sync() error { return nil }

// Err returns nil: CPU ops do not fail at run time.
func (c *CPU) Err() error { return nil }

// ---------------------------------------------------------------------------
// Elementwise and row ops.

// Zero overwrites t with zeros.
func (c *CPU) Zero(t *Tensor) { clear(t.F32()) }

// Copy overwrites dst with src (equal lengths).
func (c *CPU) Copy(dst, src *Tensor) {
	if dst.Len() != src.Len() {
		panic("model: Copy: length mismatch")
	}
	copy(dst.F32(), src.F32())
}

// Axpy: y += alpha·x (equal lengths).
func (c *CPU) Axpy(y *Tensor, alpha float32, x *Tensor) {
	if y.Len() != x.Len() {
		panic("model: Axpy: length mismatch")
	}
	ys, xs := y.F32(), x.F32()
	xs = xs[:len(ys)]
	for i, v := range xs {
		ys[i] += alpha * v
	}
}

// Scale: t *= alpha.
func (c *CPU) Scale(t *Tensor, alpha float32) {
	ts := t.F32()
	for i := range ts {
		ts[i] *= alpha
	}
}

// Add: out = a + b (equal lengths; out may alias a or b).
func (c *CPU) Add(out, a, b *Tensor) {
	if out.Len() != a.Len() || out.Len() != b.Len() {
		panic("model: Add: length mismatch")
	}
	os, as, bs := out.F32(), a.F32(), b.F32()
	as, bs = as[:len(os)], bs[:len(os)]
	for i := range os {
		os[i] = as[i] + bs[i]
	}
}

// Mul: out = a ⊙ b, elementwise (equal lengths; out must not alias a or b).
func (c *CPU) Mul(out, a, b *Tensor) {
	if out.Len() != a.Len() || out.Len() != b.Len() {
		panic("model: Mul: length mismatch")
	}
	os, as, bs := out.F32(), a.F32(), b.F32()
	as, bs = as[:len(os)], bs[:len(os)]
	for i := range os {
		os[i] = as[i] * bs[i]
	}
}

// MulBackward: da += dout ⊙ b, db += dout ⊙ a (equal lengths; a nil
// gradient is skipped).
func (c *CPU) MulBackward(da, db, dout, a, b *Tensor) {
	n := dout.Len()
	if a.Len() != n || b.Len() != n {
		panic("model: MulBackward: length mismatch")
	}
	dos, as, bs := dout.F32(), a.F32()[:n], b.F32()[:n]
	if da != nil {
		das := grad32(da, n, "model: MulBackward: da shorter than dout")[:n]
		for i, v := range dos {
			das[i] += v * bs[i]
		}
	}
	if db != nil {
		dbs := grad32(db, n, "model: MulBackward: db shorter than dout")[:n]
		for i, v := range dos {
			dbs[i] += v * as[i]
		}
	}
}

// AddRows: out[n,c] = inp[n,c] + row[c]. out, inp (N,C), row (C); out may
// alias inp.
func (c *CPU) AddRows(out, inp, row *Tensor, N, C int) {
	CheckDims("model: AddRows: negative dimension", N, C)
	os := f32(out, N*C, "model: AddRows: out shorter than N·C")
	is := f32(inp, N*C, "model: AddRows: inp shorter than N·C")
	rs := f32(row, C, "model: AddRows: row shorter than C")
	for n := range N {
		o, x := os[n*C:(n+1)*C], is[n*C:(n+1)*C]
		for i, r := range rs {
			o[i] = x[i] + r
		}
	}
}

// SumRows: drow[c] += Σ_n dout[n,c], summed in float64. drow (C), dout (N,C).
func (c *CPU) SumRows(drow, dout *Tensor, N, C int) {
	CheckDims("model: SumRows: negative dimension", N, C)
	dr := f32(drow, C, "model: SumRows: drow shorter than C")
	do := f32(dout, N*C, "model: SumRows: dout shorter than N·C")
	acc := c.scratch64(C)
	for n := range N {
		for i, v := range do[n*C : (n+1)*C] {
			acc[i] += float64(v)
		}
	}
	for i, s := range acc {
		dr[i] += float32(s)
	}
}

// ---------------------------------------------------------------------------
// PairEmbed.

// PairEmbed builds the inductor's tokens. out (N,2L+T,C), x,y (N,L) int,
// val (V,C), pos (L,C), chn (3,C), slot (T,C).
func (c *CPU) PairEmbed(out, x, y, val, pos, chn, slot *Tensor, N, L, T, C int) {
	CheckDims("model: PairEmbed: negative dimension", N, L, T, C)
	S := 2*L + T
	os := f32(out, N*S*C, "model: PairEmbed: out shorter than N·(2L+T)·C")
	xs := i32(x, N*L, "model: PairEmbed: x shorter than N·L")
	ys := i32(y, N*L, "model: PairEmbed: y shorter than N·L")
	ps := f32(pos, L*C, "model: PairEmbed: pos shorter than L·C")
	cs := f32(chn, 3*C, "model: PairEmbed: chn shorter than 3·C")
	ss := f32(slot, T*C, "model: PairEmbed: slot shorter than T·C")
	if C == 0 {
		return
	}
	vs := val.F32()
	V := len(vs) / C
	checkTokens(xs, V, "model: PairEmbed: x index out of range")
	checkTokens(ys, V, "model: PairEmbed: y index out of range")
	for n := range N {
		for l := range L {
			p := ps[l*C : (l+1)*C]
			ox := os[(n*S+l)*C : (n*S+l+1)*C]
			oy := os[(n*S+L+l)*C : (n*S+L+l+1)*C]
			vx := vs[int(xs[n*L+l])*C:][:C]
			vy := vs[int(ys[n*L+l])*C:][:C]
			for i := range C {
				ox[i] = vx[i] + p[i] + cs[i]
				oy[i] = vy[i] + p[i] + cs[C+i]
			}
		}
		for t := range T {
			o := os[(n*S+2*L+t)*C : (n*S+2*L+t+1)*C]
			s := ss[t*C : (t+1)*C]
			for i := range C {
				o[i] = s[i] + cs[2*C+i]
			}
		}
	}
}

// checkTokens panics with msg when an index is outside [0, V).
func checkTokens(idx []int32, V int, msg string) {
	for _, v := range idx {
		if v < 0 || int(v) >= V {
			panic(msg)
		}
	}
}

// PairEmbedBackward accumulates into dval (V,C), dpos (L,C), dchn (3,C),
// dslot (T,C) from dout (N,2L+T,C); sums run in float64.
func (c *CPU) PairEmbedBackward(dval, dpos, dchn, dslot, dout, x, y *Tensor, N, L, T, C int) {
	CheckDims("model: PairEmbedBackward: negative dimension", N, L, T, C)
	S := 2*L + T
	do := f32(dout, N*S*C, "model: PairEmbedBackward: dout shorter than N·(2L+T)·C")
	xs := i32(x, N*L, "model: PairEmbedBackward: x shorter than N·L")
	ys := i32(y, N*L, "model: PairEmbedBackward: y shorter than N·L")
	dp := grad32(dpos, L*C, "model: PairEmbedBackward: dpos shorter than L·C")
	dc := grad32(dchn, 3*C, "model: PairEmbedBackward: dchn shorter than 3·C")
	ds := grad32(dslot, T*C, "model: PairEmbedBackward: dslot shorter than T·C")
	if C == 0 {
		return
	}
	var dv []float32
	V := 0
	if dval != nil {
		dv = dval.F32()
		V = len(dv) / C
		dv = dv[:V*C]
		checkTokens(xs, V, "model: PairEmbedBackward: x index out of range")
		checkTokens(ys, V, "model: PairEmbedBackward: y index out of range")
	}
	// One float64 accumulator per destination element: val | pos | chn | slot.
	acc := c.scratch64((V + L + 3 + T) * C)
	av, ap, ac, as := acc[:V*C], acc[V*C:(V+L)*C], acc[(V+L)*C:(V+L+3)*C], acc[(V+L+3)*C:]
	for n := range N {
		for l := range L {
			gx := do[(n*S+l)*C : (n*S+l+1)*C]
			gy := do[(n*S+L+l)*C : (n*S+L+l+1)*C]
			p := ap[l*C : (l+1)*C]
			for i := range C {
				p[i] += float64(gx[i]) + float64(gy[i])
				ac[i] += float64(gx[i])
				ac[C+i] += float64(gy[i])
			}
			if dv != nil {
				vx := av[int(xs[n*L+l])*C:][:C]
				vy := av[int(ys[n*L+l])*C:][:C]
				for i := range C {
					vx[i] += float64(gx[i])
					vy[i] += float64(gy[i])
				}
			}
		}
		for t := range T {
			g := do[(n*S+2*L+t)*C : (n*S+2*L+t+1)*C]
			s := as[t*C : (t+1)*C]
			for i := range C {
				s[i] += float64(g[i])
				ac[2*C+i] += float64(g[i])
			}
		}
	}
	addTo(dv, av)
	addTo(dp, ap)
	addTo(dc, ac)
	addTo(ds, as)
}

// addTo does dst[i] += float32(acc[i]); a nil dst is skipped.
func addTo(dst []float32, acc []float64) {
	if dst == nil {
		return
	}
	acc = acc[:len(dst)]
	for i, s := range acc {
		dst[i] += float32(s)
	}
}

// ---------------------------------------------------------------------------
// LayerNorm.

const layerNormEps = 1e-5

// layerNormJob runs LayerNorm forward (rows), or its backward into dinp
// (rows); layerNormColsJob runs the backward into dw, db (columns).
type layerNormJob struct {
	out, mean, rstd, inp, w, b []float32
	dinp, dw, db, dout         []float32
	N, C                       int
	backward                   bool
	acc                        []float64 // (2,C): Σ norm·dout, Σ dout per column
}

func (j *layerNormJob) run(_, lo, hi int) {
	for n := lo; n < hi; n++ {
		if j.backward {
			j.backwardRow(n)
		} else {
			j.forwardRow(n)
		}
	}
}

// forwardRow normalises row n with mean and biased variance computed in
// float64.
func (j *layerNormJob) forwardRow(n int) {
	C := j.C
	x := j.inp[n*C : (n+1)*C]
	o := j.out[n*C : (n+1)*C]
	w, b := j.w[:C], j.b[:C]
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	m := s / float64(C)
	var ss float64
	for _, v := range x {
		d := float64(v) - m
		ss += d * d
	}
	rs := 1 / math.Sqrt(ss/float64(C)+layerNormEps)
	mf, rf := float32(m), float32(rs)
	j.mean[n], j.rstd[n] = mf, rf
	for i, v := range x {
		o[i] = (v-mf)*rf*w[i] + b[i]
	}
}

// backwardRow: dinp[n,:] += rstd·(dnorm − mean(dnorm) − norm·mean(dnorm·norm)),
// dnorm = w·dout, norm = (inp−mean)·rstd.
func (j *layerNormJob) backwardRow(n int) {
	C := j.C
	x := j.inp[n*C : (n+1)*C]
	g := j.dout[n*C : (n+1)*C]
	di := j.dinp[n*C : (n+1)*C]
	w := j.w[:C]
	mf, rf := j.mean[n], j.rstd[n]
	var dm, dnm float64
	for i, v := range x {
		norm := (v - mf) * rf
		dn := w[i] * g[i]
		dm += float64(dn)
		dnm += float64(dn * norm)
	}
	dmf, dnmf := float32(dm/float64(C)), float32(dnm/float64(C))
	for i, v := range x {
		norm := (v - mf) * rf
		dn := w[i] * g[i]
		di[i] += (dn - dmf - norm*dnmf) * rf
	}
}

type layerNormColsJob struct{ j *layerNormJob }

// run: dw[c] += Σ_n norm[n,c]·dout[n,c], db[c] += Σ_n dout[n,c] for
// columns [lo, hi), summed over n in order in float64.
func (k *layerNormColsJob) run(_, lo, hi int) {
	j := k.j
	C := j.C
	aw, ab := j.acc[lo:hi], j.acc[C+lo:C+hi]
	clear(aw)
	clear(ab)
	for n := range j.N {
		x := j.inp[n*C+lo : n*C+hi]
		g := j.dout[n*C+lo : n*C+hi]
		mf, rf := j.mean[n], j.rstd[n]
		for i, v := range x {
			norm := (v - mf) * rf
			aw[i] += float64(norm * g[i])
			ab[i] += float64(g[i])
		}
	}
	if j.dw != nil {
		addTo(j.dw[lo:hi], aw)
	}
	if j.db != nil {
		addTo(j.db[lo:hi], ab)
	}
}

// LayerNorm: out = (inp−mean)·rstd·w + b over C, eps 1e-5; saves mean, rstd.
// out, inp (N,C); w, b (C); mean, rstd (N).
func (c *CPU) LayerNorm(out, mean, rstd, inp, w, b *Tensor, N, C int) {
	CheckDims("model: LayerNorm: negative dimension", N, C)
	j := &c.ln
	j.out = f32(out, N*C, "model: LayerNorm: out shorter than N·C")
	j.mean = f32(mean, N, "model: LayerNorm: mean shorter than N")
	j.rstd = f32(rstd, N, "model: LayerNorm: rstd shorter than N")
	j.inp = f32(inp, N*C, "model: LayerNorm: inp shorter than N·C")
	j.w = f32(w, C, "model: LayerNorm: w shorter than C")
	j.b = f32(b, C, "model: LayerNorm: b shorter than C")
	j.N, j.C, j.backward = N, C, false
	c.pool.parallelFor(N, max(1, 4096/max(C, 1)), j)
	c.ln = layerNormJob{acc: j.acc}
}

// LayerNormBackward accumulates into dinp (N,C), dw, db (C).
func (c *CPU) LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd *Tensor, N, C int) {
	CheckDims("model: LayerNormBackward: negative dimension", N, C)
	j := &c.ln
	j.dinp = grad32(dinp, N*C, "model: LayerNormBackward: dinp shorter than N·C")
	j.dw = grad32(dw, C, "model: LayerNormBackward: dw shorter than C")
	j.db = grad32(db, C, "model: LayerNormBackward: db shorter than C")
	j.dout = f32(dout, N*C, "model: LayerNormBackward: dout shorter than N·C")
	j.inp = f32(inp, N*C, "model: LayerNormBackward: inp shorter than N·C")
	j.w = f32(w, C, "model: LayerNormBackward: w shorter than C")
	j.mean = f32(mean, N, "model: LayerNormBackward: mean shorter than N")
	j.rstd = f32(rstd, N, "model: LayerNormBackward: rstd shorter than N")
	j.N, j.C, j.backward = N, C, true
	if j.dinp != nil {
		c.pool.parallelFor(N, max(1, 2048/max(C, 1)), j)
	}
	if j.dw != nil || j.db != nil {
		if cap(j.acc) < 2*C {
			j.acc = make([]float64, 2*C)
		}
		j.acc = j.acc[:2*C]
		// Columns in chunks of at least 16 so rows are read in runs.
		if N*C < 8192 {
			c.lnCols.run(0, 0, C)
		} else {
			c.pool.parallelFor(C, 16, &c.lnCols)
		}
	}
	c.ln = layerNormJob{acc: j.acc}
}

// ---------------------------------------------------------------------------
// Attention.

// attnJob runs the attention forward or backward for (batch, head) pairs.
type attnJob struct {
	out, att, qkv       []float32 // forward
	dqkv, scratch, dout []float32 // backward
	B, S, C, NH         int
	backward            bool
}

func (j *attnJob) run(_, lo, hi int) {
	for bh := lo; bh < hi; bh++ {
		if j.backward {
			j.backwardHead(bh)
		} else {
			j.forwardHead(bh)
		}
	}
}

// forwardHead: for batch b and head h (bh = b·NH+h) and each query t,
// att[b,h,t,:] = softmax(q_t·k_t2 / sqrt(hs)), out[b,t,h·hs:] = Σ att·v.
func (j *attnJob) forwardHead(bh int) {
	S, C, NH := j.S, j.C, j.NH
	hs := C / NH
	b, h := bh/NH, bh%NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	for t := range S {
		q := j.qkv[(b*S+t)*3*C+h*hs:][:hs]
		row := j.att[(bh*S+t)*S:][:S]
		maxv := float32(math.Inf(-1))
		for t2 := range S {
			k := j.qkv[(b*S+t2)*3*C+C+h*hs:][:hs]
			var dot float32
			for i, qv := range q {
				dot += qv * k[i]
			}
			dot *= scale
			row[t2] = dot
			maxv = max(maxv, dot)
		}
		expNormalize(row, maxv)
		o := j.out[(b*S+t)*C+h*hs:][:hs]
		clear(o)
		for t2, a := range row {
			v := j.qkv[(b*S+t2)*3*C+2*C+h*hs:][:hs]
			for i, vv := range v {
				o[i] += a * vv
			}
		}
	}
}

// backwardHead accumulates dq, dk, dv of batch b, head h into dqkv. The
// scratch row first holds datt = dout·vᵀ, then dpreatt = att⊙(datt − Σ att·datt).
func (j *attnJob) backwardHead(bh int) {
	S, C, NH := j.S, j.C, j.NH
	hs := C / NH
	b, h := bh/NH, bh%NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	for t := range S {
		arow := j.att[(bh*S+t)*S:][:S]
		drow := j.scratch[(bh*S+t)*S:][:S]
		g := j.dout[(b*S+t)*C+h*hs:][:hs]
		// out = att·v
		for t2 := range S {
			v := j.qkv[(b*S+t2)*3*C+2*C+h*hs:][:hs]
			dv := j.dqkv[(b*S+t2)*3*C+2*C+h*hs:][:hs]
			a := arow[t2]
			var d float32
			for i, gv := range g {
				d += v[i] * gv
				dv[i] += a * gv
			}
			drow[t2] = d
		}
		// att = softmax(preatt)
		var dot float64
		for t2, a := range arow {
			dot += float64(a * drow[t2])
		}
		dotf := float32(dot)
		for t2, a := range arow {
			drow[t2] = a * (drow[t2] - dotf)
		}
		// preatt = scale·q·kᵀ
		q := j.qkv[(b*S+t)*3*C+h*hs:][:hs]
		dq := j.dqkv[(b*S+t)*3*C+h*hs:][:hs]
		for t2, d := range drow {
			k := j.qkv[(b*S+t2)*3*C+C+h*hs:][:hs]
			dk := j.dqkv[(b*S+t2)*3*C+C+h*hs:][:hs]
			gs := d * scale
			for i, kv := range k {
				dq[i] += gs * kv
				dk[i] += gs * q[i]
			}
		}
	}
}

// Attention: unmasked multi-head self-attention. out (B,S,C), att (B,NH,S,S)
// saved softmax, qkv (B,S,3C).
func (c *CPU) Attention(out, att, qkv *Tensor, B, S, C, NH int) {
	nqkv, natt, nout := AttentionDims("model: Attention: bad dimensions (need NH > 0 dividing C)", B, S, C, NH)
	j := &c.attn
	j.out = f32(out, nout, "model: Attention: out shorter than B·S·C")
	j.att = f32(att, natt, "model: Attention: att shorter than B·NH·S·S")
	j.qkv = f32(qkv, nqkv, "model: Attention: qkv shorter than B·S·3C")
	j.B, j.S, j.C, j.NH, j.backward = B, S, C, NH, false
	c.pool.parallelFor(B*NH, 1, j)
	*j = attnJob{}
}

// AttentionBackward accumulates into dqkv (B,S,3C); scratch (B,NH,S,S) is
// overwritten.
func (c *CPU) AttentionBackward(dqkv, scratch, dout, qkv, att *Tensor, B, S, C, NH int) {
	nqkv, natt, nout := AttentionDims("model: AttentionBackward: bad dimensions (need NH > 0 dividing C)", B, S, C, NH)
	j := &c.attn
	j.dqkv = f32(dqkv, nqkv, "model: AttentionBackward: dqkv shorter than B·S·3C")
	j.scratch = f32(scratch, natt, "model: AttentionBackward: scratch shorter than B·NH·S·S")
	j.dout = f32(dout, nout, "model: AttentionBackward: dout shorter than B·S·C")
	j.qkv = f32(qkv, nqkv, "model: AttentionBackward: qkv shorter than B·S·3C")
	j.att = f32(att, natt, "model: AttentionBackward: att shorter than B·NH·S·S")
	j.B, j.S, j.C, j.NH, j.backward = B, S, C, NH, true
	c.pool.parallelFor(B*NH, 1, j)
	*j = attnJob{}
}

// ---------------------------------------------------------------------------
// GELU.

// geluJob applies GELU or its backward to elements [lo, hi).
type geluJob struct {
	out, inp, dinp, dout []float32
	backward, acc        bool
}

const geluGrain = 2048

func (j *geluJob) run(_, lo, hi int) {
	x := j.inp[lo:hi]
	if !j.backward {
		o := j.out[lo:hi]
		for i, v := range x {
			o[i] = gelu(v)
		}
		return
	}
	di, g := j.dinp[lo:hi], j.dout[lo:hi]
	for i, v := range x {
		v := geluGrad(v, g[i])
		if j.acc {
			v += di[i]
		}
		di[i] = v
	}
}

// gelu is GELU(x) = x·Φ(x) in float64 (erf form), rounded to float32.
func gelu(x float32) float32 {
	xv := float64(x)
	return float32(0.5 * xv * (1 + math.Erf(xv*math.Sqrt2/2)))
}

// geluGrad is g·GELU'(x) = g·(Φ(x) + x·φ(x)) in float64, rounded to float32.
func geluGrad(x, g float32) float32 {
	xv := float64(x)
	cdf := 0.5 * (1 + math.Erf(xv*math.Sqrt2/2))
	pdf := math.Exp(-0.5*xv*xv) / math.Sqrt(2*math.Pi)
	return float32(float64(g) * (cdf + xv*pdf))
}

// GELU: out = inp·Φ(inp), exact erf form, computed per element in float64.
func (c *CPU) GELU(out, inp *Tensor) {
	if out.Len() != inp.Len() {
		panic("model: GELU: length mismatch")
	}
	j := &c.gelu
	j.out, j.inp, j.backward = out.F32(), inp.F32(), false
	c.pool.parallelFor(len(j.inp), geluGrain, j)
	*j = geluJob{}
}

// GELUBackward: dinp += dout·(Φ(inp) + inp·φ(inp)) (acc false: dinp =).
func (c *CPU) GELUBackward(dinp, dout, inp *Tensor, acc bool) {
	if dinp.Len() != inp.Len() || dout.Len() != inp.Len() {
		panic("model: GELUBackward: length mismatch")
	}
	j := &c.gelu
	j.dinp, j.dout, j.inp, j.backward, j.acc = dinp.F32(), dout.F32(), inp.F32(), true, acc
	c.pool.parallelFor(len(j.inp), geluGrain, j)
	*j = geluJob{}
}

// biasGELUJob applies GELU(inp + bias[r]) or its gradient to elements [lo, hi)
// of (R, m, C) rows; the sum inp + bias is rounded to float32 first, as
// AddRows or Add followed by GELU would.
type biasGELUJob struct {
	out, inp, bias, dout, d []float32
	m, C                    int
	backward, acc           bool
}

func (j *biasGELUJob) run(_, lo, hi int) {
	for i := lo; i < hi; {
		n := i / j.C // row of inp
		end := min(hi, (n+1)*j.C)
		b0 := (n/j.m)*j.C + i - n*j.C
		x, b := j.inp[i:end], j.bias[b0:b0+end-i]
		if !j.backward {
			o := j.out[i:end]
			for k, v := range x {
				o[k] = gelu(v + b[k])
			}
		} else {
			g, d := j.dout[i:end], j.d[i:end]
			for k, v := range x {
				v := geluGrad(v+b[k], g[k])
				if j.acc {
					v += d[k]
				}
				d[k] = v
			}
		}
		i = end
	}
}

// BiasGELU: out[r,j,:] = GELU(inp[r,j,:] + bias[r,:]) for j < m, the sum
// rounded to float32 first. out, inp (R,m,C), bias (R,C).
func (c *CPU) BiasGELU(out, inp, bias *Tensor, R, m, C int) {
	CheckDims("model: BiasGELU: negative dimension", R, m, C)
	j := &c.biasGELU
	j.out = f32(out, R*m*C, "model: BiasGELU: out shorter than R·m·C")
	j.inp = f32(inp, R*m*C, "model: BiasGELU: inp shorter than R·m·C")
	j.bias = f32(bias, R*C, "model: BiasGELU: bias shorter than R·C")
	if R*m*C == 0 {
		*j = biasGELUJob{}
		return
	}
	j.m, j.C, j.backward = m, C, false
	c.pool.parallelFor(R*m*C, geluGrain, j)
	*j = biasGELUJob{}
}

// BiasGELUBackward: with d = dout·GELU'(inp + bias[r]) per element, dinp += d
// (acc false: dinp = d; nil: skipped) and dbias[r,:] += Σ_j d[r,j,:], summed
// in float64 in row order (nil: skipped).
func (c *CPU) BiasGELUBackward(dinp, dbias, dout, inp, bias *Tensor, R, m, C int, acc bool) {
	CheckDims("model: BiasGELUBackward: negative dimension", R, m, C)
	n := R * m * C
	j := &c.biasGELU
	j.inp = f32(inp, n, "model: BiasGELUBackward: inp shorter than R·m·C")
	j.bias = f32(bias, R*C, "model: BiasGELUBackward: bias shorter than R·C")
	j.dout = f32(dout, n, "model: BiasGELUBackward: dout shorter than R·m·C")
	di := grad32(dinp, n, "model: BiasGELUBackward: dinp shorter than R·m·C")
	var db []float32
	if dbias != nil {
		db = f32(dbias, R*C, "model: BiasGELUBackward: dbias shorter than R·C")
	}
	defer func() { *j = biasGELUJob{} }()
	if n == 0 || (di == nil && db == nil) {
		return
	}
	j.m, j.C, j.backward = m, C, true
	// d goes straight into dinp when dinp is overwritten or there is no
	// bias gradient; otherwise into scratch first.
	if di != nil && (!acc || db == nil) {
		j.d, j.acc = di[:n], acc
		c.pool.parallelFor(n, geluGrain, j)
		if db == nil {
			return
		}
	} else {
		if cap(c.f32) < n {
			c.f32 = make([]float32, n)
		}
		j.d, j.acc = c.f32[:n], false
		c.pool.parallelFor(n, geluGrain, j)
		if di != nil {
			for i, v := range j.d {
				di[i] += v
			}
		}
	}
	s := c.scratch64(C)
	for r := range R {
		clear(s)
		for k := range m {
			for i, v := range j.d[(r*m+k)*C : (r*m+k+1)*C] {
				s[i] += float64(v)
			}
		}
		for i, v := range s {
			db[r*C+i] += float32(v)
		}
	}
}

// ---------------------------------------------------------------------------
// Row slicing, pooling, repetition, transposition.

// SliceRows: out[n,r,:] = inp[n,start+r,:]. out (N,R,C), inp (N,S,C).
func (c *CPU) SliceRows(out, inp *Tensor, N, S, start, R, C int) {
	CheckDims("model: SliceRows: negative dimension", N, S, start, R, C)
	if start+R > S {
		panic("model: SliceRows: start+R beyond S")
	}
	os := f32(out, N*R*C, "model: SliceRows: out shorter than N·R·C")
	is := f32(inp, N*S*C, "model: SliceRows: inp shorter than N·S·C")
	for n := range N {
		copy(os[n*R*C:(n+1)*R*C], is[(n*S+start)*C:(n*S+start+R)*C])
	}
}

// SliceRowsBackward: dinp[n,start+r,:] += dout[n,r,:].
func (c *CPU) SliceRowsBackward(dinp, dout *Tensor, N, S, start, R, C int) {
	CheckDims("model: SliceRowsBackward: negative dimension", N, S, start, R, C)
	if start+R > S {
		panic("model: SliceRowsBackward: start+R beyond S")
	}
	di := f32(dinp, N*S*C, "model: SliceRowsBackward: dinp shorter than N·S·C")
	do := f32(dout, N*R*C, "model: SliceRowsBackward: dout shorter than N·R·C")
	for n := range N {
		d := di[(n*S+start)*C : (n*S+start+R)*C]
		for i, g := range do[n*R*C : (n+1)*R*C] {
			d[i] += g
		}
	}
}

// PoolPairs pools the m pair encodings of each of B specifications, in
// float64: loo: out[b,i,:] = (Σ_j inp[b,j,:] − inp[b,i,:])/(m−1), out (B,m,C);
// mean: out[b,:] = Σ_j inp[b,j,:]/m, out (B,C). inp (B,m,C).
func (c *CPU) PoolPairs(out, inp *Tensor, B, m, C int, loo bool) {
	nout := PoolPairsDims(B, m, C, loo)
	os := f32(out, nout, "model: PoolPairs: out too short")
	is := f32(inp, B*m*C, "model: PoolPairs: inp shorter than B·m·C")
	for b := range B {
		x := is[b*m*C : (b+1)*m*C]
		for k := range C {
			var s float64
			for j := range m {
				s += float64(x[j*C+k])
			}
			if loo {
				for i := range m {
					os[(b*m+i)*C+k] = float32((s - float64(x[i*C+k])) / float64(m-1))
				}
			} else {
				os[b*C+k] = float32(s / float64(m))
			}
		}
	}
}

// PoolPairsBackward accumulates into dinp (B,m,C): loo:
// dinp[b,j,:] += (Σ_i dout[b,i,:] − dout[b,j,:])/(m−1); mean:
// dinp[b,j,:] += dout[b,:]/m.
func (c *CPU) PoolPairsBackward(dinp, dout *Tensor, B, m, C int, loo bool) {
	nout := PoolPairsDims(B, m, C, loo)
	di := f32(dinp, B*m*C, "model: PoolPairsBackward: dinp shorter than B·m·C")
	do := f32(dout, nout, "model: PoolPairsBackward: dout too short")
	for b := range B {
		d := di[b*m*C : (b+1)*m*C]
		for k := range C {
			if !loo {
				g := float32(float64(do[b*C+k]) / float64(m))
				for j := range m {
					d[j*C+k] += g
				}
				continue
			}
			g := do[b*m*C : (b+1)*m*C]
			var s float64
			for i := range m {
				s += float64(g[i*C+k])
			}
			for j := range m {
				d[j*C+k] += float32((s - float64(g[j*C+k])) / float64(m-1))
			}
		}
	}
}

// RepeatRows: out[r,j,:] = inp[r,:] for j < m. out (R,m,C), inp (R,C).
func (c *CPU) RepeatRows(out, inp *Tensor, R, m, C int) {
	CheckDims("model: RepeatRows: negative dimension", R, m, C)
	os := f32(out, R*m*C, "model: RepeatRows: out shorter than R·m·C")
	is := f32(inp, R*C, "model: RepeatRows: inp shorter than R·C")
	if C == 1 { // one-element rows (exec sym's z_t,k over its map's outputs): a fill, not m copies
		for r, v := range is {
			o := os[r*m : (r+1)*m]
			for j := range o {
				o[j] = v
			}
		}
		return
	}
	for r := range R {
		for j := range m {
			copy(os[(r*m+j)*C:(r*m+j+1)*C], is[r*C:(r+1)*C])
		}
	}
}

// RepeatRowsBackward: dinp[r,:] += Σ_j dout[r,j,:], summed in float64.
func (c *CPU) RepeatRowsBackward(dinp, dout *Tensor, R, m, C int) {
	CheckDims("model: RepeatRowsBackward: negative dimension", R, m, C)
	di := f32(dinp, R*C, "model: RepeatRowsBackward: dinp shorter than R·C")
	do := f32(dout, R*m*C, "model: RepeatRowsBackward: dout shorter than R·m·C")
	for r := range R {
		d := di[r*C : (r+1)*C]
		for k := range C {
			var s float64
			for j := range m {
				s += float64(do[(r*m+j)*C+k])
			}
			d[k] += float32(s)
		}
	}
}

// Transpose01: out[b,a,:] = inp[a,b,:] (acc: +=). out (B,A,C), inp (A,B,C).
func (c *CPU) Transpose01(out, inp *Tensor, A, B, C int, acc bool) {
	CheckDims("model: Transpose01: negative dimension", A, B, C)
	os := f32(out, A*B*C, "model: Transpose01: out shorter than A·B·C")
	is := f32(inp, A*B*C, "model: Transpose01: inp shorter than A·B·C")
	for a := range A {
		for b := range B {
			src := is[(a*B+b)*C : (a*B+b+1)*C]
			dst := os[(b*A+a)*C : (b*A+a+1)*C]
			if !acc {
				copy(dst, src)
				continue
			}
			for i, v := range src {
				dst[i] += v
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Gumbel noise, softmax, one-hot.

// Gumbel overwrites dst with −log(−log u), u = GumbelUniform(seed, i).
func (c *CPU) Gumbel(dst *Tensor, seed uint64) {
	ds := dst.F32()
	for i := range ds {
		u := GumbelUniform(seed, uint64(i))
		ds[i] = float32(-math.Log(-math.Log(u)))
	}
}

// softmaxJob runs the softmax forward or backward on rows [lo, hi).
type softmaxJob struct {
	out, logits, noise, dlogits, dout []float32
	tau                               float32
	K                                 int
	backward, acc                     bool
}

func (j *softmaxJob) run(_, lo, hi int) {
	K := j.K
	for n := lo; n < hi; n++ {
		o := j.out[n*K : (n+1)*K]
		if j.backward {
			softmaxRowBackward(j.dlogits[n*K:(n+1)*K], j.dout[n*K:(n+1)*K], o, 1, j.tau, j.acc)
			continue
		}
		var nz []float32
		if j.noise != nil {
			nz = j.noise[n*K : (n+1)*K]
		}
		softmaxRow(o, j.logits[n*K:(n+1)*K], nil, nz, j.tau)
	}
}

// softmaxRow writes o = softmax((l + bias + noise)/tau) for one row, the
// row maximum subtracted, exp and sum in float64 (bias, noise nil: none):
// the operations, and their order, that every backend follows. The bias
// sum is rounded to float32 first, as AddRows rounds it.
func softmaxRow(o, l, bias, noise []float32, tau float32) {
	maxv := float32(math.Inf(-1))
	for k, v := range l {
		if bias != nil {
			v += bias[k]
		}
		if noise != nil {
			v += noise[k]
		}
		v /= tau
		o[k] = v
		maxv = max(maxv, v)
	}
	expNormalize(o, maxv)
}

// expNormalize turns the row o, whose maximum is maxv, into its softmax:
// exp(o − maxv) rounded to float32, summed in float64, then each scaled by
// the sum's reciprocal in float64 (the softmax's and attention's tail).
func expNormalize(o []float32, maxv float32) {
	var sum float64
	for k, v := range o {
		e := math.Exp(float64(v - maxv))
		o[k] = float32(e)
		sum += e
	}
	inv := 1 / sum
	for k, v := range o {
		o[k] = float32(float64(v) * inv)
	}
}

// softmaxRowBackward is one row of SoftmaxBackward with dout scaled by s
// first (s·dout rounded to float32; s = 1 leaves it as is): dl (+)= p⊙(s·g −
// Σ_k s·g·p)/tau in float64.
func softmaxRowBackward(dl, g, p []float32, s, tau float32, acc bool) {
	var dot float64
	for k, pk := range p {
		dot += float64(pk) * float64(s*g[k])
	}
	inv := 1 / float64(tau)
	for k, pk := range p {
		v := float32(float64(pk) * (float64(s*g[k]) - dot) * inv)
		if acc {
			v += dl[k]
		}
		dl[k] = v
	}
}

// Softmax: out[n,:] = softmax((logits[n,:] + noise[n,:])/tau) over K, with
// the row maximum subtracted. noise may be nil. out, logits, noise (N,K).
func (c *CPU) Softmax(out, logits, noise *Tensor, tau float32, N, K int) {
	CheckDims("model: Softmax: negative dimension", N, K)
	if !(tau > 0) {
		panic("model: Softmax: tau must be positive")
	}
	j := &c.softmax
	j.out = f32(out, N*K, "model: Softmax: out shorter than N·K")
	j.logits = f32(logits, N*K, "model: Softmax: logits shorter than N·K")
	if noise != nil {
		j.noise = f32(noise, N*K, "model: Softmax: noise shorter than N·K")
	}
	j.tau, j.K, j.backward = tau, K, false
	c.pool.parallelFor(N, max(1, 2048/max(K, 1)), j)
	*j = softmaxJob{}
}

// SoftmaxBackward: dlogits += out⊙(dout − Σ_k dout·out)/tau (acc false: dlogits =).
func (c *CPU) SoftmaxBackward(dlogits, dout, out *Tensor, tau float32, N, K int, acc bool) {
	CheckDims("model: SoftmaxBackward: negative dimension", N, K)
	if !(tau > 0) {
		panic("model: SoftmaxBackward: tau must be positive")
	}
	j := &c.softmax
	j.dlogits = f32(dlogits, N*K, "model: SoftmaxBackward: dlogits shorter than N·K")
	j.dout = f32(dout, N*K, "model: SoftmaxBackward: dout shorter than N·K")
	j.out = f32(out, N*K, "model: SoftmaxBackward: out shorter than N·K")
	j.tau, j.K, j.backward, j.acc = tau, K, true, acc
	c.pool.parallelFor(N, max(1, 2048/max(K, 1)), j)
	*j = softmaxJob{}
}

// OneHot: out[n,:] = onehot(idx[n]) over K. out (N,K), idx (N) int.
func (c *CPU) OneHot(out, idx *Tensor, N, K int) {
	CheckDims("model: OneHot: negative dimension", N, K)
	os := f32(out, N*K, "model: OneHot: out shorter than N·K")
	is := i32(idx, N, "model: OneHot: idx shorter than N")
	checkTokens(is, K, "model: OneHot: index out of range")
	clear(os)
	for n, k := range is {
		os[n*K+int(k)] = 1
	}
}

// argmax returns the index of the first maximum of x (0 for an empty x).
func argmax(x []float32) int {
	best := 0
	for k, v := range x {
		if v > x[best] {
			best = k
		}
	}
	return best
}

// ArgmaxOneHot: out[n,:] = onehot(argmax_k logits[n,k]), first max wins.
func (c *CPU) ArgmaxOneHot(out, logits *Tensor, N, K int) {
	CheckDims("model: ArgmaxOneHot: negative dimension", N, K)
	os := f32(out, N*K, "model: ArgmaxOneHot: out shorter than N·K")
	ls := f32(logits, N*K, "model: ArgmaxOneHot: logits shorter than N·K")
	if K == 0 {
		return
	}
	clear(os)
	for n := range N {
		os[n*K+argmax(ls[n*K:(n+1)*K])] = 1
	}
}

// ---------------------------------------------------------------------------
// The interpreter's skip gate.

// SkipMix: g = z[n,skip], out[n,:] = g·prev[n,:] + (1−g)·hat[n,:].
// out, prev, hat (N,D); z (N,K).
func (c *CPU) SkipMix(out, prev, hat, z *Tensor, N, D, K, skip int) {
	CheckDims("model: SkipMix: negative dimension", N, D, K)
	if skip < 0 || skip >= K {
		panic("model: SkipMix: skip outside [0, K)")
	}
	os := f32(out, N*D, "model: SkipMix: out shorter than N·D")
	ps := f32(prev, N*D, "model: SkipMix: prev shorter than N·D")
	hs := f32(hat, N*D, "model: SkipMix: hat shorter than N·D")
	zs := f32(z, N*K, "model: SkipMix: z shorter than N·K")
	for n := range N {
		g := zs[n*K+skip]
		o, p, h := os[n*D:(n+1)*D], ps[n*D:(n+1)*D], hs[n*D:(n+1)*D]
		for i := range o {
			o[i] = g*p[i] + (1-g)*h[i]
		}
	}
}

// softmaxMixJob runs SoftmaxMix or its backward on gate rows [lo, hi).
type softmaxMixJob struct {
	out, hat, logits, bias, noise, prev, z []float32
	dlogits, dprev, dz, dout               []float32
	tau                                    float32
	D, K, Db, Kz, skip                     int
	backward                               bool
	acc                                    SkipMixAcc
}

func (j *softmaxMixJob) run(_, lo, hi int) {
	D, K := j.D, j.K
	for n := lo; n < hi; n++ {
		g := j.z[n*j.Kz+j.skip]
		if j.backward {
			j.backwardRow(n, g)
			continue
		}
		for r := n * D; r < (n+1)*D; r += K {
			o := j.hat[r : r+K]
			var b, nz []float32
			if j.bias != nil {
				b = j.bias[r%j.Db : r%j.Db+K]
			}
			if j.noise != nil {
				nz = j.noise[r : r+K]
			}
			softmaxRow(o, j.logits[r:r+K], b, nz, j.tau)
			p, m := j.prev[r:r+K], j.out[r:r+K]
			for k, h := range o {
				m[k] = g*p[k] + (1-g)*h
			}
		}
	}
}

// backwardRow is SoftmaxMixBackward for gate row n with gate g.
func (j *softmaxMixJob) backwardRow(n int, g float32) {
	D, K := j.D, j.K
	lo, hi := n*D, (n+1)*D
	gd := j.dout[lo:hi]
	if j.dprev != nil {
		row := j.dprev[lo:hi]
		for i, v := range gd {
			if j.acc&SkipMixAccPrev != 0 {
				row[i] += g * v
			} else {
				row[i] = g * v
			}
		}
	}
	if j.dlogits != nil {
		for r := lo; r < hi; r += K {
			softmaxRowBackward(j.dlogits[r:r+K], j.dout[r:r+K], j.hat[r:r+K], 1-g, j.tau, j.acc&SkipMixAccHat != 0)
		}
	}
	if j.dz != nil {
		p, h := j.prev[lo:hi], j.hat[lo:hi]
		var s float64
		for i, v := range gd {
			s += float64(v) * (float64(p[i]) - float64(h[i]))
		}
		if j.acc&SkipMixAccZ != 0 {
			j.dz[n*j.Kz+j.skip] += float32(s)
		} else {
			clear(j.dz[n*j.Kz : (n+1)*j.Kz])
			j.dz[n*j.Kz+j.skip] = float32(s)
		}
	}
}

// CheckSoftmaxMix panics with a "model: …" message unless N, D, K, Kz, skip
// and tau are valid arguments of SoftmaxMix (backward false) or its backward
// (true) on any backend: dimensions non-negative, tau > 0, skip in [0, Kz), D
// a positive multiple of K.
func CheckSoftmaxMix(backward bool, tau float32, N, D, K, Kz, skip int) {
	msgs := &softmaxMixMsgs
	if backward {
		msgs = &softmaxMixBackwardMsgs
	}
	CheckDims(msgs[0], N, D, K, Kz)
	if !(tau > 0) {
		panic(msgs[1])
	}
	if skip < 0 || skip >= Kz {
		panic(msgs[2])
	}
	if K == 0 || D%K != 0 {
		panic(msgs[3])
	}
}

var (
	softmaxMixMsgs = [4]string{"model: SoftmaxMix: negative dimension", "model: SoftmaxMix: tau must be positive",
		"model: SoftmaxMix: skip outside [0, Kz)", "model: SoftmaxMix: D is not a positive multiple of K"}
	softmaxMixBackwardMsgs = [4]string{"model: SoftmaxMixBackward: negative dimension", "model: SoftmaxMixBackward: tau must be positive",
		"model: SoftmaxMixBackward: skip outside [0, Kz)", "model: SoftmaxMixBackward: D is not a positive multiple of K"}
)

// SoftmaxMix: hat = softmax((logits + bias + noise)/tau) over each K
// elements, out = g·prev + (1−g)·hat with g = z[n,skip] (see Backend).
func (c *CPU) SoftmaxMix(out, hat, logits, bias, noise, prev, z *Tensor, tau float32, N, D, K, Db, Kz, skip int) {
	CheckSoftmaxMix(false, tau, N, D, K, Kz, skip)
	j := &c.mix
	*j = softmaxMixJob{tau: tau, D: D, K: K, Db: Db, Kz: Kz, skip: skip}
	j.out = f32(out, N*D, "model: SoftmaxMix: out shorter than N·D")
	j.hat = f32(hat, N*D, "model: SoftmaxMix: hat shorter than N·D")
	j.logits = f32(logits, N*D, "model: SoftmaxMix: logits shorter than N·D")
	j.prev = f32(prev, N*D, "model: SoftmaxMix: prev shorter than N·D")
	j.z = f32(z, N*Kz, "model: SoftmaxMix: z shorter than N·Kz")
	if noise != nil {
		j.noise = f32(noise, N*D, "model: SoftmaxMix: noise shorter than N·D")
	}
	if bias != nil {
		if Db <= 0 || Db%K != 0 {
			panic("model: SoftmaxMix: Db is not a positive multiple of K")
		}
		j.bias = f32(bias, Db, "model: SoftmaxMix: bias shorter than Db")
	}
	c.pool.parallelFor(N, max(1, 2048/max(D, 1)), j)
	*j = softmaxMixJob{}
}

// SoftmaxMixBackward: dlogits, dprev and dz of SoftmaxMix (see Backend).
func (c *CPU) SoftmaxMixBackward(dlogits, dprev, dz, dout, prev, hat, z *Tensor, tau float32, N, D, K, Kz, skip int, acc SkipMixAcc) {
	CheckSoftmaxMix(true, tau, N, D, K, Kz, skip)
	j := &c.mix
	*j = softmaxMixJob{tau: tau, D: D, K: K, Kz: Kz, skip: skip, backward: true, acc: acc}
	j.dlogits = grad32(dlogits, N*D, "model: SoftmaxMixBackward: dlogits shorter than N·D")
	j.dprev = grad32(dprev, N*D, "model: SoftmaxMixBackward: dprev shorter than N·D")
	j.dz = grad32(dz, N*Kz, "model: SoftmaxMixBackward: dz shorter than N·Kz")
	j.dout = f32(dout, N*D, "model: SoftmaxMixBackward: dout shorter than N·D")
	j.prev = f32(prev, N*D, "model: SoftmaxMixBackward: prev shorter than N·D")
	j.hat = f32(hat, N*D, "model: SoftmaxMixBackward: hat shorter than N·D")
	j.z = f32(z, N*Kz, "model: SoftmaxMixBackward: z shorter than N·Kz")
	c.pool.parallelFor(N, max(1, 2048/max(D, 1)), j)
	*j = softmaxMixJob{}
}

// SkipMixBackward accumulates dprev += g·dout, dhat += (1−g)·dout and
// dz[n,skip] += Σ_d dout·(prev − hat) (summed in float64); the outputs
// whose flag in acc is clear are overwritten instead (dz's whole rows).
func (c *CPU) SkipMixBackward(dprev, dhat, dz, dout, prev, hat, z *Tensor, N, D, K, skip int, acc SkipMixAcc) {
	CheckDims("model: SkipMixBackward: negative dimension", N, D, K)
	if skip < 0 || skip >= K {
		panic("model: SkipMixBackward: skip outside [0, K)")
	}
	dp := grad32(dprev, N*D, "model: SkipMixBackward: dprev shorter than N·D")
	dh := grad32(dhat, N*D, "model: SkipMixBackward: dhat shorter than N·D")
	dzs := grad32(dz, N*K, "model: SkipMixBackward: dz shorter than N·K")
	do := f32(dout, N*D, "model: SkipMixBackward: dout shorter than N·D")
	ps := f32(prev, N*D, "model: SkipMixBackward: prev shorter than N·D")
	hs := f32(hat, N*D, "model: SkipMixBackward: hat shorter than N·D")
	zs := f32(z, N*K, "model: SkipMixBackward: z shorter than N·K")
	for n := range N {
		g := zs[n*K+skip]
		gd := do[n*D : (n+1)*D]
		if dp != nil {
			row := dp[n*D : (n+1)*D]
			if acc&SkipMixAccPrev != 0 {
				for i, v := range gd {
					row[i] += g * v
				}
			} else {
				for i, v := range gd {
					row[i] = g * v
				}
			}
		}
		if dh != nil {
			row := dh[n*D : (n+1)*D]
			if acc&SkipMixAccHat != 0 {
				for i, v := range gd {
					row[i] += (1 - g) * v
				}
			} else {
				for i, v := range gd {
					row[i] = (1 - g) * v
				}
			}
		}
		if dzs != nil {
			p, h := ps[n*D:(n+1)*D], hs[n*D:(n+1)*D]
			var s float64
			for i, v := range gd {
				s += float64(v) * (float64(p[i]) - float64(h[i]))
			}
			if acc&SkipMixAccZ != 0 {
				dzs[n*K+skip] += float32(s)
			} else {
				clear(dzs[n*K : (n+1)*K])
				dzs[n*K+skip] = float32(s)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Losses and scores.

const probFloor = 1e-8 // probabilities are clamped here before a log

// NLL: out[0] = scale·Σ_n −log(max(p[n,y[n]], 1e-8)), in float64.
// p (N,V), y (N) int, out (1).
func (c *CPU) NLL(out, p, y *Tensor, N, V int, scale float32) {
	CheckDims("model: NLL: negative dimension", N, V)
	os := f32(out, 1, "model: NLL: out is empty")
	ps := f32(p, N*V, "model: NLL: p shorter than N·V")
	ys := i32(y, N, "model: NLL: y shorter than N")
	checkTokens(ys, V, "model: NLL: target out of range")
	var s float64
	for n, t := range ys {
		s -= math.Log(max(float64(ps[n*V+int(t)]), probFloor))
	}
	os[0] = float32(float64(scale) * s)
}

// NLLBackward: dp[n,y[n]] += −dout[0]·scale/p[n,y[n]] where p > 1e-8.
func (c *CPU) NLLBackward(dp, dout, p, y *Tensor, N, V int, scale float32) {
	CheckDims("model: NLLBackward: negative dimension", N, V)
	dps := f32(dp, N*V, "model: NLLBackward: dp shorter than N·V")
	do := f32(dout, 1, "model: NLLBackward: dout is empty")
	ps := f32(p, N*V, "model: NLLBackward: p shorter than N·V")
	ys := i32(y, N, "model: NLLBackward: y shorter than N")
	checkTokens(ys, V, "model: NLLBackward: target out of range")
	g := -float64(do[0]) * float64(scale)
	for n, t := range ys {
		i := n*V + int(t)
		if pv := float64(ps[i]); pv > probFloor {
			dps[i] += float32(g / pv)
		}
	}
}

// SeqScore: loglik[r] = Σ_l log(max(p[r,l,y],1e-8)) and exact[r] = 1 when
// argmax_v p[r,l,:] == y[r,l] at every l (first max wins), else 0.
// p (R,L,V), y (R,L) int, loglik, exact (R).
func (c *CPU) SeqScore(loglik, exact, p, y *Tensor, R, L, V int) {
	CheckDims("model: SeqScore: negative dimension", R, L, V)
	ll := f32(loglik, R, "model: SeqScore: loglik shorter than R")
	ex := f32(exact, R, "model: SeqScore: exact shorter than R")
	ps := f32(p, R*L*V, "model: SeqScore: p shorter than R·L·V")
	ys := i32(y, R*L, "model: SeqScore: y shorter than R·L")
	checkTokens(ys, V, "model: SeqScore: target out of range")
	for r := range R {
		var s float64
		ok := float32(1)
		for l := range L {
			row := ps[(r*L+l)*V : (r*L+l+1)*V]
			t := int(ys[r*L+l])
			s += math.Log(max(float64(row[t]), probFloor))
			if argmax(row) != t {
				ok = 0
			}
		}
		ll[r], ex[r] = float32(s), ok
	}
}

const reuseCap = 1 - 1e-6 // q is clamped here before log1p(−q)

// reuseSums returns S_d = Σ_n log1p(−min(q[n,d], 1−1e-6)) in scratch.
func (c *CPU) reuseSums(qs []float32, N, D int) []float64 {
	S := c.scratch64(D)
	for n := range N {
		for d, v := range qs[n*D : (n+1)*D] {
			S[d] += math.Log1p(-min(float64(v), reuseCap))
		}
	}
	return S
}

// ReuseReg: out[0] = Σ_d [1 − exp(Σ_n log1p(−min(q[n,d], 1−1e-6)))], in
// float64. q (N,D), out (1).
func (c *CPU) ReuseReg(out, q *Tensor, N, D int) {
	CheckDims("model: ReuseReg: negative dimension", N, D)
	os := f32(out, 1, "model: ReuseReg: out is empty")
	qs := f32(q, N*D, "model: ReuseReg: q shorter than N·D")
	var s float64
	for _, Sd := range c.reuseSums(qs, N, D) {
		s += 1 - math.Exp(Sd)
	}
	os[0] = float32(s)
}

// ReuseRegBackward: dq[n,d] += dout[0]·exp(S_d)/(1−q[n,d]) where q < 1−1e-6.
func (c *CPU) ReuseRegBackward(dq, dout, q *Tensor, N, D int) {
	CheckDims("model: ReuseRegBackward: negative dimension", N, D)
	dqs := f32(dq, N*D, "model: ReuseRegBackward: dq shorter than N·D")
	do := f32(dout, 1, "model: ReuseRegBackward: dout is empty")
	qs := f32(q, N*D, "model: ReuseRegBackward: q shorter than N·D")
	S := c.reuseSums(qs, N, D)
	g := float64(do[0])
	for d, Sd := range S {
		S[d] = g * math.Exp(Sd)
	}
	for n := range N {
		for d, v := range qs[n*D : (n+1)*D] {
			if qv := float64(v); qv < reuseCap {
				dqs[n*D+d] += float32(S[d] / (1 - qv))
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Optimiser support.

// sumSquaresBlock is the fixed block of SumSquares: each block's float64 sum
// is computed in order, then the block sums are added in order, whatever the
// number of workers.
const sumSquaresBlock = 1 << 12

type sumSquaresJob struct {
	x       []float32
	partial []float64
}

func (j *sumSquaresJob) run(_, lo, hi int) {
	for blk := lo; blk < hi; blk++ {
		x := j.x[blk*sumSquaresBlock : min((blk+1)*sumSquaresBlock, len(j.x))]
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		j.partial[blk] = s
	}
}

// SumSquares: out[0] = Σ x², in float64 over fixed blocks.
func (c *CPU) SumSquares(out, x *Tensor) {
	os := f32(out, 1, "model: SumSquares: out is empty")
	j := &c.sumsq
	j.x = x.F32()
	blocks := (len(j.x) + sumSquaresBlock - 1) / sumSquaresBlock
	if cap(j.partial) < blocks {
		j.partial = make([]float64, blocks)
	}
	j.partial = j.partial[:blocks]
	c.pool.parallelFor(blocks, 16, j)
	var s float64
	for _, v := range j.partial {
		s += v
	}
	os[0] = float32(s)
	j.x = nil
}

// decimal64 returns the float64 of the shortest decimal that rounds to x:
// a hyperparameter written 0.999 is used as 0.999 (as PyTorch, whose
// hyperparameters are Python floats, uses it) rather than as float32(0.999)
// = 0.99900001287, whose error 1−β would amplify a thousandfold.
func decimal64(x float32) float64 {
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], float64(x), 'g', -1, 32)
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return float64(x)
	}
	return v
}

// AdamW updates p in place as torch.optim.AdamW: with g' = g·gradScale,
//
//	p −= lr·wd·p
//	m = β1·m + (1−β1)·g'           v = β2·v + (1−β2)·g'²
//	p −= lr·(m/(1−β1^step)) / (sqrt(v/(1−β2^step)) + eps)
//
// computed per element in float64 (hyperparameters through decimal64) and
// stored as float32. step counts from 1.
func (c *CPU) AdamW(p, g, m, v *Tensor, lr, beta1, beta2, eps, wd, gradScale float32, step int) {
	n := p.Len()
	if g.Len() != n || m.Len() != n || v.Len() != n {
		panic("model: AdamW: length mismatch")
	}
	if step < 1 {
		panic("model: AdamW: step counts from 1")
	}
	ps, gs, ms, vs := p.F32(), g.F32(), m.F32(), v.F32()
	gs, ms, vs = gs[:n], ms[:n], vs[:n]
	b1, b2 := decimal64(beta1), decimal64(beta2)
	bc1 := 1 - math.Pow(b1, float64(step))
	bc2 := 1 - math.Pow(b2, float64(step))
	lr64, e := decimal64(lr), decimal64(eps)
	decay := 1 - lr64*decimal64(wd)
	for i, pv := range ps {
		gv := float64(gs[i] * gradScale)
		ms[i] = float32(b1*float64(ms[i]) + (1-b1)*gv)
		vs[i] = float32(b2*float64(vs[i]) + (1-b2)*gv*gv)
		mhat, vhat := float64(ms[i])/bc1, float64(vs[i])/bc2
		ps[i] = float32(float64(pv)*decay - lr64*mhat/(math.Sqrt(vhat)+e))
	}
}
