// Golden parity with the PyTorch reference: one training-loss forward and
// backward of a tiny config from identical weights, batch and noise,
// compared against outputs the reference computed in float64
// (testdata/parity/torch_parity.py writes them).

package model

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var (
	updateParityInputs     = flag.Bool("update-parity-inputs", false, "rewrite testdata/parity/inputs.{json,bin} (then rerun torch_parity.py)")
	updateParityFiLMInputs = flag.Bool("update-parity-film-inputs", false, "rewrite testdata/parity/film_inputs.{json,bin} (then rerun torch_parity.py --exec film)")
	updateParitySymInputs  = flag.Bool("update-parity-sym-inputs", false, "rewrite testdata/parity/sym_inputs.{json,bin} (then rerun torch_parity.py --exec sym)")
)

const parityDir = "testdata/parity"

type bundleEntry struct {
	Name   string `json:"name"`
	Shape  []int  `json:"shape"`
	Offset int    `json:"offset"`
}

// parityMeta is the JSON half of a parity bundle.
type parityMeta struct {
	Config  Config        `json:"config"`
	B       int           `json:"B"`
	M       int           `json:"m"`
	TauE    float64       `json:"tau_e"`
	TauD    float64       `json:"tau_d"`
	Lambda  float64       `json:"lambda"`
	Loss    float64       `json:"loss"`
	Torch   string        `json:"torch"`
	Tensors []bundleEntry `json:"tensors"`
}

