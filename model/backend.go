// The closed list of operations, as the Backend interface every compute
// backend implements (CPU here, CUDA in native/ behind the cuda tag).

package model

// Backend implements every op on the closed list. The model, the tape, the
// trainer and the search are written against this interface only.
//
// Conventions, stated once for every method:
//   - Arguments come outputs first, then inputs, weights, saved values, then
//     dimensions. Shapes in the comments use named dimensions and are
//     row-major; a tensor's own shape is not consulted, only its length.
//   - Forward ops overwrite their outputs. Backward ops ACCUMULATE into their
//     gradient outputs (d… += …) unless the comment says "overwrites". A nil
//     gradient output means "not needed" and is skipped.
//   - Inputs are never modified. Outputs never alias inputs unless stated.
//   - Index tensors (x, y, idx) hold int32 values; every other tensor float32.
//   - Shape and index mistakes are programmer errors and panic with a
//     "model: …" message. A device backend records the first driver failure
//     and reports it from Err; ops after a failure do nothing.
//
// A Backend value is not safe for concurrent use.
type Backend interface {
	// Name is a short identifier: "cpu", "cuda".
	Name() string
	// Alloc returns zeroed memory for n float32 elements.
	Alloc(n int) *Memory
	// AllocInt returns zeroed memory for n int32 elements.
	AllocInt(n int) *Memory
	// Free releases memory (a no-op for garbage-collected memory).
	Free(m *Memory)
	// Upload copies host values into t (len(src) == t.Len()).
	Upload(t *Tensor, src []float32)
	// UploadInt copies host int32 values into the int tensor t.
	UploadInt(t *Tensor, src []int32)
	// Download copies t into dst (len(dst) == t.Len()).
	Download(dst []float32, t *Tensor)
	// DownloadInt copies the int tensor t into dst.
	DownloadInt(dst []int32, t *Tensor)
	// Sync waits for queued work and returns the first error seen, if any.
	Sync() error
	// Err returns the first error seen, without waiting.
	Err() error

	// Zero overwrites t with zeros.
	Zero(t *Tensor)
	// Copy overwrites dst with src (equal lengths).
	Copy(dst, src *Tensor)
	// Axpy: y += alpha·x (equal lengths).
	Axpy(y *Tensor, alpha float32, x *Tensor)
	// Scale: t *= alpha, in place.
	Scale(t *Tensor, alpha float32)
	// Add: out = a + b (equal lengths; out may alias a or b).
	Add(out, a, b *Tensor)
	// AddRows: out[n,c] = inp[n,c] + row[c]. out (N,C), inp (N,C), row (C). out may alias inp.
	AddRows(out, inp, row *Tensor, N, C int)
	// SumRows: drow[c] += Σ_n dout[n,c]. drow (C), dout (N,C).
	SumRows(drow, dout *Tensor, N, C int)
	// Mul: out = a ⊙ b, elementwise (equal lengths; out must not alias a or b).
	Mul(out, a, b *Tensor)
	// MulBackward: da += dout ⊙ b, db += dout ⊙ a (equal lengths).
	MulBackward(da, db, dout, a, b *Tensor)

	// Gemm: C = alpha·op(A)·op(B) + beta·C, row-major, contiguous.
	// op(A) is (M,K): A is (M,K), or (K,M) when transA. op(B) is (K,N): B is
	// (K,N), or (N,K) when transB. C is (M,N). beta = 0 overwrites C (even
	// NaN in C), beta = 1 accumulates.
	Gemm(c, a, b *Tensor, transA, transB bool, M, N, K int, alpha, beta float32)

	// PairEmbed builds the inductor's tokens for N pairs:
	// out[n,l,:]     = val[x[n,l]] + pos[l] + chan[0]   for l < L
	// out[n,L+l,:]   = val[y[n,l]] + pos[l] + chan[1]   for l < L
	// out[n,2L+t,:]  = slot[t] + chan[2]                for t < T
	// out (N,2L+T,C), x,y (N,L) int, val (V,C), pos (L,C), chan (3,C), slot (T,C).
	PairEmbed(out, x, y, val, pos, chn, slot *Tensor, N, L, T, C int)
	// PairEmbedBackward accumulates into dval, dpos, dchan, dslot.
	PairEmbedBackward(dval, dpos, dchn, dslot, dout, x, y *Tensor, N, L, T, C int)

	// LayerNorm: out = (inp-mean)·rstd·w + b over C, eps 1e-5; saves mean, rstd (N).
	// out (N,C), inp (N,C), w,b (C).
	LayerNorm(out, mean, rstd, inp, w, b *Tensor, N, C int)
	// LayerNormBackward accumulates into dinp, dw, db.
	LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd *Tensor, N, C int)

	// Attention: multi-head self-attention without mask, as PyTorch's
	// MultiheadAttention core. qkv (B,S,3C) holds q | k | v per token, head h
	// using columns h·C/NH … (h+1)·C/NH of each; att (B,NH,S,S) saves the
	// softmax of q·kᵀ/sqrt(C/NH); out (B,S,C) = att·v with heads concatenated.
	Attention(out, att, qkv *Tensor, B, S, C, NH int)
	// AttentionBackward accumulates into dqkv. scratch (B,NH,S,S) is overwritten.
	AttentionBackward(dqkv, scratch, dout, qkv, att *Tensor, B, S, C, NH int)

	// GELU: out = inp·Φ(inp) (exact, erf form, as PyTorch's nn.GELU()).
	GELU(out, inp *Tensor)
	// GELUBackward: dinp += dout·GELU'(inp); with acc false it overwrites
	// dinp = dout·GELU'(inp) (the tape's first write of dinp).
	GELUBackward(dinp, dout, inp *Tensor, acc bool)
	// BiasGELU: out[r,j,:] = GELU(inp[r,j,:] + bias[r,:]) for j < m, the sum
	// rounded to float32 before the GELU (as AddRows or Add, then GELU).
	// out, inp (R,m,C), bias (R,C); R = 1 is one bias row for all rows.
	BiasGELU(out, inp, bias *Tensor, R, m, C int)
	// BiasGELUBackward: with d = dout·GELU'(inp + bias[r]) per element,
	// dinp += d (acc false: dinp = d; dinp nil: skipped) and dbias[r,:] +=
	// Σ_j d[r,j,:] (dbias nil: skipped).
	BiasGELUBackward(dinp, dbias, dout, inp, bias *Tensor, R, m, C int, acc bool)

	// SliceRows: out[n,r,:] = inp[n,start+r,:]. out (N,R,C), inp (N,S,C).
	SliceRows(out, inp *Tensor, N, S, start, R, C int)
	// SliceRowsBackward: dinp[n,start+r,:] += dout[n,r,:].
	SliceRowsBackward(dinp, dout *Tensor, N, S, start, R, C int)

	// PoolPairs pools the m pair encodings of each of B specifications.
	// loo: out[b,i,:] = (Σ_j inp[b,j,:] − inp[b,i,:])/(m−1), out (B,m,C).
	// mean: out[b,:] = Σ_j inp[b,j,:]/m, out (B,C). inp (B,m,C).
	PoolPairs(out, inp *Tensor, B, m, C int, loo bool)
	// PoolPairsBackward accumulates into dinp.
	PoolPairsBackward(dinp, dout *Tensor, B, m, C int, loo bool)

	// RepeatRows: out[r,j,:] = inp[r,:] for j < m. out (R,m,C), inp (R,C).
	RepeatRows(out, inp *Tensor, R, m, C int)
	// RepeatRowsBackward: dinp[r,:] += Σ_j dout[r,j,:].
	RepeatRowsBackward(dinp, dout *Tensor, R, m, C int)

	// Transpose01: out[b,a,:] = inp[a,b,:] (acc: +=). out (B,A,C), inp (A,B,C).
	// It is its own backward with acc = true and A, B swapped.
	Transpose01(out, inp *Tensor, A, B, C int, acc bool)

	// Gumbel overwrites dst with standard Gumbel noise −log(−log u), where
	// u = GumbelUniform(seed, i) for element i, computed in float64 and
	// rounded: every backend draws the same noise for the same seed.
	Gumbel(dst *Tensor, seed uint64)
	// Softmax: out[n,:] = softmax((logits[n,:] + noise[n,:])/tau) over K.
	// noise may be nil (no noise). out, logits, noise (N,K).
	Softmax(out, logits, noise *Tensor, tau float32, N, K int)
	// SoftmaxBackward: dlogits += (out ⊙ (dout − Σ_k dout·out))/tau; with
	// acc false it overwrites dlogits.
	SoftmaxBackward(dlogits, dout, out *Tensor, tau float32, N, K int, acc bool)
	// OneHot: out[n,:] = onehot(idx[n]) over K. out (N,K), idx (N) int.
	OneHot(out, idx *Tensor, N, K int)
	// ArgmaxOneHot: out[n,:] = onehot(argmax_k logits[n,k]) (first max wins).
	ArgmaxOneHot(out, logits *Tensor, N, K int)

	// SkipMix is the interpreter's gate: g = z[n,skip],
	// out[n,:] = g·prev[n,:] + (1−g)·hat[n,:]. out, prev, hat (N,D); z (N,K).
	SkipMix(out, prev, hat, z *Tensor, N, D, K, skip int)
	// SkipMixBackward accumulates into dprev, dhat and dz[:,skip]; an output
	// whose flag in acc (SkipMixAcc*) is clear is overwritten instead (dz:
	// its whole rows, zero outside column skip).
	SkipMixBackward(dprev, dhat, dz, dout, prev, hat, z *Tensor, N, D, K, skip int, acc SkipMixAcc)

	// SoftmaxMix is the interpreter's state update in one pass, in place of
	// AddRows, Softmax and SkipMix: over each K consecutive elements,
	// hat = softmax((logits + bias + noise)/tau), then with g = z[n,skip]
	// out[n,:] = g·prev[n,:] + (1−g)·hat[n,:]: the same float32 and float64
	// operations in the same order, so equal to the three ops bit for bit.
	// out, hat, logits, prev, noise (N,D); z (N,Kz). bias (Db) is added to
	// flat element e as bias[e mod Db] (nil: none; the search's frozen
	// output bias); noise may be nil. D and Db are multiples of K.
	SoftmaxMix(out, hat, logits, bias, noise, prev, z *Tensor, tau float32, N, D, K, Db, Kz, skip int)
	// SoftmaxMixBackward: with dhat = (1−g)·dout, dlogits += the softmax
	// backward of dhat (as SoftmaxBackward), dprev += g·dout and
	// dz[n,skip] += Σ_d dout·(prev − hat) (float64); an output whose flag in
	// acc is clear is overwritten (SkipMixAccHat stands for dlogits; dz:
	// whole rows); nil outputs are skipped.
	SoftmaxMixBackward(dlogits, dprev, dz, dout, prev, hat, z *Tensor, tau float32, N, D, K, Kz, skip int, acc SkipMixAcc)

	// NLL: out[0] = scale·Σ_n −log(max(p[n,y[n]], 1e-8)). p (N,V), y (N) int, out (1).
	NLL(out, p, y *Tensor, N, V int, scale float32)
	// NLLBackward: dp[n,y[n]] += −dout[0]·scale/p[n,y[n]] where p > 1e-8.
	NLLBackward(dp, dout, p, y *Tensor, N, V int, scale float32)
	// SeqScore scores R sequences of L positions against targets (forward
	// only): loglik[r] = Σ_l log(max(p[r,l,y],1e-8)) and exact[r] = 1 when
	// argmax_v p[r,l,:] == y[r,l] at every l, else 0. p (R,L,V), y (R,L).
	SeqScore(loglik, exact, p, y *Tensor, R, L, V int)

	// ReuseReg is the batch reuse regulariser on probabilities q (N,D):
	// out[0] = Σ_d [1 − exp(Σ_n log1p(−min(q[n,d], 1−1e-6)))].
	ReuseReg(out, q *Tensor, N, D int)
	// ReuseRegBackward: dq[n,d] += dout[0]·exp(S_d)/(1−q[n,d]) where q < 1−1e-6.
	ReuseRegBackward(dq, dout, q *Tensor, N, D int)

	// SumSquares: out[0] = Σ x² (overwrites, accumulated in float64 or
	// pairwise so that the result does not depend on the number of threads).
	SumSquares(out, x *Tensor)
	// AdamW updates p in place from g·gradScale with moments m, v (PyTorch's
	// AdamW: p −= lr·wd·p; then bias-corrected Adam with eps outside the sqrt).
	// step counts from 1. All four tensors have equal length.
	AdamW(p, g, m, v *Tensor, lr, beta1, beta2, eps, wd, gradScale float32, step int)
}

