// The parameter arena: every parameter, its gradient and its two AdamW
// moments each live in one backend allocation, with named views in a fixed
// order that is also the order on disk.

package model

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// ParamSpec names one parameter tensor and its shape.
type ParamSpec struct {
	Name  string
	Shape []int
}

// Param is one named view into the arena; T.Grad views the gradient arena.
type Param struct {
	Name string
	T    *Tensor
}

// Params owns the four arenas (values, gradients, first and second moments).
type Params struct {
	B    Backend
	List []Param
	// All, Grad, M and V view each whole arena (length N).
	All, Grad, M, V *Tensor
	N               int
	index           map[string]int
	norm            *Tensor // scratch scalar for the global norm
	host1           [1]float32
}

// NewParams allocates zeroed arenas for specs on b, in the order given.
func NewParams(b Backend, specs []ParamSpec) *Params {
	p := &Params{B: b, index: make(map[string]int, len(specs))}
	for _, s := range specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		p.N += n
	}
	data, grad, m, v := b.Alloc(p.N), b.Alloc(p.N), b.Alloc(p.N), b.Alloc(p.N)
	p.All, p.Grad, p.M, p.V = NewView(data, 0, p.N), NewView(grad, 0, p.N), NewView(m, 0, p.N), NewView(v, 0, p.N)
	p.All.Grad = p.Grad
	off := 0
	for i, s := range specs {
		if _, dup := p.index[s.Name]; dup {
			panic("model: duplicate parameter name")
		}
		t := NewView(data, off, s.Shape...)
		t.Grad = NewView(grad, off, s.Shape...)
		p.List = append(p.List, Param{Name: s.Name, T: t})
		p.index[s.Name] = i
		off += t.Len()
	}
	p.norm = NewView(b.Alloc(1), 0, 1)
	return p
}

// Get returns the named parameter; it panics on an unknown name.
func (p *Params) Get(name string) *Tensor {
	i, ok := p.index[name]
	if !ok {
		panic("model: unknown parameter " + name)
	}
	return p.List[i].T
}

// ZeroGrad zeros every gradient.
func (p *Params) ZeroGrad() { p.B.Zero(p.Grad) }

// GradNorm returns the global L2 norm of the gradients.
func (p *Params) GradNorm() float64 {
	p.B.SumSquares(p.norm, p.Grad)
	p.B.Download(p.host1[:], p.norm)
	return math.Sqrt(float64(p.host1[0]))
}

// Step applies one AdamW update with gradients scaled by gradScale.
func (p *Params) Step(lr, beta1, beta2, eps, wd, gradScale float64, step int) {
	p.B.AdamW(p.All, p.Grad, p.M, p.V, float32(lr), float32(beta1), float32(beta2), float32(eps), float32(wd), float32(gradScale), step)
}

// LRSpan is a contiguous part of the four arenas that Step updates with the
// learning rate multiplied by Mult.
type LRSpan struct {
	Mult       float64
	p, g, m, v *Tensor
}

// LRSpans splits the arenas into spans in order: the parameters whose names
// start with prefix (they must be contiguous in the arena) get mult, the
// parameters before them before, those after them 1. Empty spans are left
// out.
func (p *Params) LRSpans(prefix string, before, mult float64) ([]LRSpan, error) {
	lo, hi, off := -1, -1, 0
	for _, q := range p.List {
		n := q.T.Len()
		if strings.HasPrefix(q.Name, prefix) {
			if lo < 0 {
				lo = off
			} else if hi != off {
				return nil, fmt.Errorf("params: the parameters %s* are not contiguous", prefix)
			}
			hi = off + n
		}
		off += n
	}
	if lo < 0 {
		return nil, fmt.Errorf("params: no parameter named %s*", prefix)
	}
	var spans []LRSpan
	for _, s := range []struct {
		lo, hi int
		mult   float64
	}{{0, lo, before}, {lo, hi, mult}, {hi, p.N, 1}} {
		if s.hi > s.lo {
			view := func(t *Tensor) *Tensor { mem, o := t.Mem(); return NewView(mem, o+s.lo, s.hi-s.lo) }
			spans = append(spans, LRSpan{Mult: s.mult, p: view(p.All), g: view(p.Grad), m: view(p.M), v: view(p.V)})
		}
	}
	return spans, nil
}

