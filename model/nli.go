// The NLI model of SPEC §2: the Transformer inductor that writes a program
// of T symbols, and the recurrent neural interpreter that executes it.

package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Skip is the symbol id of SKIP (a no-op step).
const Skip = 0

// Model holds a configuration and its parameters on a backend. Parameter
// names follow the PyTorch reference's state_dict, except that the
// executor's first layer is split into exe.0.weight_s (state columns) and
// exe.0.weight_v (instruction columns) so no concatenation is needed. With
// Exec "film" the FiLM Linears film.0 and film.1 (dv → 2H each, γ in output
// rows 0…H−1 and β in rows H…2H−1, as recipe.py's chunk) come last. With
// Exec "sym" there is no exe.* MLP: symW (L·ds, K·L·V), the per-symbol maps
// W_k side by side as recipe.py's, and symB (K, L·V) follow Ev (which sym
// does not read; kept so that the names and order are recipe.py's).
type Model struct {
	Cfg Config
	B   Backend
	P   *Params

	val, pos, chn, slot *Tensor
	blocks              []block
	lnfW, lnfB          *Tensor
	h0W, h0B, h2W, h2B  *Tensor
	eio, pp, ev         *Tensor
	w1s, w1v, b1        *Tensor
	w2, b2, w3, b3      *Tensor
	filmW, filmB        [2]*Tensor // FiLM layers (2H, dv), (2H); nil for mlp
	ones                *Tensor    // (H) ones: 1+γ = γ + ones
	symW, symB          *Tensor    // exec sym: (L·ds, K·L·V), (K, L·V); nil otherwise
}

type block struct {
	ln1W, ln1B, inW, inB, outW, outB, ln2W, ln2B, fcW, fcB, prW, prB *Tensor
}

// ParamSpecs lists every parameter of cfg in arena (and file) order.
func ParamSpecs(cfg Config) []ParamSpec {
	d, L, V, T, K := cfg.D, cfg.L, cfg.V, cfg.T, cfg.K
	s := []ParamSpec{
		{"val.weight", []int{V, d}},
		{"pos.weight", []int{L, d}},
		{"chan.weight", []int{3, d}},
		{"slot", []int{T, d}},
	}
	for i := 0; i < cfg.Layers; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		s = append(s,
			ParamSpec{p + "ln1.weight", []int{d}},
			ParamSpec{p + "ln1.bias", []int{d}},
			ParamSpec{p + "att.in_proj_weight", []int{3 * d, d}},
			ParamSpec{p + "att.in_proj_bias", []int{3 * d}},
			ParamSpec{p + "att.out_proj.weight", []int{d, d}},
			ParamSpec{p + "att.out_proj.bias", []int{d}},
			ParamSpec{p + "ln2.weight", []int{d}},
			ParamSpec{p + "ln2.bias", []int{d}},
			ParamSpec{p + "mlp.0.weight", []int{4 * d, d}},
			ParamSpec{p + "mlp.0.bias", []int{4 * d}},
			ParamSpec{p + "mlp.2.weight", []int{d, 4 * d}},
			ParamSpec{p + "mlp.2.bias", []int{d}},
		)
	}
	s = append(s,
		ParamSpec{"lnf.weight", []int{d}},
		ParamSpec{"lnf.bias", []int{d}},
		ParamSpec{"head.0.weight", []int{d, d}},
		ParamSpec{"head.0.bias", []int{d}},
		ParamSpec{"head.2.weight", []int{K, d}},
		ParamSpec{"head.2.bias", []int{K}},
		ParamSpec{"Eio", []int{V, cfg.DS}},
		ParamSpec{"P", []int{L, cfg.DS}},
		ParamSpec{"Ev", []int{K, cfg.DV}},
	)
	if cfg.Sym() {
		return append(s,
			ParamSpec{"symW", []int{L * cfg.DS, K * L * V}},
			ParamSpec{"symB", []int{K, L * V}},
		)
	}
	s = append(s,
		ParamSpec{"exe.0.weight_s", []int{cfg.H, L * cfg.DS}},
		ParamSpec{"exe.0.weight_v", []int{cfg.H, cfg.DV}},
		ParamSpec{"exe.0.bias", []int{cfg.H}},
		ParamSpec{"exe.2.weight", []int{cfg.H, cfg.H}},
		ParamSpec{"exe.2.bias", []int{cfg.H}},
		ParamSpec{"exe.4.weight", []int{L * V, cfg.H}},
		ParamSpec{"exe.4.bias", []int{L * V}},
	)
	if cfg.FiLM() {
		for l := range 2 {
			p := fmt.Sprintf("film.%d.", l)
			s = append(s, ParamSpec{p + "weight", []int{2 * cfg.H, cfg.DV}}, ParamSpec{p + "bias", []int{2 * cfg.H}})
		}
	}
	return s
}

