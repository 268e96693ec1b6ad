//go:build js && wasm

// The JavaScript-facing API of the WebAssembly module: the object
// globalThis.nli with one Promise-returning function per operation. Every
// function parses and checks its arguments, runs on a goroutine (see
// promise), holds the service lock while it uses the model, and resolves
// with plain JSON-shaped objects. docs/BROWSER.md documents the API.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hack-pad/safejs"
	"github.com/nli-go/nli/model"
)

// APIVersion is the version of the JavaScript API (the shape of the nli
// object); the page checks it against the one it was written for.
const APIVersion = 1

// service is the state behind the API: at most one loaded model.
type service struct {
	// mu serialises all model work: a Searcher and the model's tape are not
	// safe for concurrent use, and a search yields to JavaScript between
	// steps, when another call may arrive.
	mu   sync.Mutex
	m    *model.Model
	s    *model.Searcher
	info *modelInfo
}

// modelInfo describes the loaded model (the result of loadWeights).
type modelInfo struct {
	Name       string           `json:"name"`
	Config     model.Config     `json:"config"`
	SHA256     string           `json:"sha256"` // of the tensor bytes, as verified by the decoder
	Provenance model.Provenance `json:"provenance"`
	Params     int              `json:"params"`
	Bytes      int              `json:"bytes"` // size of the weights file
	DecodeMs   float64          `json:"decodeMs"`
}

// resultJSON is a search method's answer for one task.
type resultJSON struct {
	Method     string   `json:"method"`
	Program    []int    `json:"program"`    // T symbol ids; 0 is SKIP
	SpecPairs  int      `json:"specPairs"`  // specification pairs the program reproduces
	Pairs      int      `json:"pairs"`      // specification pairs of the task
	LogLik     *float64 `json:"logLik"`     // soft log-likelihood (null before any check)
	Prediction []int32  `json:"prediction"` // the program's output on the query input
	SolvedAt   int      `json:"solvedAt"`   // first step that reproduced every pair; −1 never
	Correct    *bool    `json:"correct"`    // null when the task has no known answer
	Acts       string   `json:"acts"`       // a primitive the program acts as on the task's inputs, or ""
	Steps      int      `json:"steps"`      // search steps run (0 for the inductor)
	Starts     int      `json:"starts"`
	Seed       uint64   `json:"seed"`
	Aborted    bool     `json:"aborted"`
	Ms         float64  `json:"ms"` // wall time of the call's work
}

// stepJSON is what search passes to onStep after every step.
type stepJSON struct {
	Step       int      `json:"step"` // 1-based
	Steps      int      `json:"steps"`
	Loss       *float64 `json:"loss"` // mean NLL per start and pair
	TauE       float64  `json:"tauE"`
	TauD       float64  `json:"tauD"`
	Program    []int    `json:"program"` // best hard program so far (null before the first check)
	SpecPairs  int      `json:"specPairs"`
	Pairs      int      `json:"pairs"`
	Prediction []int32  `json:"prediction"` // the best program's output on the query
	Solved     bool     `json:"solved"`
	SolvedAt   int      `json:"solvedAt"`
	Ms         float64  `json:"ms"` // since the search started
}

// finite returns &v, or nil for NaN and ±Inf (which JSON cannot carry).
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// export is the Go side of one API function: it gets the call's arguments
// and returns a JSON-encodable result or an error.
type export func(args []safejs.Value) (any, error)

// install sets target.nli to a fresh API object with its own service (no
// model loaded). extra adds functions (tests use it).
func install(target safejs.Value, extra map[string]export) error {
	sv := &service{}
	obj, err := jsonParse(fmt.Sprintf(`{"apiVersion": %d}`, APIVersion))
	if err != nil {
		return err
	}
	exports := map[string]export{
		"info":        sv.jsInfo,
		"loadWeights": sv.jsLoadWeights,
		"tasks":       sv.jsTasks,
		"induce":      sv.jsInduce,
		"search":      sv.jsSearch,
		"run":         sv.jsRun,
		"language":    sv.jsLanguage,
	}
	for name, fn := range extra {
		exports[name] = fn
	}
	for name, fn := range exports {
		f, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
			p, err := promise(func() (any, error) {
				v, err := fn(args)
				if err != nil {
					err = fmt.Errorf("nli.%s: %w", name, err)
				}
				return v, err
			})
			if err != nil {
				return jsError(err)
			}
			return p
		})
		if err != nil {
			return err
		}
		if err := obj.Set(name, f); err != nil {
			return err
		}
	}
	return target.Set("nli", obj)
}

