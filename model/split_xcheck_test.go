// The cross-check of the Go symbol split (split.go) against
// docs/experiments/recipe.py's split_symbol: TestSplitCrossCheck writes a
// model with its AdamW moments, one training batch, and the split's
// intermediate values and results for both routes (head, map) to a folder;
// docs/experiments/split_xcheck.py loads the same weights and batch into
// recipe.py's model, runs its split_symbol and compares every output.
//
//   NLI_SPLIT_XCHECK=/tmp/xc go test ./model -run TestSplitCrossCheck -v
//   python3 docs/experiments/split_xcheck.py /tmp/xc
//
// NLI_SPLIT_XCHECK_CONFIG (default docs/experiments/go/tiny-sym-k16.json,
// initialised with NLI_SPLIT_XCHECK_SEED, default 0) or
// NLI_SPLIT_XCHECK_WEIGHTS (a trained exec-sym weights file, e.g.
// weights/comp-i-go-symmap-s5.nliw.sz, run at its schedule's end),
// NLI_SPLIT_XCHECK_STEPS (training steps before the split, default 5: the
// moments), NLI_SPLIT_XCHECK_BATCH (the batch's specifications) and
// NLI_SPLIT_XCHECK_MIX=1 (a second symbol takes half of the most used
// one's slots) and NLI_SPLIT_XCHECK_KILL=k (symbol k's slots go to their
// runner-up symbols) vary the case.

package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// xcheckBundle collects named float64 arrays and writes them as
// STEM.json (names, shapes, offsets, extra metadata) + STEM.bin (<f8).
type xcheckBundle struct {
	Meta    map[string]any `json:"meta"`
	Tensors []bundleEntry  `json:"tensors"`
	raw     []float64
}

func (b *xcheckBundle) add(name string, shape []int, v []float64) {
	b.Tensors = append(b.Tensors, bundleEntry{name, shape, len(b.raw)})
	b.raw = append(b.raw, v...)
}

func (b *xcheckBundle) add32(name string, shape []int, v []float32) {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	b.add(name, shape, d)
}

func (b *xcheckBundle) addInts(name string, v []int) {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	b.add(name, []int{len(v)}, d)
}

// addTrace stores one splitTrace value.
func (b *xcheckBundle) addTrace(name string, v any) {
	switch v := v.(type) {
	case []int:
		b.addInts("trace/"+name, v)
	case int:
		b.add("trace/"+name, []int{1}, []float64{float64(v)})
	case float64:
		b.add("trace/"+name, []int{1}, []float64{v})
	case []float64:
		b.add("trace/"+name, []int{len(v)}, slices.Clone(v))
	case []float32:
		b.add32("trace/"+name, []int{len(v)}, v)
	case []bool:
		d := make([]float64, len(v))
		for i, x := range v {
			if x {
				d[i] = 1
			}
		}
		b.add("trace/"+name, []int{len(v)}, d)
	case [][]float64:
		var d []float64
		for _, r := range v {
			d = append(d, r...)
		}
		p := 0
		if len(v) > 0 {
			p = len(v[0])
		}
		b.add("trace/"+name, []int{len(v), p}, d)
	default:
		panic("xcheck: trace " + name + ": unhandled type")
	}
}