// NewModel allocates a model for cfg on b with zero parameters. Call Init
// for a fresh model or load weights into m.P.
func NewModel(b Backend, cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg, B: b, P: NewParams(b, ParamSpecs(cfg))}
	g := m.P.Get
	m.val, m.pos, m.chn, m.slot = g("val.weight"), g("pos.weight"), g("chan.weight"), g("slot")
	for i := 0; i < cfg.Layers; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		m.blocks = append(m.blocks, block{
			g(p + "ln1.weight"), g(p + "ln1.bias"), g(p + "att.in_proj_weight"), g(p + "att.in_proj_bias"),
			g(p + "att.out_proj.weight"), g(p + "att.out_proj.bias"), g(p + "ln2.weight"), g(p + "ln2.bias"),
			g(p + "mlp.0.weight"), g(p + "mlp.0.bias"), g(p + "mlp.2.weight"), g(p + "mlp.2.bias"),
		})
	}
	m.lnfW, m.lnfB = g("lnf.weight"), g("lnf.bias")
	m.h0W, m.h0B, m.h2W, m.h2B = g("head.0.weight"), g("head.0.bias"), g("head.2.weight"), g("head.2.bias")
	m.eio, m.pp, m.ev = g("Eio"), g("P"), g("Ev")
	if cfg.Sym() {
		m.symW, m.symB = g("symW"), g("symB")
		return m, nil
	}
	m.w1s, m.w1v, m.b1 = g("exe.0.weight_s"), g("exe.0.weight_v"), g("exe.0.bias")
	m.w2, m.b2, m.w3, m.b3 = g("exe.2.weight"), g("exe.2.bias"), g("exe.4.weight"), g("exe.4.bias")
	if cfg.FiLM() {
		for l := range 2 {
			m.filmW[l], m.filmB[l] = g(fmt.Sprintf("film.%d.weight", l)), g(fmt.Sprintf("film.%d.bias", l))
		}
		m.ones = NewView(b.Alloc(cfg.H), 0, cfg.H)
		one := make([]float32, cfg.H)
		for i := range one {
			one[i] = 1
		}
		b.Upload(m.ones, one)
	}
	return m, nil
}

