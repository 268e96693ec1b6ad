//go:build cuda

// The kernel table and launch helpers. Every kernel parameter is 8 bytes
// (gorgonia.org/cu's Launch copies 8 bytes per parameter): device pointers
// and sizes as integers, float scalars as float64 bits (kernels/*.cu).

package cuda

import (
	"math"

	"gorgonia.org/cu"
)

// kernel indexes Backend.fns.
type kernel int

const (
	kAxpy kernel = iota
	kScale
	kAdd
	kAddRows
	kGELU
	kGELUBackward
	kSliceRows
	kSliceRowsBackward
	kRepeatRows
	kTranspose01
	kPairEmbed
	kOneHot
	kSkipMix
	kSkipMixBackwardInputs
	kGumbel
	kGumbelF32
	kAdamW
	kGELUF32
	kGELUBackwardF32
	kBiasGELU
	kBiasGELUF32
	kBiasGELUBackward
	kBiasGELUBackwardF32
	kBiasGELUBackwardGroups
	kBiasGELUBackwardGroupsF32

	kLayerNorm
	kLayerNormBackwardInp
	kSoftmax
	kSoftmaxBackward
	kAttentionSoftmaxBackward
	kSkipMixBackwardZ
	kArgmaxOneHot
	kNLLBackward
	kSeqScore
	kReuseRegBackward
	kSoftmaxSmall
	kSoftmaxSmallF32
	kSoftmaxBackwardSmall
	kSkipMixBackward

	kSumRowsPartial
	kLayerNormBackwardWBPartial
	kPairEmbedBackwardPartial
	kReuseSumsPartial
	kColFinish
	kReuseFinish
	kReuseTotal
	kSumSquaresPartial
	kSumFinish
	kNLL
	kPoolPairs
	kPoolPairsBackward
	kRepeatRowsBackward
	kNLLPartial
	kNLLFinish

	numKernels
)

// kernelNames are the extern "C" names in kernels/*.cu.
var kernelNames = [numKernels]string{
	kAxpy:                  "axpy",
	kScale:                 "scale",
	kAdd:                   "add",
	kAddRows:               "add_rows",
	kGELU:                  "gelu",
	kGELUBackward:          "gelu_backward",
	kSliceRows:             "slice_rows",
	kSliceRowsBackward:     "slice_rows_backward",
	kRepeatRows:            "repeat_rows",
	kTranspose01:           "transpose01",
	kPairEmbed:             "pair_embed",
	kOneHot:                "one_hot",
	kSkipMix:               "skip_mix",
	kSkipMixBackwardInputs: "skip_mix_backward_inputs",
	kGumbel:                "gumbel",
	kGumbelF32:             "gumbel_f32",
	kAdamW:                 "adamw",
	kGELUF32:               "gelu_f32",
	kGELUBackwardF32:       "gelu_backward_f32",

	kBiasGELU:                  "bias_gelu",
	kBiasGELUF32:               "bias_gelu_f32",
	kBiasGELUBackward:          "bias_gelu_backward",
	kBiasGELUBackwardF32:       "bias_gelu_backward_f32",
	kBiasGELUBackwardGroups:    "bias_gelu_backward_groups",
	kBiasGELUBackwardGroupsF32: "bias_gelu_backward_groups_f32",

	kLayerNorm:                "layernorm",
	kLayerNormBackwardInp:     "layernorm_backward_inp",
	kSoftmax:                  "softmax",
	kSoftmaxBackward:          "softmax_backward",
	kAttentionSoftmaxBackward: "attention_softmax_backward",
	kSkipMixBackwardZ:         "skip_mix_backward_z",
	kArgmaxOneHot:             "argmax_one_hot",
	kNLLBackward:              "nll_backward",
	kSeqScore:                 "seq_score",
	kReuseRegBackward:         "reuse_reg_backward",
	kSoftmaxSmall:             "softmax_small",
	kSoftmaxSmallF32:          "softmax_small_f32",
	kSoftmaxBackwardSmall:     "softmax_backward_small",
	kSkipMixBackward:          "skip_mix_backward",

	kSumRowsPartial:             "sum_rows_partial",
	kLayerNormBackwardWBPartial: "layernorm_backward_wb_partial",
	kPairEmbedBackwardPartial:   "pair_embed_backward_partial",
	kReuseSumsPartial:           "reuse_sums_partial",
	kColFinish:                  "col_finish",
	kReuseFinish:                "reuse_finish",
	kReuseTotal:                 "reuse_total",
	kSumSquaresPartial:          "sum_squares_partial",
	kSumFinish:                  "sum_finish",
	kNLL:                        "nll",
	kPoolPairs:                  "pool_pairs",
	kPoolPairsBackward:          "pool_pairs_backward",
	kRepeatRowsBackward:         "repeat_rows_backward",
	kNLLPartial:                 "nll_partial",
	kNLLFinish:                  "nll_finish",
}