// StepSpans is Step with each span's learning rate lr·Mult (AdamW is
// elementwise, so with every Mult 1 it equals Step).
func (p *Params) StepSpans(spans []LRSpan, lr, beta1, beta2, eps, wd, gradScale float64, step int) {
	for _, s := range spans {
		p.B.AdamW(s.p, s.g, s.m, s.v, float32(lr*s.Mult), float32(beta1), float32(beta2), float32(eps), float32(wd), float32(gradScale), step)
	}
}

// Export downloads the values (and, with moments, the AdamW moments under
// the prefixes "adam_m/" and "adam_v/") as named host tensors.
func (p *Params) Export(moments bool) []NamedTensor {
	out := make([]NamedTensor, 0, len(p.List)*3)
	for _, q := range p.List {
		d := make([]float32, q.T.Len())
		p.B.Download(d, q.T)
		out = append(out, NamedTensor{Name: q.Name, Shape: q.T.Shape(), Data: d})
	}
	if moments {
		for _, pre := range []struct {
			name  string
			arena *Tensor
		}{{"adam_m/", p.M}, {"adam_v/", p.V}} {
			all := make([]float32, p.N)
			p.B.Download(all, pre.arena)
			off := 0
			for _, q := range p.List {
				n := q.T.Len()
				out = append(out, NamedTensor{Name: pre.name + q.Name, Shape: q.T.Shape(), Data: all[off : off+n : off+n]})
				off += n
			}
		}
	}
	return out
}

// Import uploads named tensors into the arena. Every parameter must be
// present with its exact shape; with moments the AdamW moments must be too.
// Unknown tensors are an error. name is used in messages.
func (p *Params) Import(ts []NamedTensor, moments bool, name string) error {
	byName := make(map[string]NamedTensor, len(ts))
	for _, t := range ts {
		byName[t.Name] = t
	}
	want := len(p.List)
	if moments {
		want *= 3
	}
	var mAll, vAll []float32
	if moments {
		mAll, vAll = make([]float32, p.N), make([]float32, p.N)
	}
	off := 0
	for _, q := range p.List {
		for k, pre := range []string{"", "adam_m/", "adam_v/"} {
			if k > 0 && !moments {
				break
			}
			t, ok := byName[pre+q.Name]
			if !ok {
				return fmt.Errorf("%s: missing tensor %q", name, pre+q.Name)
			}
			if !slices.Equal(t.Shape, q.T.Shape()) {
				return fmt.Errorf("%s: tensor %q has shape %v, the config needs %v", name, t.Name, t.Shape, q.T.Shape())
			}
			if len(t.Data) != q.T.Len() {
				return fmt.Errorf("%s: tensor %q has %d values, want %d", name, t.Name, len(t.Data), q.T.Len())
			}
			switch k {
			case 0:
				p.B.Upload(q.T, t.Data)
			case 1:
				copy(mAll[off:], t.Data)
			case 2:
				copy(vAll[off:], t.Data)
			}
		}
		off += q.T.Len()
	}
	if len(byName) != want {
		for _, t := range ts {
			if _, ok := p.index[trimMoment(t.Name)]; !ok {
				return fmt.Errorf("%s: unexpected tensor %q", name, t.Name)
			}
		}
		return fmt.Errorf("%s: %d tensors, want %d", name, len(byName), want)
	}
	if moments {
		p.B.Upload(p.M, mAll)
		p.B.Upload(p.V, vAll)
	}
	return nil
}

func trimMoment(s string) string {
	for _, pre := range []string{"adam_m/", "adam_v/"} {
		if rest, ok := strings.CutPrefix(s, pre); ok {
			return rest
		}
	}
	return s
}
