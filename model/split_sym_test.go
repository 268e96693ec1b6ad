// Tests of symbol splitting with exec sym (split.go): the probe reads the
// logits' gradient.

package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSymProbeGradient: executeSymProbe's result is Execute's bit for bit,
// and its probe's gradient is the NLL's gradient with respect to each
// step's logits: central differences of one pair's NLL (in float64 from the
// float32 states) when the probe element is moved by ±ε.
func TestSymProbeGradient(t *testing.T) {
	cfg := withSym(smallConfig())
	b := NewCPU(1)
	m, err := NewModel(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(3)
	const N = 6
	const tau = 1
	T, K, L, V := cfg.T, cfg.K, cfg.L, cfg.V
	rng := rand.New(rand.NewPCG(5, 6))
	xH, yH := make([]int32, N*L), make([]int32, N*L)
	for i := range xH {
		xH[i], yH[i] = int32(rng.IntN(V)), int32(rng.IntN(V))
	}
	zH := make([]float32, N*T*K)
	for r := range N * T {
		zH[r*K+rng.IntN(K)] = 1 // SKIP (0) in some slots
	}
	tp := NewTape(b)
	defer tp.Free()
	x, y := NewView(b.AllocInt(N*L), 0, N, L), NewView(b.AllocInt(N*L), 0, N, L)
	b.UploadInt(x, xH)
	b.UploadInt(y, yH)
	z := NewView(b.Alloc(N*T*K), 0, N, T, K)
	b.Upload(z, zH)

	tp.NoGrad = true
	ref := make([]float32, N*L*V)
	b.Download(ref, m.Execute(tp, x, z, tau, nil, false))
	tp.NoGrad = false
	tp.Reset()
	pi, pr := m.executeSymProbe(tp, x, z, tau)
	got := make([]float32, N*L*V)
	b.Download(got, pi)
	if !slices.Equal(got, ref) {
		t.Fatal("executeSymProbe's states differ from Execute's")
	}
	tp.Backward(tp.NLL(pi, y, 1))
	g := make([]float32, T*N*L*V)
	b.Download(g, pr.dn.Grad)
	tp.Reset()

	// pairNLL runs the interpreter with the probe's element (t, n, j) at
	// delta and returns pair n's NLL.
	dnH := make([]float32, T*N*L*V)
	pairNLL := func(t, n, j int, delta float32) float64 {
		tp.Reset()
		tp.NoGrad = true
		defer func() { tp.NoGrad = false; tp.Reset() }()
		clear(dnH)
		dnH[(t*N+n)*L*V+j] = delta
		q := &symProbe{dn: tp.New(false, T, N, L, V), pi: make([]*Tensor, T)}
		b.Upload(q.dn, dnH)
		p := make([]float32, N*L*V)
		b.Download(p, m.executeSym(tp, x, tp.Transpose01(z), tau, nil, false, nil, 1, q))
		s := 0.0
		for l := range L {
			s -= math.Log(max(float64(p[(n*L+l)*V+int(yH[n*L+l])]), probFloor))
		}
		return s
	}
	checked := 0
	for st := range T {
		for n := range N {
			if zH[(n*T+st)*K+Skip] == 1 {
				for j := range L * V {
					if g[(st*N+n)*L*V+j] != 0 {
						t.Fatalf("SKIP slot (%d, %d) has a logit gradient", n, st)
					}
				}
				continue
			}
			row := g[(st*N+n)*L*V : (st*N+n+1)*L*V]
			j := 0
			for i := range row {
				if math.Abs(float64(row[i])) > math.Abs(float64(row[j])) {
					j = i
				}
			}
			if math.Abs(float64(row[j])) < 1e-3 { // below the float32 differences' resolution
				continue
			}
			const eps = 1e-2
			fd := (pairNLL(st, n, j, eps) - pairNLL(st, n, j, -eps)) / (2 * eps)
			if !closeTo(float64(row[j]), fd, 1e-4, 1e-2) {
				t.Errorf("slot (%d, %d) logit %d: probe gradient %g, central difference %g", n, st, j, row[j], fd)
			}
			checked++
		}
	}
	if checked < 5 {
		t.Fatalf("only %d slots checked", checked)
	}
}