// loaded returns the model or an error saying none is loaded; call with mu held.
func (sv *service) loaded() error {
	if sv.m == nil {
		return errors.New("no model loaded (call loadWeights first)")
	}
	return nil
}

// jsInfo: info() → {apiVersion, go, build, model (null when none)}.
func (sv *service) jsInfo([]safejs.Value) (any, error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	build := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				build = s.Value
			}
		}
	}
	return map[string]any{"apiVersion": APIVersion, "go": runtime.Version(), "build": build, "model": sv.info}, nil
}

// jsLoadWeights: loadWeights(bytes, {name, onProgress}) decodes a .nliw.sz
// file (checking its CRCs and tensor hash) and makes it the loaded model.
// onProgress({phase, done, total}) is called with phase "decode" (bytes of
// tensor data) and then "build".
func (sv *service) jsLoadWeights(args []safejs.Value) (any, error) {
	b, err := bytesOf(arg(args, 0))
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	opts := arg(args, 1)
	name := "weights"
	if v := field(opts, "name"); v.Type() == safejs.TypeString {
		name, _ = v.String()
	}
	onProgress, hasProgress := callback(opts, "onProgress")
	report := func(phase string, done, total int) {
		if !hasProgress {
			return
		}
		if v, err := toJS(map[string]any{"phase": phase, "done": done, "total": total}); err == nil {
			_, _ = onProgress.Invoke(v) // progress is best effort
		}
	}
	t0 := time.Now()
	wf, err := model.DecodeWeightsBytes(b, name, func(done, total int) { report("decode", done, total) })
	if err != nil {
		return nil, err
	}
	report("build", 0, 1)
	m, err := model.LoadModel(model.NewCPU(1), wf, name)
	if err != nil {
		return nil, err
	}
	report("build", 1, 1)
	params := 0
	for _, t := range wf.Tensors {
		params += len(t.Data)
	}
	info := &modelInfo{Name: name, Config: m.Cfg, SHA256: wf.SHA256, Provenance: wf.Provenance,
		Params: params, Bytes: len(b), DecodeMs: ms(time.Since(t0))}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.m, sv.s, sv.info = m, model.NewSearcher(m), info
	return info, nil
}

// jsTasks: tasks({split, part, n, seed, pairs}) → Task[] from the suite's
// generator (the same tasks as `native gen` with those flags).
func (sv *service) jsTasks(args []safejs.Value) (any, error) {
	var o struct {
		Split string `json:"split"`
		Part  string `json:"part"`
		N     int    `json:"n"`
		Seed  uint64 `json:"seed"`
		Pairs int    `json:"pairs"`
	}
	o.Part, o.N, o.Pairs = "ood", 8, 4
	if err := decodeArg(arg(args, 0), &o); err != nil {
		return nil, err
	}
	split, err := model.ParseSplit(o.Split)
	if err != nil {
		return nil, err
	}
	part, err := model.ParsePart(o.Part)
	if err != nil {
		return nil, err
	}
	if o.N < 1 || o.N > 1000 || o.Pairs < 1 || o.Pairs > 16 {
		return nil, fmt.Errorf("n = %d and pairs = %d: want 1 ≤ n ≤ 1000, 1 ≤ pairs ≤ 16", o.N, o.Pairs)
	}
	return model.GenTasks(split, part, o.N, o.Pairs, o.Seed), nil
}