func writeBundle(t *testing.T, stem string, meta parityMeta, ts []NamedTensor) {
	var raw []float32
	meta.Tensors = nil
	for _, x := range ts {
		meta.Tensors = append(meta.Tensors, bundleEntry{x.Name, x.Shape, len(raw)})
		raw = append(raw, x.Data...)
	}
	j, err := json.MarshalIndent(meta, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4*len(raw))
	for i, v := range raw {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(filepath.Join(parityDir, stem+".json"), j, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parityDir, stem+".bin"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readBundle(t *testing.T, stem string) (parityMeta, map[string]NamedTensor) {
	var meta parityMeta
	j, err := os.ReadFile(filepath.Join(parityDir, stem+".json"))
	if err != nil {
		t.Fatalf("parity bundle missing: %v (see testdata/parity/torch_parity.py)", err)
	}
	if err := json.Unmarshal(j, &meta); err != nil {
		t.Fatal(err)
	}
	buf, err := os.ReadFile(filepath.Join(parityDir, stem+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]NamedTensor{}
	for _, e := range meta.Tensors {
		n := 1
		for _, d := range e.Shape {
			n *= d
		}
		if 4*(e.Offset+n) > len(buf) {
			t.Fatalf("%s: tensor %s outside the data", stem, e.Name)
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*(e.Offset+i):]))
		}
		out[e.Name] = NamedTensor{Name: e.Name, Shape: e.Shape, Data: d}
	}
	return meta, out
}

func parityConfig() Config {
	c := Tiny()
	c.Train.Batch = 3
	c.T = 5
	return c
}

// TestParityGolden checks the Go model against the PyTorch reference.
func TestParityGolden(t *testing.T) {
	if *updateParityInputs {
		makeParityInputs(t, NewCPU(2), parityConfig(), "inputs")
	}
	checkParity(t, "inputs", "golden")
	if *updateParityInputs {
		t.Logf("inputs rewritten: rerun torch_parity.py to refresh golden.*")
	}
}

// TestParityGoldenFiLM checks the FiLM interpreter (Exec "film") against
// docs/experiments/recipe.py's NLI with --exec film, on the same kind of
// tiny model, batch and noise as TestParityGolden.
func TestParityGoldenFiLM(t *testing.T) {
	if *updateParityFiLMInputs {
		cfg := parityConfig()
		cfg.Exec = ExecFiLM
		makeParityInputs(t, NewCPU(2), cfg, "film_inputs")
	}
	checkParity(t, "film_inputs", "film_golden")
	if *updateParityFiLMInputs {
		t.Logf("inputs rewritten: rerun torch_parity.py --exec film to refresh film_golden.*")
	}
}

// TestParityGoldenSym checks the symbol-selected interpreter (Exec "sym")
// against docs/experiments/recipe.py's NLI with --exec sym, on the tiny
// model with K 8 and T 4 (symW, (L·ds, K·L·V), dominates the bundle) and a
// random symB (Init's is zero), with the batch and noise as TestParityGolden.
// Ev does not enter the loss: its gradient is zero on both sides.
func TestParityGoldenSym(t *testing.T) {
	if *updateParitySymInputs {
		cfg := parityConfig()
		cfg.Exec, cfg.K, cfg.T = ExecSym, 8, 4
		makeParityInputs(t, NewCPU(2), cfg, "sym_inputs")
	}
	checkParity(t, "sym_inputs", "sym_golden")
	if *updateParitySymInputs {
		t.Logf("inputs rewritten: rerun torch_parity.py --exec sym to refresh sym_golden.*")
	}
}

// checkParity runs one training-loss forward and backward on the bundle
// inStem and compares it with the reference's outputs in goldStem.
func checkParity(t *testing.T, inStem, goldStem string) {
	b := NewCPU(2)
	meta, in := readBundle(t, inStem)
	gm, gold := readBundle(t, goldStem)
	cfg := meta.Config
	m, err := NewModel(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var params []NamedTensor
	for _, p := range m.P.List {
		params = append(params, in[p.Name])
	}
	if err := m.P.Import(params, false, inStem); err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, SplitShiftL, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Tiny batch of the bundle (B specifications of m pairs).
	N := meta.B * meta.M
	tr.x = NewView(b.AllocInt(N*cfg.L), 0, N, cfg.L)
	tr.y = NewView(b.AllocInt(N*cfg.L), 0, N, cfg.L)
	tr.nz = NewView(b.Alloc(N*cfg.T*cfg.K), 0, N, cfg.T, cfg.K)
	tr.ns = NewView(b.Alloc(cfg.T*N*cfg.L*cfg.V), 0, cfg.T, N, cfg.L, cfg.V)
	b.UploadInt(tr.x, toI32(in["x"].Data))
	b.UploadInt(tr.y, toI32(in["y"].Data))
	b.Upload(tr.nz, in["noise_z"].Data)
	b.Upload(tr.ns, in["noise_s"].Data)
	m.Cfg.Train.Lambda = meta.Lambda

	tp := tr.tp
	tp.Reset()
	m.P.ZeroGrad()
	loss, nll, reg := tr.Loss(meta.TauE, meta.TauD)
	tp.Backward(loss)
	t.Logf("torch %s: loss %.6f; go loss %.6f nll %.6f reg %.6f", gm.Torch, gold["loss"].Data[0], tp.Scalar(loss), tp.Scalar(nll), tp.Scalar(reg))

	// Tolerances: the reference runs in float64, we in float32 with
	// float32 GEMM accumulation over at most a few hundred terms through
	// 12 recurrent steps, so relative errors of ~1e-5 compound to ~1e-4.
	check := func(name string, got []float32, atol, rtol float64) {
		t.Helper()
		want := gold[name].Data
		if len(want) != len(got) {
			t.Fatalf("%s: %d values, golden has %d", name, len(got), len(want))
		}
		worst, wi := 0.0, -1
		for i := range got {
			d := math.Abs(float64(got[i]) - float64(want[i]))
			if excess := d - (atol + rtol*math.Abs(float64(want[i]))); excess > worst {
				worst, wi = excess, i
			}
		}
		if wi >= 0 {
			t.Errorf("%s[%d]: got %g, want %g (|diff| beyond atol %g + rtol %g·|want| by %g)", name, wi, got[wi], want[wi], atol, rtol, worst)
		}
	}
	dl := func(x *Tensor) []float32 { h := make([]float32, x.Len()); b.Download(h, x); return h }
	check("loss", dl(loss), 0, 1e-5)
	check("nll", dl(nll), 0, 1e-5)
	check("reg", dl(reg), 0, 1e-5)
	// The tape keeps the forward's tensors; recompute the two logits and pi on a fresh tape.
	tp2 := NewTape(b)
	tp2.NoGrad = true
	e := m.Encode(tp2, tr.x, tr.y)
	check("logits", dl(m.Head(tp2, tp2.PoolPairs(e, meta.M, true))), 1e-5, 1e-4)
	check("mean_logits", dl(m.Head(tp2, tp2.PoolPairs(e, meta.M, false))), 1e-5, 1e-4)
	z := tp2.Softmax(m.Head(tp2, tp2.PoolPairs(e, meta.M, true)), tr.nz, float32(meta.TauE))
	check("pi", dl(m.Execute(tp2, tr.x, z, float32(meta.TauD), tr.ns, false)), 1e-6, 1e-4)
	for _, p := range m.P.List {
		g := dl(p.T.Grad)
		scale := 0.0
		for _, v := range gold["grad/"+p.Name].Data {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		// Gradient entries are compared relative to their tensor's largest entry.
		check("grad/"+p.Name, g, 1e-4*scale+1e-7, 1e-3)
	}
}

func toI32(v []float32) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// makeParityInputs writes a fresh tiny model of cfg (with Exec "sym", a
// random symB), a batch and noise to the bundle stem.
func makeParityInputs(t *testing.T, b Backend, cfg Config, stem string) {
	m := randomModel(t, b, cfg, 7)
	rng := rand.New(rand.NewPCG(11, 12))
	B, pairs := cfg.Train.Batch, cfg.Train.Pairs
	N := B * pairs
	x, y := make([]int32, N*cfg.L), make([]int32, N*cfg.L)
	SampleBatch(rng, Programs(SplitShiftL, PartTrain), B, pairs, x, y, nil)
	f := func(v []int32) []float32 {
		o := make([]float32, len(v))
		for i := range v {
			o[i] = float32(v[i])
		}
		return o
	}
	nz := NewView(b.Alloc(N*cfg.T*cfg.K), 0, N*cfg.T*cfg.K)
	ns := NewView(b.Alloc(cfg.T*N*cfg.L*cfg.V), 0, cfg.T*N*cfg.L*cfg.V)
	b.Gumbel(nz, 21)
	b.Gumbel(ns, 22)
	ts := m.P.Export(false)
	ts = append(ts,
		NamedTensor{Name: "x", Shape: []int{N, cfg.L}, Data: f(x)},
		NamedTensor{Name: "y", Shape: []int{N, cfg.L}, Data: f(y)},
		NamedTensor{Name: "noise_z", Shape: []int{N, cfg.T, cfg.K}, Data: nz.F32()},
		NamedTensor{Name: "noise_s", Shape: []int{cfg.T, N, cfg.L, cfg.V}, Data: ns.F32()},
	)
	writeBundle(t, stem, parityMeta{Config: cfg, B: B, M: pairs, TauE: 3, TauD: 1.5, Lambda: 0.01}, ts)
	fmt.Fprintln(os.Stderr, "wrote", filepath.Join(parityDir, stem+".{json,bin}"))
}