func (b *xcheckBundle) write(t *testing.T, dir, stem string) {
	t.Helper()
	j, err := json.MarshalIndent(b, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8*len(b.raw))
	for i, v := range b.raw {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(v))
	}
	if err := os.WriteFile(filepath.Join(dir, stem+".json"), j, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stem+".bin"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestSplitCrossCheck writes the cross-check bundle (see the file comment);
// skipped unless NLI_SPLIT_XCHECK names a folder.
func TestSplitCrossCheck(t *testing.T) {
	dir := os.Getenv("NLI_SPLIT_XCHECK")
	if dir == "" {
		t.Skip("NLI_SPLIT_XCHECK not set")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := uint64(envInt(t, "NLI_SPLIT_XCHECK_SEED", 0))
	pre := envInt(t, "NLI_SPLIT_XCHECK_STEPS", 5)
	b := NewCPU(2)
	var cfg Config
	var wf *WeightsFile
	if path := os.Getenv("NLI_SPLIT_XCHECK_WEIGHTS"); path != "" {
		var err error
		if wf, err = ReadWeightsFile(path); err != nil {
			t.Fatal(err)
		}
		if cfg, err = ParseConfig(wf.Config); err != nil {
			t.Fatal(err)
		}
	} else {
		cfgPath := os.Getenv("NLI_SPLIT_XCHECK_CONFIG")
		if cfgPath == "" {
			cfgPath = "../docs/experiments/go/tiny-sym-k16.json"
		}
		raw, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if cfg, err = ParseConfig(raw); err != nil {
			t.Fatal(err)
		}
	}
	if !cfg.Sym() {
		t.Fatalf("exec %q, the cross-check needs sym", cfg.Exec)
	}
	if bs := envInt(t, "NLI_SPLIT_XCHECK_BATCH", 0); bs > 0 {
		cfg.Train.Batch = bs
	}
	cfg.Train.SplitEvery, cfg.Train.SplitRoute = 0, ""
	cfg.Train.SplitEta, cfg.Train.SplitAlpha, cfg.Train.SplitDelta = 0, 0, 0
	m, err := NewModel(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if wf != nil {
		if err := m.P.Import(wf.Tensors, false, "xcheck"); err != nil {
			t.Fatal(err)
		}
	} else {
		m.Init(seed)
	}
	tr, err := NewTrainer(m, SplitCompI, max(cfg.Train.AnnealSteps, pre+1), seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	if wf != nil { // a trained model: the schedule's end (its temperatures), pre steps for the moments
		tr.Step = tr.Steps - pre - 1
	}
	for range pre {
		st, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if st.Step%50 == 0 || st.Step == tr.Steps-1 {
			t.Logf("step %d: nll %.3f", st.Step, st.NLL)
		}
	}
	if err := tr.nextBatch(); err != nil {
		t.Fatal(err)
	}
	K := cfg.K
	// Dead symbols: the split needs one. If training left none, the two
	// least-used non-SKIP symbols have their head bias lowered by 50.
	am := programsOf(tr)
	uses := make([]int, K)
	for _, k := range am {
		uses[k]++
	}
	forced := []int{}
	// NLI_SPLIT_XCHECK_KILL=k: symbol k's head bias is lowered by 50, so
	// that its slots go to their runner-up symbols (a trained model's
	// symbol then holds two primitives, one of them wrong).
	if k := envInt(t, "NLI_SPLIT_XCHECK_KILL", 0); k > 0 {
		bias := m.P.Get("head.2.bias")
		h := make([]float32, K)
		b.Download(h, bias)
		h[k] -= 50
		b.Upload(bias, h)
		forced = append(forced, k)
		am = programsOf(tr)
		clear(uses)
		for _, k := range am {
			uses[k]++
		}
	}
	if !slices.Contains(uses[1:], 0) {
		order := make([]int, 0, K-1)
		for k := 1; k < K; k++ {
			order = append(order, k)
		}
		slices.SortStableFunc(order, func(a, c int) int { return uses[a] - uses[c] })
		bias := m.P.Get("head.2.bias")
		h := make([]float32, K)
		b.Download(h, bias)
		for _, k := range order[:2] {
			h[k] -= 50
			forced = append(forced, k)
		}
		b.Upload(bias, h)
	}
	// NLI_SPLIT_XCHECK_MIX=1: a second symbol takes the half of the most
	// used one's slots where it is closest to it (the head route's cap on
	// D's bias then matters).
	mixWith := -1
	if os.Getenv("NLI_SPLIT_XCHECK_MIX") == "1" {
		top := 1
		for k := 1; k < K; k++ {
			if uses[k] > uses[top] {
				top = k
			}
		}
		mixWith = 1 + top%(K-1) // a non-SKIP symbol other than top
		for slices.Contains(forced, mixWith) || mixWith == top {
			mixWith = 1 + mixWith%(K-1)
		}
		lg := headLogits(tr)
		var d []float64
		for r := range len(lg) / K {
			if am[r] == top {
				d = append(d, float64(lg[r*K+top]-lg[r*K+mixWith]))
			}
		}
		slices.Sort(d)
		bias := m.P.Get("head.2.bias")
		h := make([]float32, K)
		b.Download(h, bias)
		h[mixWith] += float32(d[len(d)/2] + 1e-3) // no slot at a tie
		b.Upload(bias, h)
		am = programsOf(tr)
		clear(uses)
		for _, k := range am {
			uses[k]++
		}
	}
	t.Logf("uses %v, forced dead %v, mixed in %d", uses, forced, mixWith)
	tauD := tr.Schedule(tr.Step).TauD
	state := m.P.Export(true)

	N, L := tr.x.Dim(0), cfg.L
	xH, yH := make([]int32, N*L), make([]int32, N*L)
	b.DownloadInt(xH, tr.x)
	b.DownloadInt(yH, tr.y)
	in := &xcheckBundle{Meta: map[string]any{}}
	var names []string
	for _, p := range tr.progs {
		names = append(names, p.String())
	}
	cfgJSON, _ := json.Marshal(cfg)
	in.Meta["config"] = json.RawMessage(cfgJSON)
	in.Meta["B"], in.Meta["m"] = cfg.Train.Batch, cfg.Train.Pairs
	in.Meta["tau_d"], in.Meta["step"], in.Meta["seed"] = tauD, tr.Step, seed
	in.Meta["prog_names"], in.Meta["forced_dead"] = names, forced
	xs, ys := make([]int, len(xH)), make([]int, len(yH))
	for i := range xH {
		xs[i], ys[i] = int(xH[i]), int(yH[i])
	}
	in.addInts("x", xs)
	in.addInts("y", ys)
	progs := make([]int, len(tr.prog))
	for i, v := range tr.prog {
		progs[i] = int(v)
	}
	in.addInts("prog", progs)
	for _, x := range state {
		in.add32(x.Name, x.Shape, x.Data)
	}
	in.write(t, dir, "input")

	t.Cleanup(func() { splitTrace = nil })
	for _, route := range []string{SplitRouteHead, SplitRouteMap} {
		if err := m.P.Import(state, true, "xcheck"); err != nil {
			t.Fatal(err)
		}
		m.Cfg.Train.SplitRoute = route
		out := &xcheckBundle{Meta: map[string]any{}}
		splitTrace = out.addTrace
		ev, err := tr.splitSymbol(tauD)
		splitTrace = nil
		if err != nil {
			t.Fatal(err)
		}
		evJSON, _ := json.Marshal(ev)
		t.Logf("%s: %s", route, evJSON)
		out.Meta["event"] = json.RawMessage(evJSON)
		if ev.plusRows != nil {
			out.addInts("plus_rows", ev.plusRows)
		}
		for _, x := range m.P.Export(true) {
			out.add32(x.Name, x.Shape, x.Data)
		}
		out.write(t, dir, "go_"+route)
	}
}
