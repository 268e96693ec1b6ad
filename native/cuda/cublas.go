//go:build cuda

// Matrix products. Gemm goes through gorgonia.org/cu/blas; the strided-
// batched product that attention needs is missing there, so this file calls
// cublasSgemmStridedBatched itself on a handle of its own. With TF32 on
// (SetTF32), Gemm goes instead through a third handle, also our own, whose
// math mode is CUBLAS_TF32_TENSOR_OP_MATH (gorgonia.org/cu/blas gives no
// access to its handle's math mode). All handles use the legacy default
// stream, as the kernels do, so all work stays in order.
//
// Row-major to cuBLAS's column-major: a row-major matrix X with row stride
// ld is the column-major Xᵀ with leading dimension ld, so C = op(A)·op(B)
// row-major is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, i.e. with the operands (and
// their transpose flags and sizes) swapped.

package cuda

/*
#cgo LDFLAGS: -lcublas
#include <cublas_v2.h>

static int nli_cublas_create(cublasHandle_t *h) { return (int)cublasCreate(h); }
static int nli_cublas_destroy(cublasHandle_t h) { return (int)cublasDestroy(h); }
static int nli_cublas_tf32(cublasHandle_t h) { return (int)cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH); }

// Column-major C = alpha·op(A)·op(B) + beta·C; device pointers as integers,
// scalars on the host. On a handle in TF32 math mode, cuBLAS may round A and
// B to TF32 and use tensor cores (accumulating in float32).
static int nli_sgemm(cublasHandle_t h, int ta, int tb, int m, int n, int k, float alpha,
                     unsigned long long A, int lda, unsigned long long B, int ldb, float beta,
                     unsigned long long C, int ldc) {
	return (int)cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
		m, n, k, &alpha, (const float *)A, lda, (const float *)B, ldb, &beta, (float *)C, ldc);
}

// Column-major C_i = alpha·op(A_i)·op(B_i) + beta·C_i for i < batch; device
// pointers as integers, scalars on the host.
static int nli_sgemm_strided(cublasHandle_t h, int ta, int tb, int m, int n, int k, float alpha,
                             unsigned long long A, int lda, long long sA,
                             unsigned long long B, int ldb, long long sB, float beta,
                             unsigned long long C, int ldc, long long sC, int batch) {
	return (int)cublasSgemmStridedBatched(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
		m, n, k, &alpha, (const float *)A, lda, sA, (const float *)B, ldb, sB, &beta,
		(float *)C, ldc, sC, batch);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gonum.org/v1/gonum/blas"
)

// handle is a cuBLAS handle of this package's own.
type handle struct{ h C.cublasHandle_t }

// newHandle creates a handle; with tf32 set its math mode allows TF32
// tensor-core arithmetic in float32 products.
func newHandle(tf32 bool) (handle, error) {
	var h handle
	if st := C.nli_cublas_create(&h.h); st != 0 {
		return handle{}, fmt.Errorf("cublasCreate: status %d", int(st))
	}
	if tf32 {
		if st := C.nli_cublas_tf32(h.h); st != 0 {
			h.destroy()
			return handle{}, fmt.Errorf("cublasSetMathMode(CUBLAS_TF32_TENSOR_OP_MATH): status %d", int(st))
		}
	}
	return h, nil
}

func (h *handle) destroy() error {
	if h.h == nil {
		return nil
	}
	st := C.nli_cublas_destroy(h.h)
	h.h = nil
	if st != 0 {
		return fmt.Errorf("cublasDestroy: status %d", int(st))
	}
	return nil
}

// gemmBatched computes, for i < batch, the row-major
// C_i = alpha·op(A_i)·op(B_i) + beta·C_i with op(A_i) (M,K), op(B_i) (K,N),
// C_i (M,N); X_i starts at x + 4·i·sx bytes and has row stride ldx elements.
// The caller holds begin.
func (b *Backend) gemmBatched(transA, transB bool, M, N, K int, alpha float32,
	a uint64, lda, sa int, bm uint64, ldb, sb int, beta float32, c uint64, ldc, sc int, batch int) {
	if b.err != nil || M == 0 || N == 0 || batch == 0 {
		return
	}
	ta, tb := C.int(0), C.int(0)
	if transA {
		ta = 1
	}
	if transB {
		tb = 1
	}
	st := C.nli_sgemm_strided(b.batched.h, tb, ta, C.int(N), C.int(M), C.int(K), C.float(alpha),
		C.ulonglong(bm), C.int(ldb), C.longlong(sb),
		C.ulonglong(a), C.int(lda), C.longlong(sa), C.float(beta),
		C.ulonglong(c), C.int(ldc), C.longlong(sc), C.int(batch))
	if st != 0 {
		b.fail("cublasSgemmStridedBatched", fmt.Errorf("status %d", int(st)))
	}
}

// devSlice views n float32 elements of device memory at p as a Go slice, the
// form gorgonia.org/cu/blas takes; it is only handed to cuBLAS, never read.
func devSlice(p uint64, n int) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(uintptr(p))), n)
}

// sgemm is the row-major C = alpha·op(A)·op(B) + beta·C of contiguous
// matrices through gorgonia.org/cu/blas. The caller holds begin; M, N, K > 0.
func (b *Backend) sgemm(transA, transB bool, M, N, K int, alpha float32, a, bm uint64, beta float32, c uint64) {
	opA, lda := blas.NoTrans, K
	if transA {
		opA, lda = blas.Trans, M
	}
	opB, ldb := blas.NoTrans, N
	if transB {
		opB, ldb = blas.Trans, K
	}
	b.blas.Sgemm(opB, opA, N, M, K, alpha, devSlice(bm, K*N), ldb, devSlice(a, M*K), lda, beta, devSlice(c, M*N), N)
	if err := b.blas.Err(); err != nil {
		b.fail("cublasSgemm", err)
	}
}

// sgemmTF32 is sgemm on the handle in TF32 math mode (our own cgo call,
// which also allocates nothing on the Go side). The caller holds begin;
// M, N, K > 0.
func (b *Backend) sgemmTF32(transA, transB bool, M, N, K int, alpha float32, a, bm uint64, beta float32, c uint64) {
	ta, lda := C.int(0), K
	if transA {
		ta, lda = 1, M
	}
	tb, ldb := C.int(0), N
	if transB {
		tb, ldb = 1, K
	}
	st := C.nli_sgemm(b.tf32.h, tb, ta, C.int(N), C.int(M), C.int(K), C.float(alpha),
		C.ulonglong(bm), C.int(ldb), C.ulonglong(a), C.int(lda), C.float(beta), C.ulonglong(c), C.int(N))
	if st != 0 {
		b.fail("cublasSgemm (TF32)", fmt.Errorf("status %d", int(st)))
	}
}
