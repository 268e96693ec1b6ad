// Profiled wraps a Backend and times every op, synchronising after each one
// so that device time is attributed to the op that spent it. It is a
// measuring tool (native bench --profile), not for production runs.
// Generated from backend.go's method list; keep it in step with Backend.

package model

import (
	"fmt"
	"sort"
	"time"
)

// Profiled is a Backend that records the wall time and call count of every
// op of the wrapped backend B.
type Profiled struct {
	Backend
	times map[string]time.Duration
	calls map[string]int
	gemms map[string]*GemmTime
}

// NewProfiled wraps b.
func NewProfiled(b Backend) *Profiled {
	return &Profiled{Backend: b, times: map[string]time.Duration{}, calls: map[string]int{}, gemms: map[string]*GemmTime{}}
}

// GemmTime is one matrix-product shape of a profile: C (M×N) from A (M×K,
// or K×M with TransA) and B (K×N, or N×K with TransB).
type GemmTime struct {
	Shape   string        `json:"shape"` // "M×N×K" and the transposes, e.g. "51200×512×512 NT"
	Calls   int           `json:"calls"`
	Total   time.Duration `json:"total_ns"`
	TFLOPS  float64       `json:"tflops"` // 2·M·N·K per call over the time
	flopsPC float64
}

// GemmProfile returns the matrix products by shape, largest total time first.
func (p *Profiled) GemmProfile() []GemmTime {
	var rows []GemmTime
	for _, g := range p.gemms {
		r := *g
		if s := r.Total.Seconds(); s > 0 {
			r.TFLOPS = r.flopsPC * float64(r.Calls) / s / 1e12
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Total > rows[j].Total })
	return rows
}

func (p *Profiled) done(op string, t0 time.Time) {
	p.Backend.Sync()
	p.times[op] += time.Since(t0)
	p.calls[op]++
}

// OpTime is one row of a profile.
type OpTime struct {
	Op    string        `json:"op"`
	Calls int           `json:"calls"`
	Total time.Duration `json:"total_ns"`
}

// Profile returns the ops by total time, largest first.
func (p *Profiled) Profile() []OpTime {
	var rows []OpTime
	for op, t := range p.times {
		rows = append(rows, OpTime{op, p.calls[op], t})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Total > rows[j].Total })
	return rows
}

// Reset forgets the recorded times.
func (p *Profiled) Reset() {
	clear(p.times)
	clear(p.calls)
	clear(p.gemms)
}

// Upload times the wrapped backend's Upload.
func (pr *Profiled) Upload(t *Tensor, src []float32) {
	defer pr.done("Upload", time.Now())
	pr.Backend.Upload(t, src)
}

// UploadInt times the wrapped backend's UploadInt.
func (pr *Profiled) UploadInt(t *Tensor, src []int32) {
	defer pr.done("UploadInt", time.Now())
	pr.Backend.UploadInt(t, src)
}

// Download times the wrapped backend's Download.
func (pr *Profiled) Download(dst []float32, t *Tensor) {
	defer pr.done("Download", time.Now())
	pr.Backend.Download(dst, t)
}

// DownloadInt times the wrapped backend's DownloadInt.
func (pr *Profiled) DownloadInt(dst []int32, t *Tensor) {
	defer pr.done("DownloadInt", time.Now())
	pr.Backend.DownloadInt(dst, t)
}

// Zero times the wrapped backend's Zero.
func (pr *Profiled) Zero(t *Tensor) {
	defer pr.done("Zero", time.Now())
	pr.Backend.Zero(t)
}

// Copy times the wrapped backend's Copy.
func (pr *Profiled) Copy(dst, src *Tensor) {
	defer pr.done("Copy", time.Now())
	pr.Backend.Copy(dst, src)
}

// Axpy times the wrapped backend's Axpy.
func (pr *Profiled) Axpy(y *Tensor, alpha float32, x *Tensor) {
	defer pr.done("Axpy", time.Now())
	pr.Backend.Axpy(y, alpha, x)
}

// Scale times the wrapped backend's Scale.
func (pr *Profiled) Scale(t *Tensor, alpha float32) {
	defer pr.done("Scale", time.Now())
	pr.Backend.Scale(t, alpha)
}

