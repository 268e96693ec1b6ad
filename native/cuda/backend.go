//go:build cuda

// The Backend value: context, modules, cuBLAS handles, the sticky error,
// the scratch pool, and memory (Alloc, Free, Upload, Download, Sync).

package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"

	"github.com/nli-go/nli/kernels"
	"github.com/nli-go/nli/model"
)

// ErrNoDevice is returned (wrapped) by New when the driver reports no CUDA
// device.
var ErrNoDevice = errors.New("no CUDA device")

// PTXDirEnv names an environment variable: when set to a folder, New loads
// <folder>/<module>.ptx instead of the PTX embedded in package kernels (for
// trying kernel changes without rebuilding the Go binary).
const PTXDirEnv = "NLI_PTX_DIR"

// Backend is the CUDA model.Backend. Create it with New; Close releases it.
type Backend struct {
	dev  cu.Device
	ctx  cu.CUContext
	mods []cu.Module
	fns  [numKernels]cu.Function

	blas     *cublas.Standard // Gemm (float32)
	batched  handle           // attention's strided-batched products
	tf32     handle           // Gemm when useTF32 (TF32 math mode)
	useTF32  bool
	fastGELU bool // GELU and its backward in float32 (SetFastGELU)
	// fastGumbel: Gumbel's −log(−log u) in float32 (SetFastGumbel)
	fastGumbel bool
	// unfusedGumbel: no fused noise even with fastGumbel (SetFusedGumbel)
	unfusedGumbel bool
	// fastSoftmax: the one-thread-per-row softmax's exp and sum in float32
	// (SetFastSoftmax)
	fastSoftmax bool

	err     error
	errFlag cu.DevicePtr // device int32: code of the first op that met a bad index

	scratch      cu.DevicePtr // reused by ops that need temporaries
	scratchBytes int64
	stage        []float32 // host staging buffer of Upload and Download

	// Kernel parameters: vals[i] holds the i-th argument, params[i] points
	// at it (set once in New), so a launch allocates nothing.
	vals   [maxParams]uint64
	params [maxParams]unsafe.Pointer
}

var _ model.Backend = (*Backend)(nil)

// New creates a context on device 0, current on the calling OS thread (lock
// it first: runtime.LockOSThread), loads the kernels and creates the cuBLAS
// handles. The error wraps ErrNoDevice when there is no device.
func New() (*Backend, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count devices: %w (%w)", err, ErrNoDevice)
	}
	if n == 0 {
		return nil, fmt.Errorf("cuda: %w", ErrNoDevice)
	}
	b := &Backend{}
	for i := range b.params {
		b.params[i] = unsafe.Pointer(&b.vals[i])
	}
	if b.dev, err = cu.GetDevice(0); err != nil {
		return nil, fmt.Errorf("cuda: device 0: %w", err)
	}
	if b.ctx, err = b.dev.MakeContext(cu.SchedAuto); err != nil {
		return nil, fmt.Errorf("cuda: create context: %w", err)
	}
	if err := b.init(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// init loads the modules, resolves the kernels and creates the handles and
// the error flag; the context is current.
func (b *Backend) init() error {
	dir := os.Getenv(PTXDirEnv)
	found := map[string]cu.Function{}
	for _, m := range kernels.Modules() {
		ptx := m.PTX
		if dir != "" {
			data, err := os.ReadFile(filepath.Join(dir, m.Name+".ptx"))
			if err != nil {
				return fmt.Errorf("cuda: %s: %w", PTXDirEnv, err)
			}
			ptx = string(data)
		}
		mod, err := cu.LoadData(ptx)
		if err != nil {
			return fmt.Errorf("cuda: load module %s: %w", m.Name, err)
		}
		b.mods = append(b.mods, mod)
		for _, name := range m.Kernels {
			fn, err := mod.Function(name)
			if err != nil {
				return fmt.Errorf("cuda: module %s: kernel %s: %w", m.Name, name, err)
			}
			found[name] = fn
		}
	}
	for k, name := range kernelNames {
		fn, ok := found[name]
		if !ok {
			return fmt.Errorf("cuda: kernel %s is in no module", name)
		}
		b.fns[k] = fn
	}
	b.blas = new(cublas.Standard)
	if err := b.blas.Init(); err != nil {
		b.blas = nil
		return fmt.Errorf("cuda: cuBLAS: %w", err)
	}
	var err error
	if b.batched, err = newHandle(false); err != nil {
		return fmt.Errorf("cuda: cuBLAS: %w", err)
	}
	if b.tf32, err = newHandle(true); err != nil {
		return fmt.Errorf("cuda: cuBLAS: %w", err)
	}
	if b.errFlag, err = cu.MemAlloc(4); err != nil {
		return fmt.Errorf("cuda: alloc error flag: %w", err)
	}
	if err := cu.MemsetD32(b.errFlag, 0, 1); err != nil {
		return fmt.Errorf("cuda: clear error flag: %w", err)
	}
	return nil
}

// Close releases the handles, modules, scratch memory and the context.
// Memory from Alloc must be freed before. The Backend is unusable after.
func (b *Backend) Close() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var errs []error
	if b.ctx == (cu.CUContext{}) {
		return nil
	}
	if err := cu.SetCurrentContext(b.ctx); err != nil {
		errs = append(errs, err)
	}
	if b.blas != nil {
		errs = append(errs, b.blas.Close())
	}
	errs = append(errs, b.batched.destroy(), b.tf32.destroy())
	for _, p := range []cu.DevicePtr{b.errFlag, b.scratch} {
		if p != 0 {
			errs = append(errs, cu.MemFree(p))
		}
	}
	for _, m := range b.mods {
		errs = append(errs, m.Unload())
	}
	errs = append(errs, b.ctx.Destroy())
	if b.err == nil {
		b.err = errors.New("cuda: backend closed")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cuda: close: %w", err)
	}
	return nil
}

