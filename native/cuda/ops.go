//go:build cuda

// Every op of the closed list (model/backend.go): argument checks that panic
// as the CPU backend does, then kernel launches (kernels/*.cu) or cuBLAS
// calls. The comment of each kernel says how it mirrors model/cpu.go.

package cuda

import (
	"math"
	"strconv"

	"gorgonia.org/cu"

	"github.com/nli-go/nli/model"
)

// ---------------------------------------------------------------------------
// Argument checks.

// need panics with msg when t is nil or shorter than n, or views host memory.
func need(t *model.Tensor, n int, msg string) {
	if t == nil || t.Len() < n {
		panic(msg)
	}
	onDevice(t, msg)
}

// needGrad is need for an optional gradient output (nil passes).
func needGrad(t *model.Tensor, n int, msg string) {
	if t != nil {
		need(t, n, msg)
	}
}

// ---------------------------------------------------------------------------
// Elementwise and row ops.

// Zero overwrites t with zeros.
func (b *Backend) Zero(t *model.Tensor) {
	onDevice(t, "cuda: Zero: tensor of another backend")
	n := t.Len()
	if n == 0 || !b.begin() {
		return
	}
	defer b.end()
	b.fail("Zero", cu.MemsetD32(cu.DevicePtr(devPtr(t)), 0, int64(n)))
}

// Copy overwrites dst with src (equal lengths).
func (b *Backend) Copy(dst, src *model.Tensor) {
	if dst.Len() != src.Len() {
		panic("model: Copy: length mismatch")
	}
	onDevice(dst, "cuda: Copy: tensor of another backend")
	onDevice(src, "cuda: Copy: tensor of another backend")
	n := dst.Len()
	if n == 0 || !b.begin() {
		return
	}
	defer b.end()
	b.fail("Copy", cu.MemcpyDtoD(cu.DevicePtr(devPtr(dst)), cu.DevicePtr(devPtr(src)), 4*int64(n)))
}

// Axpy: y += alpha·x (equal lengths).
func (b *Backend) Axpy(y *model.Tensor, alpha float32, x *model.Tensor) {
	if y.Len() != x.Len() {
		panic("model: Axpy: length mismatch")
	}
	need(y, 0, "cuda: Axpy: tensor of another backend")
	need(x, 0, "cuda: Axpy: tensor of another backend")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each4(kAxpy, y.Len(), devPtr(y), devPtr(x), f32arg(alpha), i64(y.Len()))
}

// Scale: t *= alpha.
func (b *Backend) Scale(t *model.Tensor, alpha float32) {
	need(t, 0, "cuda: Scale: tensor of another backend")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kScale, t.Len(), devPtr(t), f32arg(alpha), i64(t.Len()))
}

// Add: out = a + b (equal lengths; out may alias a or b).
func (b *Backend) Add(out, x, y *model.Tensor) {
	if out.Len() != x.Len() || out.Len() != y.Len() {
		panic("model: Add: length mismatch")
	}
	for _, t := range []*model.Tensor{out, x, y} {
		need(t, 0, "cuda: Add: tensor of another backend")
	}
	if !b.begin() {
		return
	}
	defer b.end()
	b.each4(kAdd, out.Len(), devPtr(out), devPtr(x), devPtr(y), i64(out.Len()))
}

// Mul: out = a ⊙ b (equal lengths; out must not alias a or b). No kernel of
// its own: it is composed from existing ones, exactly. out is zeroed, then
// skip_mix_backward_inputs with D = K = 1 (so that its gate g = z[i] is an
// elementwise factor) adds g·dout = b[i]·a[i] into it: 0 + a·b = a·b.
func (b *Backend) Mul(out, x, y *model.Tensor) {
	if out.Len() != x.Len() || out.Len() != y.Len() {
		panic("model: Mul: length mismatch")
	}
	for _, t := range []*model.Tensor{out, x, y} {
		need(t, 0, "cuda: Mul: tensor of another backend")
	}
	n := out.Len()
	if n == 0 || !b.begin() {
		return
	}
	defer b.end()
	b.fail("Mul", cu.MemsetD32(cu.DevicePtr(devPtr(out)), 0, int64(n)))
	if b.err != nil {
		return
	}
	b.each(kSkipMixBackwardInputs, n, devPtr(out), 0, devPtr(x), devPtr(y), i64(n), i64(1), i64(1), i64(0))
}

// MulBackward: da += dout ⊙ b, db += dout ⊙ a (either may be nil). Composed
// as Mul is: skip_mix_backward_inputs with D = K = 1 adds z[i]·dout[i] into
// its first output, once with z = b (into da) and once with z = a (into db).
func (b *Backend) MulBackward(da, db, dout, x, y *model.Tensor) {
	n := dout.Len()
	if x.Len() != n || y.Len() != n {
		panic("model: MulBackward: length mismatch")
	}
	needGrad(da, n, "model: MulBackward: da shorter than dout")
	needGrad(db, n, "model: MulBackward: db shorter than dout")
	for _, t := range []*model.Tensor{dout, x, y} {
		need(t, 0, "cuda: MulBackward: tensor of another backend")
	}
	if n == 0 || !b.begin() {
		return
	}
	defer b.end()
	if da != nil {
		b.each(kSkipMixBackwardInputs, n, devPtr(da), 0, devPtr(dout), devPtr(y), i64(n), i64(1), i64(1), i64(0))
	}
	if db != nil {
		b.each(kSkipMixBackwardInputs, n, devPtr(db), 0, devPtr(dout), devPtr(x), i64(n), i64(1), i64(1), i64(0))
	}
}

