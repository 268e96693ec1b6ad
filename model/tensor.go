// Tensors: dense float32 (or int32) arrays of up to four dimensions that live
// in a backend's memory, plus contiguous views into them.

package model

import "fmt"

// MaxRank is the largest number of dimensions a Tensor may have.
const MaxRank = 4

// Memory is one allocation made by a Backend. The CPU backend fills F32 or
// I32; a device backend keeps its own handle in Dev and leaves the slices nil.
type Memory struct {
	F32 []float32 // host float32 storage (CPU backend)
	I32 []int32   // host int32 storage (CPU backend)
	Dev uintptr   // device pointer (device backends)
	Len int       // number of elements
	Int bool      // int32 elements rather than float32

	// Noise, when not nil, marks memory that holds nothing: its elements
	// are Gumbel noise drawn where they are read (see GumbelNoise).
	Noise *GumbelNoise
}

// GumbelNoise describes a Memory whose element i is the Gumbel noise that
// the backend's Gumbel(dst, Seed) would write at index i, computed by the op
// that reads it instead of stored (fused noise: no write and read of a noise
// buffer). Only backends that implement FusedGumbeler and report true take
// such memory, and only as the noise of Softmax and SoftmaxMix; the search
// uses it for the interpreter's state noise (Searcher.Gradient). Seed may
// change between uses (one per search step).
type GumbelNoise struct{ Seed uint64 }

// NewGumbelNoise returns a tensor of the given shape over memory of fused
// Gumbel noise with the given source (no backend allocation).
func NewGumbelNoise(src *GumbelNoise, shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return NewView(&Memory{Len: n, Noise: src}, 0, shape...)
}

// Tensor is a contiguous, row-major view of Memory. Tensors are small values
// that the tape reuses between steps; the data they view is owned by Memory.
type Tensor struct {
	dims [MaxRank]int
	rank int
	off  int // offset in elements into mem
	n    int // number of elements
	mem  *Memory

	// Grad is the gradient tensor of the same shape when the tensor takes
	// part in backpropagation, else nil.
	Grad *Tensor
}

// NewView returns a tensor of the given shape viewing mem from element off.
// It panics when the view does not fit.
func NewView(mem *Memory, off int, shape ...int) *Tensor {
	t := &Tensor{}
	t.set(mem, off, shape...)
	return t
}

func (t *Tensor) set(mem *Memory, off int, shape ...int) {
	if len(shape) > MaxRank {
		panic("model: tensor rank above MaxRank")
	}
	n := 1
	for i, d := range shape {
		if d < 0 {
			panic("model: negative tensor dimension")
		}
		t.dims[i] = d
		n *= d
	}
	for i := len(shape); i < MaxRank; i++ {
		t.dims[i] = 0
	}
	if off < 0 || off+n > mem.Len {
		panic("model: tensor view outside its memory")
	}
	t.rank, t.off, t.n, t.mem, t.Grad = len(shape), off, n, mem, nil
}

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return t.rank }

// Dim returns the size of dimension i.
func (t *Tensor) Dim(i int) int {
	if i < 0 || i >= t.rank {
		panic("model: dimension index out of range")
	}
	return t.dims[i]
}

// Shape returns a fresh copy of the dimensions.
func (t *Tensor) Shape() []int { return append([]int(nil), t.dims[:t.rank]...) }

// Len returns the number of elements.
func (t *Tensor) Len() int { return t.n }

// Mem returns the memory the tensor views and its element offset in it.
func (t *Tensor) Mem() (*Memory, int) { return t.mem, t.off }

// IsInt reports whether the tensor holds int32 elements.
func (t *Tensor) IsInt() bool { return t.mem.Int }

// F32 returns the host float32 elements (CPU backend only).
func (t *Tensor) F32() []float32 {
	if t.mem.F32 == nil {
		panic("model: F32 on a tensor without host float32 storage")
	}
	return t.mem.F32[t.off : t.off+t.n : t.off+t.n]
}

// I32 returns the host int32 elements (CPU backend only).
func (t *Tensor) I32() []int32 {
	if t.mem.I32 == nil {
		panic("model: I32 on a tensor without host int32 storage")
	}
	return t.mem.I32[t.off : t.off+t.n : t.off+t.n]
}

// Sub returns the i-th slice along the first dimension as a new view.
func (t *Tensor) Sub(i int) *Tensor {
	if t.rank < 1 || i < 0 || i >= t.dims[0] {
		panic("model: Sub index out of range")
	}
	inner := t.n / max(t.dims[0], 1)
	return NewView(t.mem, t.off+i*inner, t.dims[1:t.rank]...)
}

// Reshape returns a view of the same elements with another shape of equal size.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != t.n {
		panic("model: Reshape changes the number of elements")
	}
	v := NewView(t.mem, t.off, shape...)
	if t.Grad != nil {
		v.Grad = NewView(t.Grad.mem, t.Grad.off, shape...)
	}
	return v
}

// SameShape reports whether a and b have equal dimensions.
func SameShape(a, b *Tensor) bool {
	return a.rank == b.rank && a.dims == b.dims
}

// String describes the shape, e.g. "Tensor[4 20 10]".
func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.dims[:t.rank]) }