// Name returns "cuda".
func (b *Backend) Name() string { return "cuda" }

// SetTF32 switches Gemm between float32 (off, the default: cuBLAS SGEMM
// through gorgonia.org/cu/blas, as every conformance test runs) and TF32
// tensor-core arithmetic (on: inputs rounded to TF32's 10-bit mantissa,
// float32 accumulation; about 1e-3 relative error per product). Attention's
// batched products stay float32 either way. Work already queued is not
// affected; the switch takes effect from the next Gemm.
func (b *Backend) SetTF32(on bool) { b.useTF32 = on }

// TF32 reports whether Gemm uses TF32 (see SetTF32).
func (b *Backend) TF32() bool { return b.useTF32 }

// SetFastGELU switches GELU, BiasGELU and their backwards between float64
// arithmetic (off, the default: the CPU reference's operations, as every
// conformance test runs) and float32 with CUDA's erff and __expf, and
// BiasGELUBackward's bias gradient summed down a short group in float32
// (on: a few float32 ulps from the default, much less work per element;
// TestFastGELU bounds the difference). Work already queued is not affected.
func (b *Backend) SetFastGELU(on bool) { b.fastGELU = on }

// FastGELU reports whether GELU runs in float32 (see SetFastGELU).
func (b *Backend) FastGELU() bool { return b.fastGELU }

// SetFastGumbel switches Gumbel between float64 arithmetic with Go's log
// (off, the default: the CPU's noise bit for bit, TestGumbelBitExact) and
// float32 with CUDA's logf (on: the same uniform draws, a few float32 ulps
// from the default, TestFastGumbel; for the search, where the float64
// version's two software logs per element are ~6% of a step). Work already
// queued is not affected.
func (b *Backend) SetFastGumbel(on bool) { b.fastGumbel = on }

// FastGumbel reports whether Gumbel runs in float32 (see SetFastGumbel).
func (b *Backend) FastGumbel() bool { return b.fastGumbel }

// SetFastSoftmax switches the softmax of rows of K ≤ 32 (the state softmax
// of SoftmaxMix; Softmax and the attention's for such rows) between float64
// exp and sum (off, the default: the CPU's arithmetic) and float32 with
// CUDA's __expf (on: a few float32 ulps per exp, TestFastSoftmax bounds the
// difference; for the search, whose state softmax is bound by the float64
// exp). Its backward is unchanged. Work already queued is not affected.
func (b *Backend) SetFastSoftmax(on bool) { b.fastSoftmax = on }

// FastSoftmax reports whether short rows' softmax runs in float32.
func (b *Backend) FastSoftmax() bool { return b.fastSoftmax }

// SetFusedGumbel allows (on, the default) or forbids Softmax and SoftmaxMix
// to draw their noise themselves from model.GumbelNoise tensors; they do so
// only while SetFastGumbel is on too, with its values bit for bit
// (TestFusedGumbel). Off: the search fills a noise buffer with Gumbel
// first, as before; for comparisons and tests.
func (b *Backend) SetFusedGumbel(on bool) { b.unfusedGumbel = !on }

// FusedGumbel reports whether Softmax and SoftmaxMix take model.GumbelNoise
// tensors now (model.FusedGumbeler): SetFastGumbel and SetFusedGumbel on.
func (b *Backend) FusedGumbel() bool { return b.fastGumbel && !b.unfusedGumbel }