// Add times the wrapped backend's Add.
func (pr *Profiled) Add(out, a, b *Tensor) {
	defer pr.done("Add", time.Now())
	pr.Backend.Add(out, a, b)
}

// AddRows times the wrapped backend's AddRows.
func (pr *Profiled) AddRows(out, inp, row *Tensor, N, C int) {
	defer pr.done("AddRows", time.Now())
	pr.Backend.AddRows(out, inp, row, N, C)
}

// SumRows times the wrapped backend's SumRows.
func (pr *Profiled) SumRows(drow, dout *Tensor, N, C int) {
	defer pr.done("SumRows", time.Now())
	pr.Backend.SumRows(drow, dout, N, C)
}

// Gemm times the wrapped backend's Gemm.
func (pr *Profiled) Gemm(c, a, b *Tensor, transA, transB bool, M, N, K int, alpha, beta float32) {
	t0 := time.Now()
	pr.Backend.Gemm(c, a, b, transA, transB, M, N, K, alpha, beta)
	pr.done("Gemm", t0)
	tr := map[bool]string{false: "N", true: "T"}
	key := fmt.Sprintf("%d×%d×%d %s%s", M, N, K, tr[transA], tr[transB])
	g := pr.gemms[key]
	if g == nil {
		g = &GemmTime{Shape: key, flopsPC: 2 * float64(M) * float64(N) * float64(K)}
		pr.gemms[key] = g
	}
	g.Calls++
	g.Total += time.Since(t0)
}

// PairEmbed times the wrapped backend's PairEmbed.
func (pr *Profiled) PairEmbed(out, x, y, val, pos, chn, slot *Tensor, N, L, T, C int) {
	defer pr.done("PairEmbed", time.Now())
	pr.Backend.PairEmbed(out, x, y, val, pos, chn, slot, N, L, T, C)
}

// PairEmbedBackward times the wrapped backend's PairEmbedBackward.
func (pr *Profiled) PairEmbedBackward(dval, dpos, dchn, dslot, dout, x, y *Tensor, N, L, T, C int) {
	defer pr.done("PairEmbedBackward", time.Now())
	pr.Backend.PairEmbedBackward(dval, dpos, dchn, dslot, dout, x, y, N, L, T, C)
}

// LayerNorm times the wrapped backend's LayerNorm.
func (pr *Profiled) LayerNorm(out, mean, rstd, inp, w, b *Tensor, N, C int) {
	defer pr.done("LayerNorm", time.Now())
	pr.Backend.LayerNorm(out, mean, rstd, inp, w, b, N, C)
}

// LayerNormBackward times the wrapped backend's LayerNormBackward.
func (pr *Profiled) LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd *Tensor, N, C int) {
	defer pr.done("LayerNormBackward", time.Now())
	pr.Backend.LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd, N, C)
}

// Attention times the wrapped backend's Attention.
func (pr *Profiled) Attention(out, att, qkv *Tensor, B, S, C, NH int) {
	defer pr.done("Attention", time.Now())
	pr.Backend.Attention(out, att, qkv, B, S, C, NH)
}

// AttentionBackward times the wrapped backend's AttentionBackward.
func (pr *Profiled) AttentionBackward(dqkv, scratch, dout, qkv, att *Tensor, B, S, C, NH int) {
	defer pr.done("AttentionBackward", time.Now())
	pr.Backend.AttentionBackward(dqkv, scratch, dout, qkv, att, B, S, C, NH)
}

// GELU times the wrapped backend's GELU.
func (pr *Profiled) GELU(out, inp *Tensor) {
	defer pr.done("GELU", time.Now())
	pr.Backend.GELU(out, inp)
}

// GELUBackward times the wrapped backend's GELUBackward.
func (pr *Profiled) GELUBackward(dinp, dout, inp *Tensor, acc bool) {
	defer pr.done("GELUBackward", time.Now())
	pr.Backend.GELUBackward(dinp, dout, inp, acc)
}

// SliceRows times the wrapped backend's SliceRows.
func (pr *Profiled) SliceRows(out, inp *Tensor, N, S, start, R, C int) {
	defer pr.done("SliceRows", time.Now())
	pr.Backend.SliceRows(out, inp, N, S, start, R, C)
}