// GumbelUniform is the counter-based uniform draw behind Backend.Gumbel:
// a SplitMix64 finaliser of seed and index, whose top 24 bits k give
// u = (k + 0.5)/2²⁴ ∈ (0,1), exactly, in float64 (in float32 the largest
// value would round to 1 and its noise to +Inf). Device kernels compute the
// same value.
func GumbelUniform(seed uint64, i uint64) float64 {
	z := seed + (i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return (float64(z>>40) + 0.5) / (1 << 24)
}

// SkipMixAcc says which outputs of SkipMixBackward accumulate (a set flag)
// rather than being overwritten.
type SkipMixAcc uint8

// The outputs of SkipMixBackward.
const (
	SkipMixAccPrev SkipMixAcc = 1 << iota
	SkipMixAccHat
	SkipMixAccZ
	SkipMixAccAll = SkipMixAccPrev | SkipMixAccHat | SkipMixAccZ
)

// FusedGumbeler is implemented by backends whose Softmax and SoftmaxMix can
// draw Gumbel noise themselves from a noise tensor over GumbelNoise memory
// (NewGumbelNoise). FusedGumbel reports whether they do now; the values are
// then those the backend's Gumbel would write (CUDA: with SetFastGumbel on).
type FusedGumbeler interface{ FusedGumbel() bool }

// fusedGumbel reports whether b draws Softmax's and SoftmaxMix's noise itself.
func fusedGumbel(b Backend) bool {
	f, ok := b.(FusedGumbeler)
	return ok && f.FusedGumbel()
}