const (
	maxParams = 16      // the most parameters of any kernel
	threads   = 256     // block size of the 1-D kernels
	unroll    = 4       // elementwise.cu's UNROLL: elements per thread per pass of the LOOP4 kernels
	maxBlocks = 1 << 16 // grid cap; kernels loop over the rest
	oneBlock  = 512     // block size of the one-block reductions (a power of two)
	colBlock  = 32      // reduce.cu's COL_BLOCK
	rowLanes  = 8       // reduce.cu's ROW_LANES
	smallRows = 128     // rows.cu's SMALL_ROWS: the block size of the *_small kernels
	smallK    = 32      // rows.cu's SMALL_K: the longest row the *_small kernels take
)

// Argument encoders.
func i64(n int) uint64        { return uint64(int64(n)) }
func f64(x float64) uint64    { return math.Float64bits(x) }
func f32arg(x float32) uint64 { return math.Float64bits(float64(x)) }
func boolArg(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// launch runs kernel k on grid × block threads. The caller holds begin.
func (b *Backend) launch(k kernel, gx, gy, gz, bx, by int, args ...uint64) {
	b.launchShared(k, gx, gy, gz, bx, by, 0, args...)
}

// launchShared is launch with shared bytes of dynamic shared memory per block.
func (b *Backend) launchShared(k kernel, gx, gy, gz, bx, by, shared int, args ...uint64) {
	if b.err != nil {
		return
	}
	if len(args) > maxParams {
		panic("cuda: too many kernel parameters")
	}
	copy(b.vals[:], args)
	err := b.fns[k].Launch(gx, gy, gz, bx, by, 1, shared, cu.NoStream, b.params[:len(args)])
	b.fail(kernelNames[k], err)
}

// each launches a grid-stride kernel over n elements (nothing when n = 0).
func (b *Backend) each(k kernel, n int, args ...uint64) {
	if n <= 0 {
		return
	}
	b.launch(k, min((n+threads-1)/threads, maxBlocks), 1, 1, threads, 1, args...)
}

// each4 launches a grid-stride kernel that takes unroll elements per thread
// per pass (elementwise.cu's LOOP4) over n elements: a quarter of each's
// blocks, so that every thread gets its four.
func (b *Backend) each4(k kernel, n int, args ...uint64) {
	if n <= 0 {
		return
	}
	per := threads * unroll
	b.launch(k, min((n+per-1)/per, maxBlocks), 1, 1, threads, 1, args...)
}

// rows2D launches a kernel over rows rows of C elements with 2-D blocks of
// threads (elementwise.cu's ROWS2D, COLS2D): x across a row's W columns (W =
// C/4 float4s when vec), rounded up to whole warps and at most threads, y
// across rows, threads threads in all.
func (b *Backend) rows2D(k kernel, rows, C int, vec bool, args ...uint64) {
	if rows <= 0 || C <= 0 {
		return
	}
	W := C
	if vec {
		W = C / 4
	}
	tx := min((W+31)&^31, threads)
	ty := threads / tx
	b.launch(k, min((rows+ty-1)/ty, maxBlocks), 1, 1, tx, ty, args...)
}

// warps launches a kernel that gives each of rows rows one warp.
func (b *Backend) warps(k kernel, rows int, args ...uint64) {
	if rows <= 0 {
		return
	}
	per := threads / 32
	b.launch(k, min((rows+per-1)/per, maxBlocks), 1, 1, threads, 1, args...)
}

// rowsSmall launches a *_small kernel (rows.cu) over rows rows of K ≤
// smallK elements: blocks of smallRows threads, one thread per row, with
// the dynamic shared memory of its layout (smallShared).
func (b *Backend) rowsSmall(k kernel, rows, K int, backward bool, args ...uint64) {
	if rows <= 0 {
		return
	}
	b.launchShared(k, min((rows+smallRows-1)/smallRows, maxBlocks), 1, 1, smallRows, 1, smallShared(K, backward), args...)
}

// smallShared is the dynamic shared memory of a *_small kernel for rows of
// K elements, as rows.cu's small_smem layouts take it: a chunk of smallRows
// rows padded to K|1 floats, a float64, an int and a float per row
// (softmax_small); two such chunks, two float64 and a float per row
// (softmax_backward_small). 7.7 and 13.8 KB for K = 10, where static
// arrays for K = 32 took 19 and 36 KB.
func smallShared(K int, backward bool) int {
	kp := K | 1
	if backward {
		return smallRows * (2*8 + 2*kp*4 + 4)
	}
	return smallRows * (8 + kp*4 + 4 + 4)
}

// single launches a one-block kernel.
func (b *Backend) single(k kernel, args ...uint64) {
	b.launch(k, 1, 1, 1, oneBlock, 1, args...)
}

// chunksFor is the number of row chunks of a column reduction over rows.
func chunksFor(rows int) int {
	return min(max((rows+255)/256, 1), 256)
}

// colPartial launches a *_partial column reduction of Z destination rows of
// C columns over rows source rows into partial (Z·chunks·C float64).
func (b *Backend) colPartial(k kernel, C, chunks, Z int, args ...uint64) {
	b.launch(k, (C+colBlock-1)/colBlock, chunks, Z, colBlock, rowLanes, args...)
}