// decodeArg decodes a JavaScript object (or JSON string) into dst strictly:
// unknown keys are errors. undefined leaves dst as it is.
func decodeArg(v safejs.Value, dst any) error {
	s, err := jsonOf(v)
	if err != nil || s == "" {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	return nil
}

// parseTask decodes and validates one task, accepting an object or JSON text.
func parseTask(v safejs.Value) (model.Task, error) {
	s, err := jsonOf(v)
	if err != nil {
		return model.Task{}, fmt.Errorf("task: %w", err)
	}
	if s == "" {
		return model.Task{}, errors.New("task: missing")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(s)); err != nil {
		return model.Task{}, fmt.Errorf("task: invalid JSON: %w", err)
	}
	tasks, err := model.ReadTasks(&compact, "task", false)
	if err != nil {
		return model.Task{}, err
	}
	if len(tasks) != 1 {
		return model.Task{}, fmt.Errorf("task: got %d tasks, want one", len(tasks))
	}
	return tasks[0], nil
}

// jsInduce: induce(task) → the inductor's program and its prediction.
func (sv *service) jsInduce(args []safejs.Value) (any, error) {
	t, err := parseTask(arg(args, 0))
	if err != nil {
		return nil, err
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if err := sv.loaded(); err != nil {
		return nil, err
	}
	tb, err := model.NewTaskBatch([]model.Task{t})
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	r := sv.s.Induce(tb)[0]
	if err := sv.m.B.Err(); err != nil {
		return nil, err
	}
	out := sv.result("induce", t, r)
	out.Ms = ms(time.Since(t0))
	return out, nil
}

// result converts a model.Result for task t.
func (sv *service) result(method string, t model.Task, r model.Result) *resultJSON {
	out := &resultJSON{Method: method, Program: r.Program, SpecPairs: r.SpecPairs, Pairs: len(t.Train),
		LogLik: finite(r.LogLik), Prediction: r.Pred, SolvedAt: r.SolvedAt}
	if t.Test[0].Output != nil {
		c := r.Correct
		out.Correct = &c
	}
	out.Acts = sv.acts(t, r.Program)
	return out
}

// searchOptions are search's settings; zero values take the model's.
type searchOptions struct {
	Starts     int      `json:"starts"`
	Steps      int      `json:"steps"`
	Seed       uint64   `json:"seed"`
	CheckEvery int      `json:"checkEvery"` // default 1: the best program is live every step
	LR         *float64 `json:"lr"`
	Sigma      *float64 `json:"sigma"`
}

// jsSearch: search(task, {starts, steps, seed, checkEvery, lr, sigma,
// onStep, signal}) runs gradient search one step at a time. After each step
// it calls onStep(step) and yields to the event loop; it stops early when
// the specification is reproduced, or when signal.aborted is true (then it
// resolves with the best program so far and aborted: true).
func (sv *service) jsSearch(args []safejs.Value) (any, error) {
	t, err := parseTask(arg(args, 0))
	if err != nil {
		return nil, err
	}
	opts := arg(args, 1)
	var o searchOptions
	if err := decodeSearchOptions(opts, &o); err != nil {
		return nil, err
	}
	onStep, hasStep := callback(opts, "onStep")
	signal := field(opts, "signal")

	sv.mu.Lock()
	defer sv.mu.Unlock()
	if err := sv.loaded(); err != nil {
		return nil, err
	}
	sc := sv.m.Cfg.Search
	if o.Starts != 0 {
		sc.Starts = o.Starts
	}
	if o.Steps != 0 {
		sc.Steps = o.Steps
	}
	sc.CheckEvery = 1
	if o.CheckEvery != 0 {
		sc.CheckEvery = o.CheckEvery
	}
	if o.LR != nil {
		sc.LR = *o.LR
	}
	if o.Sigma != nil {
		sc.Sigma = *o.Sigma
	}
	if sc.Starts < 1 || sc.Starts > 4096 || sc.Steps < 1 || sc.Steps > 100000 || sc.CheckEvery < 1 {
		return nil, fmt.Errorf("starts = %d, steps = %d, checkEvery = %d: want 1 ≤ starts ≤ 4096, 1 ≤ steps ≤ 100000, checkEvery ≥ 1",
			sc.Starts, sc.Steps, sc.CheckEvery)
	}
	if !(sc.LR > 0) || math.IsInf(sc.LR, 0) || sc.Sigma < 0 || math.IsNaN(sc.Sigma) || math.IsInf(sc.Sigma, 0) {
		return nil, fmt.Errorf("lr = %g, sigma = %g: want lr > 0 and sigma ≥ 0, both finite", sc.LR, sc.Sigma)
	}
	tb, err := model.NewTaskBatch([]model.Task{t})
	if err != nil {
		return nil, err
	}

	t0 := time.Now()
	run := sv.s.StartGradient(tb, sc, o.Seed)
	defer run.Close()
	var shown []int // program whose prediction is in pred
	var pred []int32
	aborted, steps := false, 0
	for {
		info, more := run.Step()
		steps = info.Step
		if err := sv.m.B.Err(); err != nil {
			return nil, err
		}
		if hasStep {
			if info.Best.Program != nil && !slices.Equal(info.Best.Program, shown) {
				shown = slices.Clone(info.Best.Program)
				pred = run.Results()[0].Pred
			}
			st := stepJSON{Step: info.Step, Steps: sc.Steps, Loss: finite(info.Loss), TauE: info.TauE, TauD: info.TauD,
				Program: shown, SpecPairs: max(0, info.Best.SpecPairs), Pairs: tb.M, Prediction: pred,
				Solved: info.Solved > 0, SolvedAt: info.Best.SolvedAt, Ms: ms(time.Since(t0))}
			v, err := toJS(st)
			if err != nil {
				return nil, err
			}
			if _, err := onStep.Invoke(v); err != nil {
				return nil, fmt.Errorf("onStep: %w", err)
			}
		}
		if !more {
			break
		}
		yieldToJS()
		if truthy(field(signal, "aborted")) {
			aborted = true
			break
		}
	}
	r := run.Results()[0]
	if err := sv.m.B.Err(); err != nil {
		return nil, err
	}
	out := sv.result("search", t, r)
	out.Steps, out.Starts, out.Seed, out.Aborted = steps, sc.Starts, o.Seed, aborted
	out.Ms = ms(time.Since(t0))
	return out, nil
}

// decodeSearchOptions reads search's JSON-shaped options (an object or JSON
// text) strictly; the keys onStep and signal are read by the caller (JSON
// drops functions; signal is removed here).
func decodeSearchOptions(opts safejs.Value, o *searchOptions) error {
	s, err := jsonOf(opts)
	if err != nil || s == "" {
		return err
	}
	var plain map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &plain); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	delete(plain, "signal")
	b, err := json.Marshal(plain)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	return nil
}

// jsRun: run(programs, inputs) executes hard programs (each T symbol ids)
// on inputs (each L values); one input is used for every program.
func (sv *service) jsRun(args []safejs.Value) (any, error) {
	var progs, inputs [][]int
	if err := decodeArg(arg(args, 0), &progs); err != nil {
		return nil, fmt.Errorf("programs: %w", err)
	}
	if err := decodeArg(arg(args, 1), &inputs); err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if err := sv.loaded(); err != nil {
		return nil, err
	}
	if len(progs) == 0 || len(progs) > 4096 {
		return nil, fmt.Errorf("programs: %d, want 1..4096", len(progs))
	}
	if len(inputs) != 1 && len(inputs) != len(progs) {
		return nil, fmt.Errorf("inputs: %d, want 1 or one per program (%d)", len(inputs), len(progs))
	}
	if err := sv.checkPrograms(progs); err != nil {
		return nil, err
	}
	x := make([]int32, 0, len(progs)*model.SeqLen)
	for i := range progs {
		in := inputs[min(i, len(inputs)-1)]
		if err := checkSeq(fmt.Sprintf("inputs[%d]", i), in); err != nil {
			return nil, err
		}
		for _, v := range in {
			x = append(x, int32(v))
		}
	}
	out := sv.s.Run(progs, x)
	if err := sv.m.B.Err(); err != nil {
		return nil, err
	}
	return split(out), nil
}

// checkPrograms checks that every program has T symbols in 0..K-1.
func (sv *service) checkPrograms(progs [][]int) error {
	T, K := sv.m.Cfg.T, sv.m.Cfg.K
	for i, p := range progs {
		if len(p) != T {
			return fmt.Errorf("programs[%d]: %d symbols, the model's programs have %d", i, len(p), T)
		}
		for j, s := range p {
			if s < 0 || s >= K {
				return fmt.Errorf("programs[%d][%d]: symbol %d outside 0..%d", i, j, s, K-1)
			}
		}
	}
	return nil
}

// checkSeq checks one sequence of the task suite.
func checkSeq(what string, s []int) error {
	if len(s) != model.SeqLen {
		return fmt.Errorf("%s: length %d, want %d", what, len(s), model.SeqLen)
	}
	for i, v := range s {
		if v < 0 || v >= model.NumValues {
			return fmt.Errorf("%s: value %d outside 0..%d (position %d)", what, v, model.NumValues-1, i)
		}
	}
	return nil
}

// split cuts (n·L) outputs into n sequences.
func split(out []int32) [][]int32 {
	L := model.SeqLen
	res := make([][]int32, len(out)/L)
	for i := range res {
		res[i] = out[i*L : (i+1)*L]
	}
	return res
}

// symbolJSON is one entry of the learned language: what symbol does alone.
type symbolJSON struct {
	Symbol  int       `json:"symbol"`
	Outputs [][]int32 `json:"outputs"` // program [symbol, SKIP, …] on each input
	Acts    string    `json:"acts"`    // a primitive it acts as on every input, or ""
}

// jsLanguage: language({inputs, symbols}) runs each symbol alone (program
// [symbol, SKIP, …, SKIP]) on each input and names the primitive it acts
// as, if any. symbols defaults to every symbol but SKIP.
func (sv *service) jsLanguage(args []safejs.Value) (any, error) {
	var o struct {
		Inputs  [][]int `json:"inputs"`
		Symbols []int   `json:"symbols"`
	}
	if err := decodeArg(arg(args, 0), &o); err != nil {
		return nil, err
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if err := sv.loaded(); err != nil {
		return nil, err
	}
	T, K := sv.m.Cfg.T, sv.m.Cfg.K
	if len(o.Inputs) == 0 || len(o.Inputs) > 64 {
		return nil, fmt.Errorf("inputs: %d, want 1..64", len(o.Inputs))
	}
	for i, in := range o.Inputs {
		if err := checkSeq(fmt.Sprintf("inputs[%d]", i), in); err != nil {
			return nil, err
		}
	}
	if o.Symbols == nil {
		for k := 1; k < K; k++ {
			o.Symbols = append(o.Symbols, k)
		}
	}
	var progs [][]int
	var x []int32
	for _, sym := range o.Symbols {
		if sym < 0 || sym >= K {
			return nil, fmt.Errorf("symbols: %d outside 0..%d", sym, K-1)
		}
		p := make([]int, T)
		p[0] = sym
		for _, in := range o.Inputs {
			progs = append(progs, p)
			for _, v := range in {
				x = append(x, int32(v))
			}
		}
	}
	if len(progs) == 0 {
		return []symbolJSON{}, nil
	}
	outs := split(sv.s.Run(progs, x))
	if err := sv.m.B.Err(); err != nil {
		return nil, err
	}
	ins := toI32(o.Inputs)
	res := make([]symbolJSON, len(o.Symbols))
	n := len(o.Inputs)
	for i, sym := range o.Symbols {
		res[i] = symbolJSON{Symbol: sym, Outputs: outs[i*n : (i+1)*n], Acts: actsAs(ins, outs[i*n:(i+1)*n])}
	}
	return res, nil
}

// acts names a primitive that program acts as on all of t's inputs, or "".
// Call with mu held.
func (sv *service) acts(t model.Task, program []int) string {
	if len(program) != sv.m.Cfg.T {
		return ""
	}
	var ins [][]int
	for _, p := range t.Train {
		ins = append(ins, p.Input)
	}
	ins = append(ins, t.Test[0].Input)
	progs := make([][]int, len(ins))
	var x []int32
	for i, in := range ins {
		progs[i] = program
		for _, v := range in {
			x = append(x, int32(v))
		}
	}
	return actsAs(toI32(ins), split(sv.s.Run(progs, x)))
}

func toI32(in [][]int) [][]int32 {
	out := make([][]int32, len(in))
	for i, s := range in {
		out[i] = make([]int32, len(s))
		for j, v := range s {
			out[i][j] = int32(v)
		}
	}
	return out
}

// knownPrograms are the candidates actsAs tries, simplest first: the
// identity, rotl 1..19, the named primitives, then comp-i's compositions.
var knownPrograms = func() []model.Program {
	var ps []model.Program
	for k := 0; k < model.SeqLen; k++ {
		ps = append(ps, model.Program{{Op: "rotl", K: k}})
	}
	for _, n := range model.NamedPrimitives() {
		if n != "rotl1" && n != "rotr1" { // rotl 1 and rotl 19 already
			ps = append(ps, model.Program{{Op: n}})
		}
	}
	return append(ps, model.Programs(model.SplitCompI, model.PartOOD)...)
}()

// actsAs returns the first known program that maps every input to its
// output, as text ("identity" for rotl 0), or "" when none does.
func actsAs(ins, outs [][]int32) string {
	got := make([]int32, model.SeqLen)
next:
	for _, p := range knownPrograms {
		for i := range ins {
			p.Apply(got, ins[i])
			if !slices.Equal(got, outs[i]) {
				continue next
			}
		}
		if len(p) == 1 && p[0].Op == "rotl" && p[0].K == 0 {
			return "identity"
		}
		return p.String()
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