// ---------------------------------------------------------------------------
// Errors and the context's thread.

// fail records err (the first one only), naming what failed.
func (b *Backend) fail(what string, err error) {
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("cuda: %s: %w", what, err)
	}
}

// begin makes the context current on this goroutine's OS thread and locks
// the goroutine to it until end; it returns false (and the caller does
// nothing) after an earlier failure.
func (b *Backend) begin() bool {
	if b.err != nil {
		return false
	}
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(b.ctx); err != nil {
		runtime.UnlockOSThread()
		b.fail("make the context current", err)
		return false
	}
	return true
}

// end undoes begin's lock (the goroutine stays locked if it was before).
func (b *Backend) end() { runtime.UnlockOSThread() }

// Err returns the first error seen, without waiting for queued work.
func (b *Backend) Err() error { return b.err }

// Sync waits for queued work and returns the first error seen, if any,
// including an index error raised by a kernel.
func (b *Backend) Sync() error {
	if !b.begin() {
		return b.err
	}
	defer b.end()
	b.fail("synchronize", cu.Synchronize())
	b.checkFlag()
	return b.err
}

// errOps names the ops whose kernels raise the index-error flag; the code
// a kernel writes is the index in this list.
var errOps = [...]string{1: "PairEmbed", 2: "OneHot", 3: "NLL", 4: "NLLBackward", 5: "SeqScore"}

const (
	codePairEmbed = 1 + iota
	codeOneHot
	codeNLL
	codeNLLBackward
	codeSeqScore
)

// checkFlag reads the device's index-error flag (a synchronous copy) and
// records an error when a kernel raised it.
func (b *Backend) checkFlag() {
	if b.err != nil {
		return
	}
	var flag int32
	if err := cu.MemcpyDtoH(unsafe.Pointer(&flag), b.errFlag, 4); err != nil {
		b.fail("read the error flag", err)
		return
	}
	if flag != 0 {
		op := "unknown op"
		if int(flag) < len(errOps) {
			op = errOps[flag]
		}
		b.err = fmt.Errorf("cuda: %s: index out of range (model: %s: index out of range on the CPU)", op, op)
	}
}

// ---------------------------------------------------------------------------
// Memory.

// devPtr is the device address of t's first element (0 for a nil tensor).
func devPtr(t *model.Tensor) uint64 {
	if t == nil {
		return 0
	}
	m, off := t.Mem()
	if m.Noise != nil {
		panic("cuda: a tensor of fused Gumbel noise (model.GumbelNoise) is only the noise of Softmax or SoftmaxMix")
	}
	return uint64(m.Dev) + 4*uint64(off)
}

// onDevice panics when t views host memory (a tensor of another backend).
func onDevice(t *model.Tensor, msg string) {
	if t == nil {
		return
	}
	if m, _ := t.Mem(); m.F32 != nil || m.I32 != nil {
		panic(msg)
	}
}

// alloc returns zeroed device memory for n 4-byte elements.
func (b *Backend) alloc(n int, isInt bool) *model.Memory {
	if n < 0 {
		panic("model: Alloc: negative size")
	}
	m := &model.Memory{Len: n, Int: isInt}
	if n == 0 || !b.begin() {
		return m
	}
	defer b.end()
	p, err := cu.MemAlloc(4 * int64(n))
	if err != nil {
		b.fail(fmt.Sprintf("alloc %d bytes", 4*n), err)
		return m
	}
	if err := cu.MemsetD32(p, 0, int64(n)); err != nil {
		b.fail("zero new memory", err)
		cu.MemFree(p)
		return m
	}
	m.Dev = uintptr(p)
	return m
}

// Alloc returns zeroed device memory for n float32 elements.
func (b *Backend) Alloc(n int) *model.Memory { return b.alloc(n, false) }

// AllocInt returns zeroed device memory for n int32 elements.
func (b *Backend) AllocInt(n int) *model.Memory { return b.alloc(n, true) }

// Free releases m's device memory; m must not be used after.
func (b *Backend) Free(m *model.Memory) {
	if m == nil || m.Dev == 0 {
		return
	}
	p := cu.DevicePtr(m.Dev)
	m.Dev = 0
	if !b.begin() {
		return
	}
	defer b.end()
	b.fail("free", cu.MemFree(p))
}

// stageElems is the size of the host staging buffer in 4-byte elements:
// larger copies go through it in pieces.
const stageElems = 1 << 20