// AddRows: out[n,c] = inp[n,c] + row[c]. out, inp (N,C), row (C); out may
// alias inp.
func (b *Backend) AddRows(out, inp, row *model.Tensor, N, C int) {
	model.CheckDims("model: AddRows: negative dimension", N, C)
	need(out, N*C, "model: AddRows: out shorter than N·C")
	need(inp, N*C, "model: AddRows: inp shorter than N·C")
	need(row, C, "model: AddRows: row shorter than C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each4(kAddRows, N*C, devPtr(out), devPtr(inp), devPtr(row), i64(N), i64(C))
}

// SumRows: drow[c] += Σ_n dout[n,c], summed in float64. drow (C), dout (N,C).
func (b *Backend) SumRows(drow, dout *model.Tensor, N, C int) {
	model.CheckDims("model: SumRows: negative dimension", N, C)
	need(drow, C, "model: SumRows: drow shorter than C")
	need(dout, N*C, "model: SumRows: dout shorter than N·C")
	if N == 0 || C == 0 || !b.begin() {
		return
	}
	defer b.end()
	chunks := chunksFor(N)
	partial, ok := b.scratchAt(8 * int64(chunks*C))
	if !ok {
		return
	}
	b.colPartial(kSumRowsPartial, C, chunks, 1, partial, devPtr(dout), i64(N), i64(C))
	b.colFinish(partial, chunks, C, devPtr(drow), 1, 0, 0, 0, 0, 0, 0)
}

// colFinish launches col_finish over the destination segments (o_i, z_i).
func (b *Backend) colFinish(partial uint64, chunks, C int, o0 uint64, z0 int, o1 uint64, z1 int, o2 uint64, z2 int, o3 uint64, z3 int) {
	b.each(kColFinish, (z0+z1+z2+z3)*C, partial, i64(chunks), i64(C),
		o0, i64(z0), o1, i64(z1), o2, i64(z2), o3, i64(z3))
}

// ---------------------------------------------------------------------------
// Gemm.

// Gemm: C = alpha·op(A)·op(B) + beta·C, row-major, contiguous (cuBLAS SGEMM,
// float32 arithmetic; TF32 tensor cores only after SetTF32(true)). beta = 0
// overwrites C, even NaN.
func (b *Backend) Gemm(c, a, bm *model.Tensor, transA, transB bool, M, N, K int, alpha, beta float32) {
	if M < 0 || N < 0 || K < 0 {
		panic("model: Gemm: negative dimension")
	}
	need(c, M*N, "model: Gemm: C shorter than M·N")
	need(a, M*K, "model: Gemm: A shorter than M·K")
	need(bm, K*N, "model: Gemm: B shorter than K·N")
	if M == 0 || N == 0 || !b.begin() {
		return
	}
	defer b.end()
	if K == 0 { // empty product: C = beta·C
		if beta == 0 {
			b.fail("Gemm", cu.MemsetD32(cu.DevicePtr(devPtr(c)), 0, int64(M*N)))
		} else if beta != 1 {
			b.each(kScale, M*N, devPtr(c), f32arg(beta), i64(M*N))
		}
		return
	}
	if b.useTF32 {
		b.sgemmTF32(transA, transB, M, N, K, alpha, devPtr(a), devPtr(bm), beta, devPtr(c))
		return
	}
	b.sgemm(transA, transB, M, N, K, alpha, devPtr(a), devPtr(bm), beta, devPtr(c))
}

// ---------------------------------------------------------------------------
// PairEmbed.

// PairEmbed builds the inductor's tokens. out (N,2L+T,C), x,y (N,L) int,
// val (V,C), pos (L,C), chn (3,C), slot (T,C).
func (b *Backend) PairEmbed(out, x, y, val, pos, chn, slot *model.Tensor, N, L, T, C int) {
	model.CheckDims("model: PairEmbed: negative dimension", N, L, T, C)
	S := 2*L + T
	need(out, N*S*C, "model: PairEmbed: out shorter than N·(2L+T)·C")
	need(x, N*L, "model: PairEmbed: x shorter than N·L")
	need(y, N*L, "model: PairEmbed: y shorter than N·L")
	need(pos, L*C, "model: PairEmbed: pos shorter than L·C")
	need(chn, 3*C, "model: PairEmbed: chn shorter than 3·C")
	need(slot, T*C, "model: PairEmbed: slot shorter than T·C")
	need(val, 0, "model: PairEmbed: no val")
	if C == 0 || !b.begin() {
		return
	}
	defer b.end()
	V := val.Len() / C
	b.each(kPairEmbed, N*S*C, devPtr(out), devPtr(x), devPtr(y), devPtr(val), devPtr(pos), devPtr(chn), devPtr(slot),
		i64(N), i64(L), i64(T), i64(C), i64(V), uint64(b.errFlag), codePairEmbed)
}

// PairEmbedBackward accumulates into dval (V,C), dpos (L,C), dchn (3,C),
// dslot (T,C) from dout (N,2L+T,C); sums in float64.
func (b *Backend) PairEmbedBackward(dval, dpos, dchn, dslot, dout, x, y *model.Tensor, N, L, T, C int) {
	model.CheckDims("model: PairEmbedBackward: negative dimension", N, L, T, C)
	S := 2*L + T
	need(dout, N*S*C, "model: PairEmbedBackward: dout shorter than N·(2L+T)·C")
	need(x, N*L, "model: PairEmbedBackward: x shorter than N·L")
	need(y, N*L, "model: PairEmbedBackward: y shorter than N·L")
	needGrad(dpos, L*C, "model: PairEmbedBackward: dpos shorter than L·C")
	needGrad(dchn, 3*C, "model: PairEmbedBackward: dchn shorter than 3·C")
	needGrad(dslot, T*C, "model: PairEmbedBackward: dslot shorter than T·C")
	needGrad(dval, 0, "model: PairEmbedBackward: dval of another backend")
	rows := N * max(L, T)
	if C == 0 || rows == 0 || !b.begin() {
		return
	}
	defer b.end()
	V := 0
	if dval != nil {
		V = dval.Len() / C
	}
	Z := V + L + 3 + T
	chunks := chunksFor(rows)
	partial, ok := b.scratchAt(8 * int64(Z*chunks*C))
	if !ok {
		return
	}
	b.colPartial(kPairEmbedBackwardPartial, C, chunks, Z, partial, devPtr(dout), devPtr(x), devPtr(y),
		i64(N), i64(L), i64(T), i64(C), i64(V))
	b.colFinish(partial, chunks, C, devPtr(dval), V, devPtr(dpos), L, devPtr(dchn), 3, devPtr(dslot), T)
}

// ---------------------------------------------------------------------------
// LayerNorm.

// LayerNorm: out = (inp−mean)·rstd·w + b over C, eps 1e-5; saves mean, rstd.
// out, inp (N,C); w, b (C); mean, rstd (N).
func (b *Backend) LayerNorm(out, mean, rstd, inp, w, bias *model.Tensor, N, C int) {
	model.CheckDims("model: LayerNorm: negative dimension", N, C)
	need(out, N*C, "model: LayerNorm: out shorter than N·C")
	need(mean, N, "model: LayerNorm: mean shorter than N")
	need(rstd, N, "model: LayerNorm: rstd shorter than N")
	need(inp, N*C, "model: LayerNorm: inp shorter than N·C")
	need(w, C, "model: LayerNorm: w shorter than C")
	need(bias, C, "model: LayerNorm: b shorter than C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.warps(kLayerNorm, N, devPtr(out), devPtr(mean), devPtr(rstd), devPtr(inp), devPtr(w), devPtr(bias), i64(N), i64(C))
}

// LayerNormBackward accumulates into dinp (N,C), dw, db (C).
func (b *Backend) LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd *model.Tensor, N, C int) {
	model.CheckDims("model: LayerNormBackward: negative dimension", N, C)
	needGrad(dinp, N*C, "model: LayerNormBackward: dinp shorter than N·C")
	needGrad(dw, C, "model: LayerNormBackward: dw shorter than C")
	needGrad(db, C, "model: LayerNormBackward: db shorter than C")
	need(dout, N*C, "model: LayerNormBackward: dout shorter than N·C")
	need(inp, N*C, "model: LayerNormBackward: inp shorter than N·C")
	need(w, C, "model: LayerNormBackward: w shorter than C")
	need(mean, N, "model: LayerNormBackward: mean shorter than N")
	need(rstd, N, "model: LayerNormBackward: rstd shorter than N")
	if N == 0 || C == 0 || !b.begin() {
		return
	}
	defer b.end()
	if dinp != nil {
		b.warps(kLayerNormBackwardInp, N, devPtr(dinp), devPtr(dout), devPtr(inp), devPtr(w), devPtr(mean), devPtr(rstd), i64(N), i64(C))
	}
	if dw != nil || db != nil {
		chunks := chunksFor(N)
		partial, ok := b.scratchAt(8 * int64(2*chunks*C))
		if !ok {
			return
		}
		b.colPartial(kLayerNormBackwardWBPartial, C, chunks, 2, partial, devPtr(dout), devPtr(inp), devPtr(mean), devPtr(rstd), i64(N), i64(C))
		b.colFinish(partial, chunks, C, devPtr(dw), 1, devPtr(db), 1, 0, 0, 0, 0)
	}
}

// ---------------------------------------------------------------------------
// Attention.

// Attention: unmasked multi-head self-attention. out (B,S,C), att
// (B,NH,S,S) saved softmax, qkv (B,S,3C). Per head, batched over B:
// att = softmax(q·kᵀ/sqrt(hs)) (cuBLAS, then the softmax kernel in place),
// out = att·v (cuBLAS).
func (b *Backend) Attention(out, att, qkv *model.Tensor, B, S, C, NH int) {
	nqkv, natt, nout := model.AttentionDims("model: Attention: bad dimensions (need NH > 0 dividing C)", B, S, C, NH)
	need(out, nout, "model: Attention: out shorter than B·S·C")
	need(att, natt, "model: Attention: att shorter than B·NH·S·S")
	need(qkv, nqkv, "model: Attention: qkv shorter than B·S·3C")
	if B == 0 || S == 0 || C == 0 || !b.begin() {
		return
	}
	defer b.end()
	hs := C / NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	q0, a0, o0 := devPtr(qkv), devPtr(att), devPtr(out)
	for h := range NH {
		q := q0 + 4*uint64(h*hs)
		k := q + 4*uint64(C)
		ah := a0 + 4*uint64(h*S*S)
		// att_h (S,S) = scale·q_h (S,hs) · k_hᵀ
		b.gemmBatched(false, true, S, S, hs, scale, q, 3*C, S*3*C, k, 3*C, S*3*C, 0, ah, S, NH*S*S, B)
	}
	b.softmaxRows(a0, a0, b.noiseArgs(nil), f64(1), B*NH*S, S, nil)
	for h := range NH {
		v := q0 + 4*uint64(2*C+h*hs)
		ah := a0 + 4*uint64(h*S*S)
		// out_h (S,hs) = att_h (S,S) · v_h (S,hs)
		b.gemmBatched(false, false, S, hs, S, 1, ah, S, NH*S*S, v, 3*C, S*3*C, 0, o0+4*uint64(h*hs), C, S*C, B)
	}
}

// AttentionBackward accumulates into dqkv (B,S,3C); scratch (B,NH,S,S) is
// overwritten. Per head, batched over B: datt = dout·vᵀ into scratch,
// dv += attᵀ·dout; then dpre = att⊙(datt − Σ att·datt) in place;
// dq += scale·dpre·k, dk += scale·dpreᵀ·q.
func (b *Backend) AttentionBackward(dqkv, scratch, dout, qkv, att *model.Tensor, B, S, C, NH int) {
	nqkv, natt, nout := model.AttentionDims("model: AttentionBackward: bad dimensions (need NH > 0 dividing C)", B, S, C, NH)
	need(dqkv, nqkv, "model: AttentionBackward: dqkv shorter than B·S·3C")
	need(scratch, natt, "model: AttentionBackward: scratch shorter than B·NH·S·S")
	need(dout, nout, "model: AttentionBackward: dout shorter than B·S·C")
	need(qkv, nqkv, "model: AttentionBackward: qkv shorter than B·S·3C")
	need(att, natt, "model: AttentionBackward: att shorter than B·NH·S·S")
	if B == 0 || S == 0 || C == 0 || !b.begin() {
		return
	}
	defer b.end()
	hs := C / NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	q0, dq0, a0, s0, g0 := devPtr(qkv), devPtr(dqkv), devPtr(att), devPtr(scratch), devPtr(dout)
	for h := range NH {
		off := 4 * uint64(h*hs)
		v, dv := q0+off+8*uint64(C), dq0+off+8*uint64(C)
		ah, sh, gh := a0+4*uint64(h*S*S), s0+4*uint64(h*S*S), g0+off
		// datt_h (S,S) = dout_h (S,hs) · v_hᵀ
		b.gemmBatched(false, true, S, S, hs, 1, gh, C, S*C, v, 3*C, S*3*C, 0, sh, S, NH*S*S, B)
		// dv_h (S,hs) += att_hᵀ (S,S) · dout_h (S,hs)
		b.gemmBatched(true, false, S, hs, S, 1, ah, S, NH*S*S, gh, C, S*C, 1, dv, 3*C, S*3*C, B)
	}
	b.warps(kAttentionSoftmaxBackward, B*NH*S, s0, a0, i64(B*NH*S), i64(S))
	for h := range NH {
		off := 4 * uint64(h*hs)
		q, k := q0+off, q0+off+4*uint64(C)
		dq, dk := dq0+off, dq0+off+4*uint64(C)
		sh := s0 + 4*uint64(h*S*S)
		// dq_h (S,hs) += scale·dpre_h (S,S) · k_h (S,hs)
		b.gemmBatched(false, false, S, hs, S, scale, sh, S, NH*S*S, k, 3*C, S*3*C, 1, dq, 3*C, S*3*C, B)
		// dk_h (S,hs) += scale·dpre_hᵀ (S,S) · q_h (S,hs)
		b.gemmBatched(true, false, S, hs, S, scale, sh, S, NH*S*S, q, 3*C, S*3*C, 1, dk, 3*C, S*3*C, B)
	}
}

// ---------------------------------------------------------------------------
// GELU.

// GELU: out = inp·Φ(inp), exact erf form, per element in float64 (in
// float32 after SetFastGELU(true)).
func (b *Backend) GELU(out, inp *model.Tensor) {
	if out.Len() != inp.Len() {
		panic("model: GELU: length mismatch")
	}
	need(out, 0, "cuda: GELU: tensor of another backend")
	need(inp, 0, "cuda: GELU: tensor of another backend")
	if !b.begin() {
		return
	}
	defer b.end()
	k := kGELU
	if b.fastGELU {
		k = kGELUF32
	}
	b.each4(k, inp.Len(), devPtr(out), devPtr(inp), i64(inp.Len()))
}

// GELUBackward: dinp += dout·(Φ(inp) + inp·φ(inp)), per element in float64
// (in float32 after SetFastGELU(true)); acc false overwrites dinp.
func (b *Backend) GELUBackward(dinp, dout, inp *model.Tensor, acc bool) {
	if dinp.Len() != inp.Len() || dout.Len() != inp.Len() {
		panic("model: GELUBackward: length mismatch")
	}
	for _, t := range []*model.Tensor{dinp, dout, inp} {
		need(t, 0, "cuda: GELUBackward: tensor of another backend")
	}
	if !b.begin() {
		return
	}
	defer b.end()
	k := kGELUBackward
	if b.fastGELU {
		k = kGELUBackwardF32
	}
	b.each4(k, inp.Len(), devPtr(dinp), devPtr(dout), devPtr(inp), i64(inp.Len()), boolArg(acc))
}

// BiasGELU: out[r,j,:] = GELU(inp[r,j,:] + bias[r,:]) for j < m, the sum
// rounded to float32 first; the GELU as in GELU (SetFastGELU).
func (b *Backend) BiasGELU(out, inp, bias *model.Tensor, R, m, C int) {
	model.CheckDims("model: BiasGELU: negative dimension", R, m, C)
	need(out, R*m*C, "model: BiasGELU: out shorter than R·m·C")
	need(inp, R*m*C, "model: BiasGELU: inp shorter than R·m·C")
	need(bias, R*C, "model: BiasGELU: bias shorter than R·C")
	if R*m*C == 0 || !b.begin() {
		return
	}
	defer b.end()
	k := kBiasGELU
	if b.fastGELU {
		k = kBiasGELUF32
	}
	vec := vec4(C, out, inp, bias)
	b.rows2D(k, R*m, C, vec, devPtr(out), devPtr(inp), devPtr(bias), i64(R), i64(m), i64(C), boolArg(vec))
}

// vec4 reports whether rows of C elements of every tensor given (nil ones
// skipped) can be read as float4s: C a multiple of 4, each start 16-byte
// aligned (the tape's arenas align tensors to 128 bytes).
func vec4(C int, ts ...*model.Tensor) bool {
	if C%4 != 0 {
		return false
	}
	for _, t := range ts {
		if t != nil && devPtr(t)%16 != 0 {
			return false
		}
	}
	return true
}

// groupRows: BiasGELUBackward sums the bias gradient down each group in
// one thread per column when groups are short (m ≤ 32) or there are enough
// such threads to fill the card; otherwise it writes d and reduces it by
// columns.
const groupThreads = 1 << 16

// BiasGELUBackward: with d = dout·GELU'(inp + bias[r]), dinp += d (acc
// false: dinp = d; nil: skipped) and dbias[r,:] += Σ_j d[r,j,:], summed in
// float64 (nil: skipped).
func (b *Backend) BiasGELUBackward(dinp, dbias, dout, inp, bias *model.Tensor, R, m, C int, acc bool) {
	model.CheckDims("model: BiasGELUBackward: negative dimension", R, m, C)
	n := R * m * C
	need(inp, n, "model: BiasGELUBackward: inp shorter than R·m·C")
	need(bias, R*C, "model: BiasGELUBackward: bias shorter than R·C")
	need(dout, n, "model: BiasGELUBackward: dout shorter than R·m·C")
	needGrad(dinp, n, "model: BiasGELUBackward: dinp shorter than R·m·C")
	needGrad(dbias, R*C, "model: BiasGELUBackward: dbias shorter than R·C")
	if n == 0 || (dinp == nil && dbias == nil) || !b.begin() {
		return
	}
	defer b.end()
	elem, groups := kBiasGELUBackward, kBiasGELUBackwardGroups
	if b.fastGELU {
		elem, groups = kBiasGELUBackwardF32, kBiasGELUBackwardGroupsF32
	}
	switch {
	case dbias == nil:
		vec := vec4(C, dinp, dout, inp, bias)
		b.rows2D(elem, R*m, C, vec, devPtr(dinp), devPtr(dout), devPtr(inp), devPtr(bias), i64(R), i64(m), i64(C), boolArg(acc), boolArg(vec))
	case m <= 32 || R*C >= groupThreads:
		vec := vec4(C, dinp, dbias, dout, inp, bias)
		b.rows2D(groups, R, C, vec, devPtr(dinp), devPtr(dbias), devPtr(dout), devPtr(inp), devPtr(bias), i64(R), i64(m), i64(C), boolArg(acc), boolArg(vec))
	default:
		// R·C < groupThreads here, so R fits a grid's z dimension. d goes
		// into dinp when dinp is overwritten, else into scratch after the
		// column partials.
		chunks := chunksFor(m)
		pbytes := (8*int64(R*chunks*C) + 127) &^ 127
		d := devPtr(dinp)
		sbytes := pbytes
		if dinp == nil || acc {
			sbytes += 4 * int64(n)
		}
		partial, ok := b.scratchAt(sbytes)
		if !ok {
			return
		}
		if dinp == nil || acc {
			d = partial + uint64(pbytes)
		}
		vec := C%4 == 0 && d%16 == 0 && vec4(C, dout, inp, bias)
		b.rows2D(elem, R*m, C, vec, d, devPtr(dout), devPtr(inp), devPtr(bias), i64(R), i64(m), i64(C), boolArg(false), boolArg(vec))
		if dinp != nil && acc {
			b.each4(kAxpy, n, devPtr(dinp), d, f64(1), i64(n))
		}
		b.colPartial(kSumRowsPartial, C, chunks, R, partial, d, i64(m), i64(C))
		b.colFinish(partial, chunks, C, devPtr(dbias), R, 0, 0, 0, 0, 0, 0)
	}
}

// ---------------------------------------------------------------------------
// Row slicing, pooling, repetition, transposition.

// SliceRows: out[n,r,:] = inp[n,start+r,:]. out (N,R,C), inp (N,S,C).
func (b *Backend) SliceRows(out, inp *model.Tensor, N, S, start, R, C int) {
	model.CheckDims("model: SliceRows: negative dimension", N, S, start, R, C)
	if start+R > S {
		panic("model: SliceRows: start+R beyond S")
	}
	need(out, N*R*C, "model: SliceRows: out shorter than N·R·C")
	need(inp, N*S*C, "model: SliceRows: inp shorter than N·S·C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kSliceRows, N*R*C, devPtr(out), devPtr(inp), i64(N), i64(S), i64(start), i64(R), i64(C))
}

// SliceRowsBackward: dinp[n,start+r,:] += dout[n,r,:].
func (b *Backend) SliceRowsBackward(dinp, dout *model.Tensor, N, S, start, R, C int) {
	model.CheckDims("model: SliceRowsBackward: negative dimension", N, S, start, R, C)
	if start+R > S {
		panic("model: SliceRowsBackward: start+R beyond S")
	}
	need(dinp, N*S*C, "model: SliceRowsBackward: dinp shorter than N·S·C")
	need(dout, N*R*C, "model: SliceRowsBackward: dout shorter than N·R·C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kSliceRowsBackward, N*R*C, devPtr(dinp), devPtr(dout), i64(N), i64(S), i64(start), i64(R), i64(C))
}

// PoolPairs pools the m pair encodings of each of B specifications, in
// float64: loo: out (B,m,C); mean: out (B,C). inp (B,m,C).
func (b *Backend) PoolPairs(out, inp *model.Tensor, B, m, C int, loo bool) {
	nout := model.PoolPairsDims(B, m, C, loo)
	need(out, nout, "model: PoolPairs: out too short")
	need(inp, B*m*C, "model: PoolPairs: inp shorter than B·m·C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kPoolPairs, B*C, devPtr(out), devPtr(inp), i64(B), i64(m), i64(C), boolArg(loo))
}

// PoolPairsBackward accumulates into dinp (B,m,C).
func (b *Backend) PoolPairsBackward(dinp, dout *model.Tensor, B, m, C int, loo bool) {
	nout := model.PoolPairsDims(B, m, C, loo)
	need(dinp, B*m*C, "model: PoolPairsBackward: dinp shorter than B·m·C")
	need(dout, nout, "model: PoolPairsBackward: dout too short")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kPoolPairsBackward, B*C, devPtr(dinp), devPtr(dout), i64(B), i64(m), i64(C), boolArg(loo))
}

// RepeatRows: out[r,j,:] = inp[r,:] for j < m. out (R,m,C), inp (R,C).
func (b *Backend) RepeatRows(out, inp *model.Tensor, R, m, C int) {
	model.CheckDims("model: RepeatRows: negative dimension", R, m, C)
	need(out, R*m*C, "model: RepeatRows: out shorter than R·m·C")
	need(inp, R*C, "model: RepeatRows: inp shorter than R·C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kRepeatRows, R*m*C, devPtr(out), devPtr(inp), i64(R), i64(m), i64(C))
}

// RepeatRowsBackward: dinp[r,:] += Σ_j dout[r,j,:], summed in float64.
func (b *Backend) RepeatRowsBackward(dinp, dout *model.Tensor, R, m, C int) {
	model.CheckDims("model: RepeatRowsBackward: negative dimension", R, m, C)
	need(dinp, R*C, "model: RepeatRowsBackward: dinp shorter than R·C")
	need(dout, R*m*C, "model: RepeatRowsBackward: dout shorter than R·m·C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kRepeatRowsBackward, R*C, devPtr(dinp), devPtr(dout), i64(R), i64(m), i64(C))
}

// Transpose01: out[b,a,:] = inp[a,b,:] (acc: +=). out (B,A,C), inp (A,B,C).
func (b *Backend) Transpose01(out, inp *model.Tensor, A, B, C int, acc bool) {
	model.CheckDims("model: Transpose01: negative dimension", A, B, C)
	need(out, A*B*C, "model: Transpose01: out shorter than A·B·C")
	need(inp, A*B*C, "model: Transpose01: inp shorter than A·B·C")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kTranspose01, A*B*C, devPtr(out), devPtr(inp), i64(A), i64(B), i64(C), boolArg(acc))
}

// ---------------------------------------------------------------------------
// Gumbel noise, softmax, one-hot.

// Gumbel overwrites dst with −log(−log u), u = model.GumbelUniform(seed, i),
// in float64 (the same noise as the CPU's), or in float32 after
// SetFastGumbel(true) (gumbel_f32).
func (b *Backend) Gumbel(dst *model.Tensor, seed uint64) {
	need(dst, 0, "cuda: Gumbel: tensor of another backend")
	if !b.begin() {
		return
	}
	defer b.end()
	k := kGumbel
	if b.fastGumbel {
		k = kGumbelF32
	}
	b.each(k, dst.Len(), devPtr(dst), seed, i64(dst.Len()))
}

// Softmax: out[n,:] = softmax((logits[n,:] + noise[n,:])/tau) over K, with
// the row maximum subtracted. noise may be nil. out, logits, noise (N,K).
func (b *Backend) Softmax(out, logits, noise *model.Tensor, tau float32, N, K int) {
	model.CheckDims("model: Softmax: negative dimension", N, K)
	if !(tau > 0) {
		panic("model: Softmax: tau must be positive")
	}
	need(out, N*K, "model: Softmax: out shorter than N·K")
	need(logits, N*K, "model: Softmax: logits shorter than N·K")
	needGrad(noise, N*K, "model: Softmax: noise shorter than N·K")
	if K == 0 || !b.begin() {
		return
	}
	defer b.end()
	b.softmaxRows(devPtr(out), devPtr(logits), b.noiseArgs(noise), f32arg(tau), N, K, nil)
}

// noiseArgs are the softmax kernels' noise arguments (noise, nseed, noff)
// for a noise tensor: a buffer's address and noff −1, or for fused noise
// (model.GumbelNoise, FusedGumbel on) no buffer, the seed and the tensor's
// offset into its noise memory; nil: no noise.
func (b *Backend) noiseArgs(noise *model.Tensor) [3]uint64 {
	if noise == nil {
		return [3]uint64{0, 0, i64(-1)}
	}
	m, off := noise.Mem()
	if m.Noise == nil {
		return [3]uint64{devPtr(noise), 0, i64(-1)}
	}
	if !b.FusedGumbel() {
		panic("cuda: fused Gumbel noise while FusedGumbel is off (SetFastGumbel and SetFusedGumbel)")
	}
	return [3]uint64{0, m.Noise.Seed, i64(off)}
}

// softmaxRows launches the softmax over N rows of K: softmax_small (one
// thread per row) when K ≤ smallK, else softmax (one warp per row); st holds
// SoftmaxMix's extra arguments (bias, Db, mix, prev, z, D, Kz, skip), or is
// nil for a plain softmax. The caller holds begin.
func (b *Backend) softmaxRows(out, logits uint64, noise [3]uint64, tau uint64, N, K int, st *[8]uint64) {
	plain := [8]uint64{0, 0, 0, 0, 0, i64(K), 1, 0}
	if st == nil {
		st = &plain
	}
	a := [16]uint64{out, logits, noise[0], tau, i64(N), i64(K), st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7],
		noise[1], noise[2]}
	if K <= smallK {
		k := kSoftmaxSmall
		if b.fastSoftmax {
			k = kSoftmaxSmallF32
		}
		b.rowsSmall(k, N, K, false, a[:]...)
		return
	}
	b.warps(kSoftmax, N, a[:]...)
}

// SoftmaxBackward: dlogits += out⊙(dout − Σ_k dout·out)/tau (acc false: =).
func (b *Backend) SoftmaxBackward(dlogits, dout, out *model.Tensor, tau float32, N, K int, acc bool) {
	model.CheckDims("model: SoftmaxBackward: negative dimension", N, K)
	if !(tau > 0) {
		panic("model: SoftmaxBackward: tau must be positive")
	}
	need(dlogits, N*K, "model: SoftmaxBackward: dlogits shorter than N·K")
	need(dout, N*K, "model: SoftmaxBackward: dout shorter than N·K")
	need(out, N*K, "model: SoftmaxBackward: out shorter than N·K")
	if K == 0 || !b.begin() {
		return
	}
	defer b.end()
	var flags uint64
	if acc {
		flags = uint64(model.SkipMixAccHat)
	}
	if K <= smallK { // one thread per row (rows.cu), as Softmax
		b.rowsSmall(kSoftmaxBackwardSmall, N, K, true, devPtr(dlogits), devPtr(dout), devPtr(out), f32arg(tau), i64(N), i64(K), flags,
			0, 0, 0, 0, i64(K), 1, 0)
		return
	}
	b.warps(kSoftmaxBackward, N, devPtr(dlogits), devPtr(dout), devPtr(out), f32arg(tau), i64(N), i64(K), flags,
		0, 0, i64(K), 1, 0)
}

// SoftmaxMix: hat = softmax((logits + bias + noise)/tau) over each K
// elements and out = g·prev + (1−g)·hat, g = z[n,skip], in one pass of the
// softmax kernels (rows.cu).
func (b *Backend) SoftmaxMix(out, hat, logits, bias, noise, prev, z *model.Tensor, tau float32, N, D, K, Db, Kz, skip int) {
	model.CheckSoftmaxMix(false, tau, N, D, K, Kz, skip)
	n := N * D
	need(out, n, "model: SoftmaxMix: out shorter than N·D")
	need(hat, n, "model: SoftmaxMix: hat shorter than N·D")
	need(logits, n, "model: SoftmaxMix: logits shorter than N·D")
	need(prev, n, "model: SoftmaxMix: prev shorter than N·D")
	need(z, N*Kz, "model: SoftmaxMix: z shorter than N·Kz")
	needGrad(noise, n, "model: SoftmaxMix: noise shorter than N·D")
	if bias != nil {
		if Db <= 0 || Db%K != 0 {
			panic("model: SoftmaxMix: Db is not a positive multiple of K")
		}
		need(bias, Db, "model: SoftmaxMix: bias shorter than Db")
	}
	if n == 0 || !b.begin() {
		return
	}
	defer b.end()
	b.softmaxRows(devPtr(hat), devPtr(logits), b.noiseArgs(noise), f32arg(tau), n/K, K,
		&[8]uint64{devPtr(bias), i64(max(Db, K)), devPtr(out), devPtr(prev), devPtr(z), i64(D), i64(Kz), i64(skip)})
}

// SoftmaxMixBackward: dlogits, dprev and dz of SoftmaxMix. The softmax
// backward kernels compute dlogits and dprev, and dz too where a gate row
// spans at most smallRows softmax rows of K ≤ smallK (the search's 80 of 10);
// otherwise skip_mix_backward computes dz in a second pass.
func (b *Backend) SoftmaxMixBackward(dlogits, dprev, dz, dout, prev, hat, z *model.Tensor, tau float32, N, D, K, Kz, skip int, acc model.SkipMixAcc) {
	model.CheckSoftmaxMix(true, tau, N, D, K, Kz, skip)
	n := N * D
	needGrad(dlogits, n, "model: SoftmaxMixBackward: dlogits shorter than N·D")
	needGrad(dprev, n, "model: SoftmaxMixBackward: dprev shorter than N·D")
	needGrad(dz, N*Kz, "model: SoftmaxMixBackward: dz shorter than N·Kz")
	need(dout, n, "model: SoftmaxMixBackward: dout shorter than N·D")
	need(prev, n, "model: SoftmaxMixBackward: prev shorter than N·D")
	need(hat, n, "model: SoftmaxMixBackward: hat shorter than N·D")
	need(z, N*Kz, "model: SoftmaxMixBackward: z shorter than N·Kz")
	if n == 0 || !b.begin() {
		return
	}
	defer b.end()
	rows, flags := n/K, uint64(acc)
	zin := K <= smallK && D/K <= smallRows
	if K <= smallK {
		var dzIn *model.Tensor
		if zin {
			dzIn = dz
		}
		b.rowsSmall(kSoftmaxBackwardSmall, rows, K, true, devPtr(dlogits), devPtr(dout), devPtr(hat), f32arg(tau), i64(rows), i64(K), flags,
			devPtr(dprev), devPtr(dzIn), devPtr(prev), devPtr(z), i64(D), i64(Kz), i64(skip))
	} else {
		b.warps(kSoftmaxBackward, rows, devPtr(dlogits), devPtr(dout), devPtr(hat), f32arg(tau), i64(rows), i64(K), flags,
			devPtr(dprev), devPtr(z), i64(D), i64(Kz), i64(skip))
	}
	if dz != nil && !zin {
		b.warps(kSkipMixBackward, N, 0, 0, devPtr(dz), devPtr(dout), devPtr(prev), devPtr(hat), devPtr(z),
			i64(N), i64(D), i64(Kz), i64(skip), flags&uint64(model.SkipMixAccZ))
	}
}

// OneHot: out[n,:] = onehot(idx[n]) over K. out (N,K), idx (N) int. An
// index outside [0,K) leaves a zero row and makes Sync report an error.
func (b *Backend) OneHot(out, idx *model.Tensor, N, K int) {
	model.CheckDims("model: OneHot: negative dimension", N, K)
	need(out, N*K, "model: OneHot: out shorter than N·K")
	need(idx, N, "model: OneHot: idx shorter than N")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kOneHot, N*K, devPtr(out), devPtr(idx), i64(N), i64(K), uint64(b.errFlag), codeOneHot)
}

// ArgmaxOneHot: out[n,:] = onehot(argmax_k logits[n,k]), first max wins.
func (b *Backend) ArgmaxOneHot(out, logits *model.Tensor, N, K int) {
	model.CheckDims("model: ArgmaxOneHot: negative dimension", N, K)
	need(out, N*K, "model: ArgmaxOneHot: out shorter than N·K")
	need(logits, N*K, "model: ArgmaxOneHot: logits shorter than N·K")
	if K == 0 || !b.begin() {
		return
	}
	defer b.end()
	b.each(kArgmaxOneHot, N, devPtr(out), devPtr(logits), i64(N), i64(K))
}

// ---------------------------------------------------------------------------
// The interpreter's skip gate.

// SkipMix: g = z[n,skip], out[n,:] = g·prev[n,:] + (1−g)·hat[n,:].
// out, prev, hat (N,D); z (N,K).
func (b *Backend) SkipMix(out, prev, hat, z *model.Tensor, N, D, K, skip int) {
	model.CheckDims("model: SkipMix: negative dimension", N, D, K)
	if skip < 0 || skip >= K {
		panic("model: SkipMix: skip outside [0, K)")
	}
	need(out, N*D, "model: SkipMix: out shorter than N·D")
	need(prev, N*D, "model: SkipMix: prev shorter than N·D")
	need(hat, N*D, "model: SkipMix: hat shorter than N·D")
	need(z, N*K, "model: SkipMix: z shorter than N·K")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each4(kSkipMix, N*D, devPtr(out), devPtr(prev), devPtr(hat), devPtr(z), i64(N), i64(D), i64(K), i64(skip))
}

// SkipMixBackward accumulates dprev += g·dout, dhat += (1−g)·dout and
// dz[n,skip] += Σ_d dout·(prev − hat) (in float64); outputs whose flag in
// acc is clear are overwritten (dz: whole rows).
func (b *Backend) SkipMixBackward(dprev, dhat, dz, dout, prev, hat, z *model.Tensor, N, D, K, skip int, acc model.SkipMixAcc) {
	model.CheckDims("model: SkipMixBackward: negative dimension", N, D, K)
	if skip < 0 || skip >= K {
		panic("model: SkipMixBackward: skip outside [0, K)")
	}
	needGrad(dprev, N*D, "model: SkipMixBackward: dprev shorter than N·D")
	needGrad(dhat, N*D, "model: SkipMixBackward: dhat shorter than N·D")
	needGrad(dz, N*K, "model: SkipMixBackward: dz shorter than N·K")
	need(dout, N*D, "model: SkipMixBackward: dout shorter than N·D")
	need(prev, N*D, "model: SkipMixBackward: prev shorter than N·D")
	need(hat, N*D, "model: SkipMixBackward: hat shorter than N·D")
	need(z, N*K, "model: SkipMixBackward: z shorter than N·K")
	if !b.begin() {
		return
	}
	defer b.end()
	if dprev == nil && dhat == nil && dz == nil {
		return
	}
	// One pass, a warp per row (the same results as skip_mix_backward_inputs
	// followed by skip_mix_backward_z, reading dout once).
	b.warps(kSkipMixBackward, N, devPtr(dprev), devPtr(dhat), devPtr(dz), devPtr(dout), devPtr(prev), devPtr(hat), devPtr(z),
		i64(N), i64(D), i64(K), i64(skip), uint64(acc))
}

// ---------------------------------------------------------------------------
// Losses and scores.

// NLL: out[0] = scale·Σ_n −log(max(p[n,y[n]], 1e-8)), in float64.
// p (N,V), y (N) int, out (1).
func (b *Backend) NLL(out, p, y *model.Tensor, N, V int, scale float32) {
	model.CheckDims("model: NLL: negative dimension", N, V)
	need(out, 1, "model: NLL: out is empty")
	need(p, N*V, "model: NLL: p shorter than N·V")
	need(y, N, "model: NLL: y shorter than N")
	if !b.begin() {
		return
	}
	defer b.end()
	if N <= nllPiece {
		b.single(kNLL, devPtr(out), devPtr(p), devPtr(y), i64(N), i64(V), f32arg(scale), uint64(b.errFlag), codeNLL)
		return
	}
	pieces := (N + nllPiece - 1) / nllPiece
	partial, ok := b.scratchAt(8 * int64(pieces))
	if !ok {
		return
	}
	b.launch(kNLLPartial, min(pieces, maxBlocks), 1, 1, threads, 1, partial, devPtr(p), devPtr(y), i64(N), i64(V), i64(nllPiece),
		uint64(b.errFlag), codeNLL)
	b.single(kNLLFinish, devPtr(out), partial, i64(pieces), f32arg(scale))
}

// nllPiece is the fixed piece of rows of NLL's first pass: up to nllPiece
// rows one block (nll, a fixed tree), beyond that one block per piece
// (nll_partial) and a fixed tree over the pieces (nll_finish), so that the
// search's million rows spread over every SM; either way the result depends
// only on N, never on scheduling.
const nllPiece = 1 << 12

// NLLBackward: dp[n,y[n]] += −dout[0]·scale/p[n,y[n]] where p > 1e-8.
func (b *Backend) NLLBackward(dp, dout, p, y *model.Tensor, N, V int, scale float32) {
	model.CheckDims("model: NLLBackward: negative dimension", N, V)
	need(dp, N*V, "model: NLLBackward: dp shorter than N·V")
	need(dout, 1, "model: NLLBackward: dout is empty")
	need(p, N*V, "model: NLLBackward: p shorter than N·V")
	need(y, N, "model: NLLBackward: y shorter than N")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kNLLBackward, N, devPtr(dp), devPtr(dout), devPtr(p), devPtr(y), i64(N), i64(V), f32arg(scale), uint64(b.errFlag), codeNLLBackward)
}

// SeqScore: loglik[r] = Σ_l log(max(p[r,l,y],1e-8)) and exact[r] = 1 when
// argmax_v p[r,l,:] == y[r,l] at every l (first max wins), else 0.
// p (R,L,V), y (R,L) int, loglik, exact (R).
func (b *Backend) SeqScore(loglik, exact, p, y *model.Tensor, R, L, V int) {
	model.CheckDims("model: SeqScore: negative dimension", R, L, V)
	need(loglik, R, "model: SeqScore: loglik shorter than R")
	need(exact, R, "model: SeqScore: exact shorter than R")
	need(p, R*L*V, "model: SeqScore: p shorter than R·L·V")
	need(y, R*L, "model: SeqScore: y shorter than R·L")
	if !b.begin() {
		return
	}
	defer b.end()
	b.each(kSeqScore, R, devPtr(loglik), devPtr(exact), devPtr(p), devPtr(y), i64(R), i64(L), i64(V), uint64(b.errFlag), codeSeqScore)
}

// reuseSums computes S_d = Σ_n log1p(−min(q[n,d], 1−1e-6)) in float64 into
// scratch and returns its address. The caller holds begin; N, D > 0.
func (b *Backend) reuseSums(q uint64, N, D int) (uint64, bool) {
	chunks := chunksFor(N)
	base, ok := b.scratchAt(8 * int64(chunks*D+D))
	if !ok {
		return 0, false
	}
	partial, S := base, base+8*uint64(chunks*D)
	b.colPartial(kReuseSumsPartial, D, chunks, 1, partial, q, i64(N), i64(D))
	b.each(kReuseFinish, D, S, partial, i64(chunks), i64(D))
	return S, true
}

// ReuseReg: out[0] = Σ_d [1 − exp(Σ_n log1p(−min(q[n,d], 1−1e-6)))], in
// float64. q (N,D), out (1).
func (b *Backend) ReuseReg(out, q *model.Tensor, N, D int) {
	model.CheckDims("model: ReuseReg: negative dimension", N, D)
	need(out, 1, "model: ReuseReg: out is empty")
	need(q, N*D, "model: ReuseReg: q shorter than N·D")
	if !b.begin() {
		return
	}
	defer b.end()
	if N == 0 || D == 0 { // every S_d = 0: the sum is 0
		b.single(kSumFinish, devPtr(out), 0, 0)
		return
	}
	S, ok := b.reuseSums(devPtr(q), N, D)
	if !ok {
		return
	}
	b.single(kReuseTotal, devPtr(out), S, i64(D))
}

// ReuseRegBackward: dq[n,d] += dout[0]·exp(S_d)/(1−q[n,d]) where q < 1−1e-6.
func (b *Backend) ReuseRegBackward(dq, dout, q *model.Tensor, N, D int) {
	model.CheckDims("model: ReuseRegBackward: negative dimension", N, D)
	need(dq, N*D, "model: ReuseRegBackward: dq shorter than N·D")
	need(dout, 1, "model: ReuseRegBackward: dout is empty")
	need(q, N*D, "model: ReuseRegBackward: q shorter than N·D")
	if N == 0 || D == 0 || !b.begin() {
		return
	}
	defer b.end()
	S, ok := b.reuseSums(devPtr(q), N, D)
	if !ok {
		return
	}
	b.each(kReuseRegBackward, N*D, devPtr(dq), devPtr(dout), devPtr(q), S, i64(N), i64(D))
}

// ---------------------------------------------------------------------------
// Optimiser support.

// sumSquaresPiece is the fixed piece of SumSquares: one float64 block sum
// per piece (a fixed tree), then the pieces' sums by a fixed tree: the
// result depends only on the length, never on scheduling.
const sumSquaresPiece = 1 << 12

// SumSquares: out[0] = Σ x², in float64.
func (b *Backend) SumSquares(out, x *model.Tensor) {
	need(out, 1, "model: SumSquares: out is empty")
	need(x, 0, "cuda: SumSquares: tensor of another backend")
	if !b.begin() {
		return
	}
	defer b.end()
	n := x.Len()
	pieces := (n + sumSquaresPiece - 1) / sumSquaresPiece
	partial := uint64(0)
	if pieces > 0 {
		var ok bool
		if partial, ok = b.scratchAt(8 * int64(pieces)); !ok {
			return
		}
		b.launch(kSumSquaresPartial, min(pieces, maxBlocks), 1, 1, threads, 1, partial, devPtr(x), i64(n), i64(sumSquaresPiece))
	}
	b.single(kSumFinish, devPtr(out), partial, i64(pieces))
}

// decimal64 returns the float64 of the shortest decimal that rounds to x,
// as model's CPU backend does for AdamW's hyperparameters (see model/cpu.go).
func decimal64(x float32) float64 {
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], float64(x), 'g', -1, 32)
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return float64(x)
	}
	return v
}