// Init draws fresh parameters from the PyTorch reference's initialisers:
// embeddings N(0,1); slot N(0,0.02²); Eio, P, Ev N(0,0.5²); Linear weights
// and biases U(±1/√fan_in); attention in-projection Xavier-uniform with
// zero bias; out-projection bias zero; LayerNorm weight 1, bias 0; symW
// N(0, 1/(L·ds)) and symB zero (recipe.py's exec sym).
func (m *Model) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x4e4c49))
	cfg := m.Cfg
	for _, p := range m.P.List {
		sh := p.T.Shape()
		data := make([]float32, p.T.Len())
		name := p.Name
		normal := func(std float64) {
			for i := range data {
				data[i] = float32(rng.NormFloat64() * std)
			}
		}
		uniform := func(bound float64) {
			for i := range data {
				data[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
		fill := func(v float32) {
			for i := range data {
				data[i] = v
			}
		}
		switch {
		case name == "val.weight" || name == "pos.weight" || name == "chan.weight":
			normal(1)
		case name == "slot":
			normal(0.02)
		case name == "Eio" || name == "P" || name == "Ev":
			normal(0.5)
		case name == "symW":
			normal(1 / math.Sqrt(float64(cfg.L*cfg.DS)))
		case name == "symB":
			fill(0)
		case strings.HasSuffix(name, "ln1.weight"), strings.HasSuffix(name, "ln2.weight"), name == "lnf.weight":
			fill(1)
		case strings.HasSuffix(name, "ln1.bias"), strings.HasSuffix(name, "ln2.bias"), name == "lnf.bias",
			strings.HasSuffix(name, "in_proj_bias"), strings.HasSuffix(name, "out_proj.bias"):
			fill(0)
		case strings.HasSuffix(name, "in_proj_weight"):
			uniform(math.Sqrt(6.0 / float64(sh[0]+sh[1])))
		case name == "exe.0.weight_s" || name == "exe.0.weight_v" || name == "exe.0.bias":
			uniform(1 / math.Sqrt(float64(cfg.L*cfg.DS+cfg.DV)))
		case len(sh) == 2:
			uniform(1 / math.Sqrt(float64(sh[1])))
		case len(sh) == 1:
			// A Linear bias: fan_in is the width of its weight's rows.
			w := m.P.Get(name[:len(name)-len("bias")] + "weight")
			uniform(1 / math.Sqrt(float64(w.Dim(1))))
		default:
			panic("model: no initialiser for " + name)
		}
		m.B.Upload(p.T, data)
	}
}

// Encode runs the inductor's encoder on pairs x, y (N,L) int and returns
// the slot encodings e (N,T,d) after the final LayerNorm.
func (m *Model) Encode(tp *Tape, x, y *Tensor) *Tensor {
	cfg := m.Cfg
	h := tp.PairEmbed(x, y, m.val, m.pos, m.chn, m.slot) // (N, 2L+T, d)
	for i := range m.blocks {
		b := &m.blocks[i]
		a := tp.LayerNorm(h, b.ln1W, b.ln1B)
		qkv := tp.Linear(a, b.inW, b.inB) // (N, S, 3d)
		att := tp.Attention(qkv, cfg.Heads)
		h = tp.Add(h, tp.Linear(att, b.outW, b.outB))
		a = tp.LayerNorm(h, b.ln2W, b.ln2B)
		f := tp.GELU(tp.Linear(a, b.fcW, b.fcB))
		h = tp.Add(h, tp.Linear(f, b.prW, b.prB))
	}
	s := tp.SliceRows(h, 2*cfg.L, cfg.T) // (N, T, d)
	return tp.LayerNorm(s, m.lnfW, m.lnfB)
}

// Head maps slot embeddings e (…,T,d) to symbol logits (…,T,K).
func (m *Model) Head(tp *Tape, e *Tensor) *Tensor {
	_, logits := m.headParts(tp, e)
	return logits
}

// headParts is Head returning its hidden features GELU(Linear(e)) (…,T,d) too.
func (m *Model) headParts(tp *Tape, e *Tensor) (hid, logits *Tensor) {
	hid = tp.GELU(tp.Linear(e, m.h0W, m.h0B))
	return hid, tp.Linear(hid, m.h2W, m.h2B)
}

// Execute runs the interpreter on inputs x (N,L) int with the relaxed
// program z (N,T,K) and returns the final state distribution pi (N,L,V).
// With hard set, each step's state is the argmax one-hot (decode mode;
// z should then be one-hot too). Otherwise each step samples
// softmax((n+h)/tauD) with h = noise[t] (noise (T,N,L,V), or nil for none).
func (m *Model) Execute(tp *Tape, x, z *Tensor, tauD float32, noise *Tensor, hard bool) *Tensor {
	return m.execute(tp, x, z, tauD, noise, hard, nil, 1)
}

// firstLayer is the interpreter's first layer with the state embedding
// folded in, for search (the weights are frozen there). The state
// s = pi·Eio + P (N, L, ds) enters layer 1 only as flatten(s)·W1sᵀ, which is
// flatten(pi)·Wᵀ + flatten(P)·W1sᵀ with W[h, l·V+v] = Σ_j W1s[h, l·ds+j]·Eio[v, j]:
// a product of width L·V instead of L·ds, and no embedding op per step.
//
// With Exec "sym" the same fold applies to every symbol's map, whose input
// is the whole state embedding: W_k·flatten(pi·Eio + P) + b_k equals
// flatten(pi)·Wf_k + Bf_k with Wf[l·V+v, k·L·V+j] = Σ_d Eio[v,d]·symW[l·ds+d, k·L·V+j]
// (w, (L·V, K·L·V), MatMul's orientation like symW) and Bf = flatten(P)·symW + symB
// (b, (K, L·V)).
type firstLayer struct {
	w *Tensor // (H, L·V); sym: Wf (L·V, K·L·V)
	b *Tensor // (H): b1 + flatten(P)·W1sᵀ; sym: Bf (K, L·V)
}

// foldLen is the number of elements foldFirstLayer needs.
func (m *Model) foldLen() int {
	c := m.Cfg
	if c.Sym() {
		LV := c.L * c.V
		return LV*c.K*LV + c.K*LV
	}
	return c.H*c.L*c.V + c.H
}

// foldFirstLayer computes the folded first layer from the current weights
// into mem (at least foldLen elements), which the caller owns.
func (m *Model) foldFirstLayer(mem *Memory) *firstLayer {
	cfg, b := m.Cfg, m.B
	H, L, V, DS := cfg.H, cfg.L, cfg.V, cfg.DS
	if cfg.Sym() {
		LV, KLV := L*V, cfg.K*L*V
		f := &firstLayer{w: NewView(mem, 0, LV, KLV), b: NewView(mem, LV*KLV, cfg.K, LV)}
		// Rows l·V … l·V+V−1 of Wf are Eio (V, ds) times rows l·ds … l·ds+ds−1 of symW.
		w, sw := f.w.Reshape(L, V, KLV), m.symW.Reshape(L, DS, KLV)
		for l := range L {
			b.Gemm(w.Sub(l), m.eio, sw.Sub(l), false, false, V, KLV, DS, 1, 0)
		}
		b.Copy(f.b, m.symB)
		b.Gemm(f.b, m.pp, m.symW, false, false, 1, KLV, L*DS, 1, 1)
		return f
	}
	f := &firstLayer{w: NewView(mem, 0, H, L*V), b: NewView(mem, H*L*V, H)}
	// W1s (H, L·ds) is (H·L, ds) row-major, so W (H·L, V) = W1s·Eioᵀ.
	b.Gemm(f.w, m.w1s, m.eio, false, true, H*L, V, DS, 1, 0)
	b.Copy(f.b, m.b1)
	b.Gemm(f.b, m.pp, m.w1s, false, true, 1, H, L*DS, 1, 1)
	return f
}

// filmTerms computes, for all T steps at once, one FiLM layer's factor
// 1+γ(v) and shift β(v), each (T, N, H), from the instructions instr
// (T, N, dv). The γ and β Linears are the row halves of film.l; the views
// are taken on the tape so that frozen weights (search) stay frozen.
func (m *Model) filmTerms(tp *Tape, instr *Tensor, l int) (g1, beta *Tensor) {
	H, DV := m.Cfg.H, m.Cfg.DV
	W, b := m.filmW[l], m.filmB[l]
	wg, wb := tp.View(W, 0, H, DV), tp.View(W, H*DV, H, DV)
	bg, bb := tp.View(b, 0, H), tp.View(b, H, H)
	return tp.AddRows(tp.Linear(instr, wg, bg), m.ones), tp.Linear(instr, wb, bb)
}

// stateEmbed is the interpreter's state embedding flattened per row:
// (pi·E_io + pos) viewed as (N, L·ds).
func (m *Model) stateEmbed(tp *Tape, pi *Tensor) *Tensor {
	st := tp.AddRows(tp.MatMul(pi, m.eio), m.pp) // (N, L, ds)
	return tp.View(st, 0, pi.Dim(0), m.Cfg.L*m.Cfg.DS)
}

// execute is Execute; with f non-nil (search) it runs the interpreter's
// search form: layer 1 is the folded f, its bias joins the instruction term
// computed once for all steps, and each step accumulates its state term
// flatten(pi)·Wᵀ onto that in place (LinearAcc). This equals the plain form
// up to float rounding and saves, per step, the state embedding (a product
// and a bias pass), two thirds of layer 1's product, a bias pass and a sum,
// and their backward passes. With Exec "film" each hidden pre-activation
// h (layer 1's full L1([s, v]), in either form) becomes h·(1+γ_l) + β_l
// before its GELU; the FiLM terms depend only on the program, so they too
// are computed once for all steps. With Exec "sym" the step network is
// executeSym's, in either form.
//
// With rep > 1, z (and instr) hold one program per rep consecutive rows of x
// (search: one per start, shared by the start's rep specification pairs):
// everything that depends only on the program — the instruction, its share
// of layer 1, the FiLM terms, the SKIP gate — is computed once per program
// and broadcast over its rows (BiasGELU's bias rows, SkipMix's gate rows; the
// FiLM terms by RepeatRows), instead of computing it on rep copies of the
// program (4× the products at m = 4). Equal to repeating z first, up to the
// order in which the pairs' gradients are summed.
func (m *Model) execute(tp *Tape, x, z *Tensor, tauD float32, noise *Tensor, hard bool, f *firstLayer, rep int) *Tensor {
	return m.executeInstr(tp, x, z, nil, tauD, noise, hard, f, rep)
}

// executeInstr is execute with the instruction embeddings instr (T, N, dv)
// given instead of computed as z·E_v (nil: computed); z still gates SKIP.
// Symbol splitting (split.go) reads the NLL's gradient with respect to a
// given instr.
func (m *Model) executeInstr(tp *Tape, x, z, instr *Tensor, tauD float32, noise *Tensor, hard bool, f *firstLayer, rep int) *Tensor {
	cfg := m.Cfg
	N, L, V, T := x.Dim(0), cfg.L, cfg.V, cfg.T
	if rep < 1 || z.Dim(0)*rep != N {
		panic("model: execute: programs × rep ≠ rows of x")
	}
	// at is row block t of a (T, N/rep, …) program term, repeated to N rows.
	at := func(a *Tensor, t int) *Tensor {
		v := tp.Sub(a, t)
		if rep > 1 {
			v = tp.RepeatRows(v, rep)
		}
		return v
	}
	zT := tp.Transpose01(z) // (T, N/rep, K)
	if cfg.Sym() {
		if instr != nil {
			panic("model: execute: exec sym reads no instruction embeddings")
		}
		return m.executeSym(tp, x, zT, tauD, noise, hard, f, rep, nil)
	}
	if instr == nil {
		instr = tp.MatMul(zT, m.ev) // (T, N, dv)
	}
	var vp *Tensor // (T, N, H): the instruction's share of layer 1
	if f != nil {
		vp = tp.Linear(instr, m.w1v, f.b)
	} else {
		vp = tp.Linear(instr, m.w1v, nil)
	}
	var g1, beta [2]*Tensor // FiLM terms per layer, (T, N, H) each
	if cfg.FiLM() {
		for l := range 2 {
			g1[l], beta[l] = m.filmTerms(tp, instr, l)
		}
	}
	film := func(h *Tensor, l, t int) *Tensor {
		if g1[l] == nil {
			return h
		}
		return tp.Add(tp.Mul(h, at(g1[l], t)), at(beta[l], t))
	}
	pi := tp.OneHot(x, V) // (N, L, V)
	for t := 0; t < T; t++ {
		var h2 *Tensor
		if cfg.FiLM() {
			var h1 *Tensor
			if f != nil {
				h1 = tp.LinearAcc(at(vp, t), tp.View(pi, 0, N, L*V), f.w)
			} else {
				h1 = tp.Add(tp.Linear(m.stateEmbed(tp, pi), m.w1s, m.b1), at(vp, t))
			}
			h2 = tp.GELU(film(tp.Linear(tp.GELU(film(h1, 0, t)), m.w2, m.b2), 1, t))
		} else {
			// The instruction's share of layer 1 (one row per program,
			// repeated over rep rows) and the biases enter in BiasGELU:
			// GELU(h + b) in one pass, no repeated copy of vp.
			var h *Tensor
			if f != nil {
				h = tp.Linear(tp.View(pi, 0, N, L*V), f.w, nil)
			} else {
				h = tp.Linear(m.stateEmbed(tp, pi), m.w1s, m.b1)
			}
			h2 = tp.BiasGELU(tp.Linear(tp.BiasGELU(h, tp.Sub(vp, t)), m.w2, nil), m.b2)
		}
		// The SKIP gate of program r covers its rep consecutive rows of pi:
		// SkipMix and SoftmaxMix with N/rep gate rows mix rows of rep·L·V
		// elements, so zT needs no repeated copy (its gradient is summed
		// over the group in the same pass).
		if hard {
			n := tp.View(tp.Linear(h2, m.w3, m.b3), 0, N, L, V)
			pi = tp.SkipMix(pi, tp.ArgmaxOneHot(n), tp.Sub(zT, t), Skip)
			continue
		}
		// Soft: one SoftmaxMix, which also adds a frozen output bias
		// (search) in its pass; a trained one gets an AddRows of its own.
		n := tp.View(tp.Linear(h2, m.w3, nil), 0, N, L, V)
		var h *Tensor
		if noise != nil {
			h = tp.Sub(noise, t)
		}
		pi = tp.SoftmaxMix(n, m.b3, h, tauD, pi, tp.Sub(zT, t), Skip)
	}
	return pi
}

// executeSym is execute for Exec "sym" (recipe.py --exec sym), zT (T, N/rep,
// K) the transposed program. Each step's logits are n = Σ_k z_t,k (W_k s + b_k),
// s = flatten(pi·Eio + P): the product h = s·symW (N, K·L·V) runs every
// symbol's map, and Mul by z_t (each z_t,k repeated over its map's L·V
// outputs), a mean over the K maps (PoolPairs) and a scale by K mix them.
// The bias term z_t·symB depends on the program only and is computed for
// all steps at once. With f (search) s·symW is flatten(pi)·Wf and symB is
// Bf (see firstLayer): no state embedding, a product over L·V instead of
// L·ds. The logits go into the SKIP-gated state update as for the MLP.
// With pr non-nil (symbol splitting, executeSymProbe) each step's logits
// get pr.dn's slice t added and pr.pi[t] records the state the step read.
func (m *Model) executeSym(tp *Tape, x, zT *Tensor, tauD float32, noise *Tensor, hard bool, f *firstLayer, rep int, pr *symProbe) *Tensor {
	cfg := m.Cfg
	N, L, V, T, K := x.Dim(0), cfg.L, cfg.V, cfg.T, cfg.K
	LV := L * V
	W, B := m.symW, m.symB
	if f != nil {
		W, B = f.w, f.b
	}
	zb := tp.MatMul(zT, B) // (T, N/rep, L·V): Σ_k z_t,k b_k for every step
	pi := tp.OneHot(x, V)  // (N, L, V)
	for t := 0; t < T; t++ {
		var s *Tensor
		if f != nil {
			s = tp.View(pi, 0, N, LV)
		} else {
			s = m.stateEmbed(tp, pi)
		}
		h := tp.MatMul(s, W) // (N, K·L·V): every symbol's map
		zt, bt := tp.Sub(zT, t), tp.Sub(zb, t)
		if rep > 1 {
			zt, bt = tp.RepeatRows(zt, rep), tp.RepeatRows(bt, rep)
		}
		zr := tp.RepeatRows(tp.View(zt, 0, N*K, 1), LV) // z_t,k over its map's outputs
		mix := tp.PoolPairs(tp.Mul(tp.View(h, 0, N*K, LV), zr), K, false)
		n := tp.View(tp.AddScaled(bt, mix, float32(K)), 0, N, L, V) // Σ_k z_t,k (W_k s + b_k)
		if pr != nil {
			pr.pi[t] = pi
			n = tp.Add(n, tp.Sub(pr.dn, t))
		}
		if hard {
			pi = tp.SkipMix(pi, tp.ArgmaxOneHot(n), tp.Sub(zT, t), Skip)
			continue
		}
		var h2 *Tensor
		if noise != nil {
			h2 = tp.Sub(noise, t)
		}
		pi = tp.SoftmaxMix(n, nil, h2, tauD, pi, tp.Sub(zT, t), Skip)
	}
	return pi
}

// symProbe reads exec sym's per-step logit gradients for symbol splitting
// (split.go): dn (T, N, L, V) is a zero leaf added to each step's logits
// n_t, so that after Backward dn.Grad's slice t is the loss's gradient with
// respect to n_t; pi[t] is the state (N, L, V) step t read.
type symProbe struct {
	dn *Tensor
	pi []*Tensor
}

// executeSymProbe runs exec sym's soft interpreter on the program z (N, T, K)
// without noise, with a probe on every step's logits (symProbe); the result
// is Execute's (the probe is zero).
func (m *Model) executeSymProbe(tp *Tape, x, z *Tensor, tauD float32) (*Tensor, *symProbe) {
	cfg := m.Cfg
	pr := &symProbe{dn: tp.New(true, cfg.T, x.Dim(0), cfg.L, cfg.V), pi: make([]*Tensor, cfg.T)}
	m.B.Zero(pr.dn)
	return m.executeSym(tp, x, tp.Transpose01(z), tauD, nil, false, nil, 1, pr), pr
}