// staging returns the host staging buffer. Host data goes through it because
// cgo checks the whole Go object a pointer argument points into: a slice
// inside a struct that holds pointers (the tape's seed, a Params' scratch)
// may not be passed to the driver directly. The buffer holds no pointers.
func (b *Backend) staging() []float32 {
	if b.stage == nil {
		b.stage = make([]float32, stageElems)
	}
	return b.stage
}

// upload copies src (4-byte elements) to t through the staging buffer.
func (b *Backend) upload(t *model.Tensor, src []float32) {
	if len(src) == 0 || !b.begin() {
		return
	}
	defer b.end()
	stage, dst := b.staging(), devPtr(t)
	for lo := 0; lo < len(src); lo += stageElems {
		n := copy(stage, src[lo:])
		if err := cu.MemcpyHtoD(cu.DevicePtr(dst+4*uint64(lo)), unsafe.Pointer(&stage[0]), 4*int64(n)); err != nil {
			b.fail("upload", err)
			return
		}
	}
}

// download copies t to dst (4-byte elements) through the staging buffer,
// after the queued work, and checks the index-error flag.
func (b *Backend) download(dst []float32, t *model.Tensor) {
	if len(dst) == 0 || !b.begin() {
		return
	}
	defer b.end()
	stage, src := b.staging(), devPtr(t)
	for lo := 0; lo < len(dst); lo += stageElems {
		n := min(stageElems, len(dst)-lo)
		if err := cu.MemcpyDtoH(unsafe.Pointer(&stage[0]), cu.DevicePtr(src+4*uint64(lo)), 4*int64(n)); err != nil {
			b.fail("download", err)
			return
		}
		copy(dst[lo:lo+n], stage[:n])
	}
	b.checkFlag()
}

// asFloat32 views int32 data as float32 for the byte copies.
func asFloat32(v []int32) []float32 {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&v[0])), len(v))
}

// Upload copies src into t (len(src) == t.Len()).
func (b *Backend) Upload(t *model.Tensor, src []float32) {
	if len(src) != t.Len() {
		panic("model: Upload: length mismatch")
	}
	if t.IsInt() {
		panic("model: Upload: int tensor (use UploadInt)")
	}
	onDevice(t, "cuda: Upload: tensor of another backend")
	b.upload(t, src)
}

// UploadInt copies src into the int tensor t.
func (b *Backend) UploadInt(t *model.Tensor, src []int32) {
	if len(src) != t.Len() {
		panic("model: UploadInt: length mismatch")
	}
	if !t.IsInt() {
		panic("model: UploadInt: float tensor (use Upload)")
	}
	onDevice(t, "cuda: UploadInt: tensor of another backend")
	b.upload(t, asFloat32(src))
}

// Download copies t into dst (len(dst) == t.Len()). After a failure dst is
// left as it was.
func (b *Backend) Download(dst []float32, t *model.Tensor) {
	if len(dst) != t.Len() {
		panic("model: Download: length mismatch")
	}
	if t.IsInt() {
		panic("model: Download: int tensor (use DownloadInt)")
	}
	onDevice(t, "cuda: Download: tensor of another backend")
	b.download(dst, t)
}

// DownloadInt copies the int tensor t into dst.
func (b *Backend) DownloadInt(dst []int32, t *model.Tensor) {
	if len(dst) != t.Len() {
		panic("model: DownloadInt: length mismatch")
	}
	if !t.IsInt() {
		panic("model: DownloadInt: float tensor (use Download)")
	}
	onDevice(t, "cuda: DownloadInt: tensor of another backend")
	b.download(asFloat32(dst), t)
}

// scratchAt returns device scratch memory of at least n bytes, growing the
// pool when needed. Ops run in stream order, so one buffer serves every op;
// an op that needs several regions carves them from one call. The caller
// holds begin.
func (b *Backend) scratchAt(n int64) (uint64, bool) {
	if n <= b.scratchBytes {
		return uint64(b.scratch), true
	}
	if b.scratch != 0 {
		// Queued kernels may still read the old buffer.
		if err := cu.Synchronize(); err != nil {
			b.fail("synchronize before growing scratch", err)
			return 0, false
		}
		if err := cu.MemFree(b.scratch); err != nil {
			b.fail("free scratch", err)
			return 0, false
		}
		b.scratch, b.scratchBytes = 0, 0
	}
	size := max(n, 1<<20)
	size = (size + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB
	p, err := cu.MemAlloc(size)
	if err != nil {
		b.fail(fmt.Sprintf("alloc %d bytes of scratch", size), err)
		return 0, false
	}
	b.scratch, b.scratchBytes = p, size
	return uint64(p), true
}