// SliceRowsBackward times the wrapped backend's SliceRowsBackward.
func (pr *Profiled) SliceRowsBackward(dinp, dout *Tensor, N, S, start, R, C int) {
	defer pr.done("SliceRowsBackward", time.Now())
	pr.Backend.SliceRowsBackward(dinp, dout, N, S, start, R, C)
}

// PoolPairs times the wrapped backend's PoolPairs.
func (pr *Profiled) PoolPairs(out, inp *Tensor, B, m, C int, loo bool) {
	defer pr.done("PoolPairs", time.Now())
	pr.Backend.PoolPairs(out, inp, B, m, C, loo)
}

// PoolPairsBackward times the wrapped backend's PoolPairsBackward.
func (pr *Profiled) PoolPairsBackward(dinp, dout *Tensor, B, m, C int, loo bool) {
	defer pr.done("PoolPairsBackward", time.Now())
	pr.Backend.PoolPairsBackward(dinp, dout, B, m, C, loo)
}

// RepeatRows times the wrapped backend's RepeatRows.
func (pr *Profiled) RepeatRows(out, inp *Tensor, R, m, C int) {
	defer pr.done("RepeatRows", time.Now())
	pr.Backend.RepeatRows(out, inp, R, m, C)
}

// BiasGELU times the wrapped backend's BiasGELU.
func (pr *Profiled) BiasGELU(out, inp, bias *Tensor, R, m, C int) {
	defer pr.done("BiasGELU", time.Now())
	pr.Backend.BiasGELU(out, inp, bias, R, m, C)
}

// BiasGELUBackward times the wrapped backend's BiasGELUBackward.
func (pr *Profiled) BiasGELUBackward(dinp, dbias, dout, inp, bias *Tensor, R, m, C int, acc bool) {
	defer pr.done("BiasGELUBackward", time.Now())
	pr.Backend.BiasGELUBackward(dinp, dbias, dout, inp, bias, R, m, C, acc)
}

// RepeatRowsBackward times the wrapped backend's RepeatRowsBackward.
func (pr *Profiled) RepeatRowsBackward(dinp, dout *Tensor, R, m, C int) {
	defer pr.done("RepeatRowsBackward", time.Now())
	pr.Backend.RepeatRowsBackward(dinp, dout, R, m, C)
}

// Transpose01 times the wrapped backend's Transpose01.
func (pr *Profiled) Transpose01(out, inp *Tensor, A, B, C int, acc bool) {
	defer pr.done("Transpose01", time.Now())
	pr.Backend.Transpose01(out, inp, A, B, C, acc)
}

// FusedGumbel is the wrapped backend's (false when it is no FusedGumbeler),
// so that a profiled search draws its noise as the plain one does.
func (pr *Profiled) FusedGumbel() bool { return fusedGumbel(pr.Backend) }

// Gumbel times the wrapped backend's Gumbel.
func (pr *Profiled) Gumbel(dst *Tensor, seed uint64) {
	defer pr.done("Gumbel", time.Now())
	pr.Backend.Gumbel(dst, seed)
}

// Softmax times the wrapped backend's Softmax.
func (pr *Profiled) Softmax(out, logits, noise *Tensor, tau float32, N, K int) {
	defer pr.done("Softmax", time.Now())
	pr.Backend.Softmax(out, logits, noise, tau, N, K)
}

// SoftmaxBackward times the wrapped backend's SoftmaxBackward.
func (pr *Profiled) SoftmaxBackward(dlogits, dout, out *Tensor, tau float32, N, K int, acc bool) {
	defer pr.done("SoftmaxBackward", time.Now())
	pr.Backend.SoftmaxBackward(dlogits, dout, out, tau, N, K, acc)
}

// OneHot times the wrapped backend's OneHot.
func (pr *Profiled) OneHot(out, idx *Tensor, N, K int) {
	defer pr.done("OneHot", time.Now())
	pr.Backend.OneHot(out, idx, N, K)
}

// ArgmaxOneHot times the wrapped backend's ArgmaxOneHot.
func (pr *Profiled) ArgmaxOneHot(out, logits *Tensor, N, K int) {
	defer pr.done("ArgmaxOneHot", time.Now())
	pr.Backend.ArgmaxOneHot(out, logits, N, K)
}