// AdamW updates p in place as torch.optim.AdamW (see model.CPU.AdamW): per
// element in float64, hyperparameters through decimal64, stored as float32.
func (b *Backend) AdamW(p, g, m, v *model.Tensor, lr, beta1, beta2, eps, wd, gradScale float32, step int) {
	n := p.Len()
	if g.Len() != n || m.Len() != n || v.Len() != n {
		panic("model: AdamW: length mismatch")
	}
	if step < 1 {
		panic("model: AdamW: step counts from 1")
	}
	for _, t := range []*model.Tensor{p, g, m, v} {
		need(t, 0, "cuda: AdamW: tensor of another backend")
	}
	if !b.begin() {
		return
	}
	defer b.end()
	b1, b2 := decimal64(beta1), decimal64(beta2)
	bc1 := 1 - math.Pow(b1, float64(step))
	bc2 := 1 - math.Pow(b2, float64(step))
	lr64, e := decimal64(lr), decimal64(eps)
	decay := 1 - lr64*decimal64(wd)
	b.each(kAdamW, n, devPtr(p), devPtr(g), devPtr(m), devPtr(v), i64(n),
		f64(b1), f64(b2), f64(bc1), f64(bc2), f64(lr64), f64(e), f64(decay), f32arg(gradScale))
}
