// Package kernels holds the CUDA kernels of the native trainer: each .cu
// source beside the PTX that nvcc made from it (./build.sh kernels), both
// committed, the PTX embedded here. It is plain Go (no cgo, no build tag), so
// that CI checks on machines without CUDA that every PTX is current: the
// first line of each .ptx records the SHA-256 of its source
// (kernels_test.go). The backend that loads the PTX is native/cuda.
package kernels

import (
	_ "embed"
)

// HeaderPrefix starts the first line of every .ptx; the line goes on
// "<name>.cu sha256 <hex digest of the source>".
const HeaderPrefix = "// nli-kernels: source "

// NVCCFlags are the flags ./build.sh kernels passes to nvcc. compute_80 PTX
// JIT-compiles on A100- and H100-class cards; -fmad=false keeps a·b + c as
// two roundings, as Go computes it on amd64, so kernels match the CPU
// reference more closely.
const NVCCFlags = "-ptx -arch=compute_80 -fmad=false"

// Module is one compiled source file.
type Module struct {
	Name    string   // the file name without extension: "elementwise"
	PTX     string   // the PTX text, header line included
	Kernels []string // the extern "C" kernels it defines
}

//go:embed elementwise.ptx
var elementwisePTX string

//go:embed rows.ptx
var rowsPTX string

//go:embed reduce.ptx
var reducePTX string

// Modules returns every module in a fixed order.
func Modules() []Module {
	return []Module{
		{Name: "elementwise", PTX: elementwisePTX, Kernels: []string{
			"axpy", "scale", "add", "add_rows", "gelu", "gelu_backward",
			"slice_rows", "slice_rows_backward", "repeat_rows", "transpose01",
			"pair_embed", "one_hot", "skip_mix", "skip_mix_backward_inputs",
			"adamw", "gelu_f32", "gelu_backward_f32",
			"bias_gelu", "bias_gelu_f32", "bias_gelu_backward", "bias_gelu_backward_f32",
			"bias_gelu_backward_groups", "bias_gelu_backward_groups_f32",
		}},
		{Name: "rows", PTX: rowsPTX, Kernels: []string{
			"layernorm", "layernorm_backward_inp", "softmax", "softmax_backward",
			"attention_softmax_backward", "skip_mix_backward_z", "argmax_one_hot",
			"nll_backward", "seq_score", "reuse_reg_backward",
			"softmax_small", "softmax_small_f32", "softmax_backward_small", "skip_mix_backward", "gumbel", "gumbel_f32",
		}},
		{Name: "reduce", PTX: reducePTX, Kernels: []string{
			"sum_rows_partial", "layernorm_backward_wb_partial",
			"pair_embed_backward_partial", "reuse_sums_partial", "col_finish",
			"reuse_finish", "reuse_total", "sum_squares_partial", "sum_finish",
			"nll", "pool_pairs", "pool_pairs_backward", "repeat_rows_backward",
			"nll_partial", "nll_finish",
		}},
	}
}