// Mul times the wrapped backend's Mul.
func (pr *Profiled) Mul(out, a, b *Tensor) {
	defer pr.done("Mul", time.Now())
	pr.Backend.Mul(out, a, b)
}

// MulBackward times the wrapped backend's MulBackward.
func (pr *Profiled) MulBackward(da, db, dout, a, b *Tensor) {
	defer pr.done("MulBackward", time.Now())
	pr.Backend.MulBackward(da, db, dout, a, b)
}

// SkipMix times the wrapped backend's SkipMix.
func (pr *Profiled) SkipMix(out, prev, hat, z *Tensor, N, D, K, skip int) {
	defer pr.done("SkipMix", time.Now())
	pr.Backend.SkipMix(out, prev, hat, z, N, D, K, skip)
}

// SoftmaxMix times the wrapped backend's SoftmaxMix.
func (pr *Profiled) SoftmaxMix(out, hat, logits, bias, noise, prev, z *Tensor, tau float32, N, D, K, Db, Kz, skip int) {
	defer pr.done("SoftmaxMix", time.Now())
	pr.Backend.SoftmaxMix(out, hat, logits, bias, noise, prev, z, tau, N, D, K, Db, Kz, skip)
}

// SoftmaxMixBackward times the wrapped backend's SoftmaxMixBackward.
func (pr *Profiled) SoftmaxMixBackward(dlogits, dprev, dz, dout, prev, hat, z *Tensor, tau float32, N, D, K, Kz, skip int, acc SkipMixAcc) {
	defer pr.done("SoftmaxMixBackward", time.Now())
	pr.Backend.SoftmaxMixBackward(dlogits, dprev, dz, dout, prev, hat, z, tau, N, D, K, Kz, skip, acc)
}

// SkipMixBackward times the wrapped backend's SkipMixBackward.
func (pr *Profiled) SkipMixBackward(dprev, dhat, dz, dout, prev, hat, z *Tensor, N, D, K, skip int, acc SkipMixAcc) {
	defer pr.done("SkipMixBackward", time.Now())
	pr.Backend.SkipMixBackward(dprev, dhat, dz, dout, prev, hat, z, N, D, K, skip, acc)
}

// NLL times the wrapped backend's NLL.
func (pr *Profiled) NLL(out, p, y *Tensor, N, V int, scale float32) {
	defer pr.done("NLL", time.Now())
	pr.Backend.NLL(out, p, y, N, V, scale)
}

// NLLBackward times the wrapped backend's NLLBackward.
func (pr *Profiled) NLLBackward(dp, dout, p, y *Tensor, N, V int, scale float32) {
	defer pr.done("NLLBackward", time.Now())
	pr.Backend.NLLBackward(dp, dout, p, y, N, V, scale)
}

// SeqScore times the wrapped backend's SeqScore.
func (pr *Profiled) SeqScore(loglik, exact, p, y *Tensor, R, L, V int) {
	defer pr.done("SeqScore", time.Now())
	pr.Backend.SeqScore(loglik, exact, p, y, R, L, V)
}

// ReuseReg times the wrapped backend's ReuseReg.
func (pr *Profiled) ReuseReg(out, q *Tensor, N, D int) {
	defer pr.done("ReuseReg", time.Now())
	pr.Backend.ReuseReg(out, q, N, D)
}

// ReuseRegBackward times the wrapped backend's ReuseRegBackward.
func (pr *Profiled) ReuseRegBackward(dq, dout, q *Tensor, N, D int) {
	defer pr.done("ReuseRegBackward", time.Now())
	pr.Backend.ReuseRegBackward(dq, dout, q, N, D)
}

// SumSquares times the wrapped backend's SumSquares.
func (pr *Profiled) SumSquares(out, x *Tensor) {
	defer pr.done("SumSquares", time.Now())
	pr.Backend.SumSquares(out, x)
}

// AdamW times the wrapped backend's AdamW.
func (pr *Profiled) AdamW(p, g, m, v *Tensor, lr, beta1, beta2, eps, wd, gradScale float32, step int) {
	defer pr.done("AdamW", time.Now())
	pr.Backend.AdamW(p, g, m, v, lr, beta1, beta2, eps, wd, gradScale, step)
}
