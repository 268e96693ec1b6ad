//go:build js && wasm

// Tests of the JavaScript API under node (GOOS=js GOARCH=wasm go test
// ./wasm -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec"): every export
// returns a Promise at once, resolves with the documented shapes, and
// rejects with a message on bad input, corrupt weights and panics. A tiny
// random model serves most tests; the shipped shift-l weights, when
// present, check that a known OOD task is answered right.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hack-pad/safejs"
	"github.com/nli-go/nli/model"
)

// api installs a fresh nli object (its own service) and returns it.
func api(t *testing.T) safejs.Value {
	t.Helper()
	target, err := jsonParse("{}")
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string]export{
		"panicForTest": func([]safejs.Value) (any, error) {
			var none []int
			return none[len(none)+1], nil // index out of range, on purpose
		},
	}
	if err := install(target, extra); err != nil {
		t.Fatal(err)
	}
	nli, err := target.Get("nli")
	if err != nil {
		t.Fatal(err)
	}
	return nli
}

// call calls nli[name](args...), checks that it returned a Promise, and
// waits for it: it returns the resolved value, or the rejection's message as
// an error.
func call(t *testing.T, nli safejs.Value, name string, args ...any) (safejs.Value, error) {
	t.Helper()
	p, err := nli.Call(name, args...)
	if err != nil {
		t.Fatalf("nli.%s threw: %v", name, err)
	}
	ctor, _ := safejs.Global().Get("Promise")
	if ok, _ := p.InstanceOf(ctor); !ok {
		t.Fatalf("nli.%s returned %s, not a Promise", name, p.Type())
	}
	type settled struct {
		v   safejs.Value
		err error
	}
	ch := make(chan settled, 1)
	onOK, _ := safejs.FuncOf(func(_ safejs.Value, a []safejs.Value) any {
		ch <- settled{v: arg(a, 0)}
		return nil
	})
	onErr, _ := safejs.FuncOf(func(_ safejs.Value, a []safejs.Value) any {
		msg, _ := field(arg(a, 0), "message").String()
		ch <- settled{err: errors.New(msg)}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	if _, err := p.Call("then", onOK, onErr); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-ch:
		return s.v, s.err
	case <-time.After(5 * time.Minute):
		t.Fatalf("nli.%s: Promise not settled after 5 minutes", name)
		return safejs.Undefined(), nil
	}
}

// decode converts a JavaScript result into dst through JSON.
func decode(t *testing.T, v safejs.Value, dst any) {
	t.Helper()
	s, err := jsonOf(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
}

// jsBytes copies b into a new Uint8Array.
func jsBytes(t *testing.T, b []byte) safejs.Value {
	t.Helper()
	u8, _ := safejs.Global().Get("Uint8Array")
	v, err := u8.New(len(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := safejs.CopyBytesToJS(v, b); err != nil {
		t.Fatal(err)
	}
	return v
}

// tinyWeights encodes a freshly initialised tiny model.
func tinyWeights(t *testing.T) []byte {
	t.Helper()
	m, err := model.NewModel(model.NewCPU(1), model.Tiny())
	if err != nil {
		t.Fatal(err)
	}
	m.Init(1)
	wf, err := m.Weights(model.Provenance{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := model.EncodeWeights(&buf, wf, model.DTypeF32); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jsFunc wraps fn as a JavaScript function released at the end of the test.
func jsFunc(t *testing.T, fn func(args []safejs.Value)) safejs.Func {
	f, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any { fn(args); return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Release)
	return f
}

// obj builds a JavaScript object from JSON text.
func obj(t *testing.T, s string) safejs.Value {
	t.Helper()
	v, err := jsonParse(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadTiny(t *testing.T, nli safejs.Value) {
	t.Helper()
	if _, err := call(t, nli, "loadWeights", jsBytes(t, tinyWeights(t)), obj(t, `{"name": "tiny"}`)); err != nil {
		t.Fatal(err)
	}
}

func oneTask(t *testing.T, seed uint64) model.Task {
	return model.GenTasks(model.SplitShiftL, model.PartOOD, 1, 4, seed)[0]
}

func taskJSON(t *testing.T, task model.Task) string {
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInfoBeforeLoad(t *testing.T) {
	nli := api(t)
	v, err := call(t, nli, "info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		APIVersion int             `json:"apiVersion"`
		Go         string          `json:"go"`
		Model      json.RawMessage `json:"model"`
	}
	decode(t, v, &info)
	if info.APIVersion != APIVersion || !strings.HasPrefix(info.Go, "go") || string(info.Model) != "null" {
		t.Errorf("info = %+v", info)
	}
	if _, err := call(t, nli, "induce", taskJSON(t, oneTask(t, 1))); err == nil || !strings.Contains(err.Error(), "no model loaded") {
		t.Errorf("induce before loadWeights: err = %v, want 'no model loaded'", err)
	}
}

func TestLoadWeightsProgress(t *testing.T) {
	nli := api(t)
	var phases []string
	last := [2]int{}
	onProgress := jsFunc(t, func(a []safejs.Value) {
		var p struct {
			Phase       string
			Done, Total int
		}
		decode(t, arg(a, 0), &p)
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
		if p.Phase == "decode" {
			if p.Done < last[0] || p.Done > p.Total {
				t.Errorf("decode progress went %v → (%d, %d)", last, p.Done, p.Total)
			}
			last = [2]int{p.Done, p.Total}
		}
	})
	opts := obj(t, `{"name": "tiny.nliw.sz"}`)
	if err := opts.Set("onProgress", onProgress); err != nil {
		t.Fatal(err)
	}
	b := tinyWeights(t)
	// An ArrayBuffer is accepted as well as a Uint8Array.
	buf, _ := jsBytes(t, b).Get("buffer")
	v, err := call(t, nli, "loadWeights", buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	var info modelInfo
	decode(t, v, &info)
	if info.Name != "tiny.nliw.sz" || info.Config.Name != "tiny" || info.Bytes != len(b) || len(info.SHA256) != 64 || info.Params == 0 {
		t.Errorf("info = %+v", info)
	}
	if strings.Join(phases, ",") != "decode,build" || last[0] != last[1] || last[1] == 0 {
		t.Errorf("phases %v, last decode progress %v; want decode (to total) then build", phases, last)
	}
}

func TestLoadWeightsRejects(t *testing.T) {
	nli := api(t)
	good := tinyWeights(t)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x55
	cases := []struct {
		name string
		arg  any
		want string
	}{
		{"flipped byte", jsBytes(t, flipped), "weights"},
		{"truncated", jsBytes(t, good[:len(good)/3]), "weights"},
		{"empty", jsBytes(t, nil), "weights"},
		{"not bytes", "hello", "Uint8Array"},
		{"missing", safejs.Undefined(), "Uint8Array"},
	}
	for _, c := range cases {
		_, err := call(t, nli, "loadWeights", c.arg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "nli.loadWeights: ") {
			t.Errorf("%s: err = %v, want a rejection mentioning %q", c.name, err, c.want)
		}
	}
	// A failed load leaves no model behind.
	if _, err := call(t, nli, "induce", taskJSON(t, oneTask(t, 1))); err == nil {
		t.Error("induce after failed loads resolved")
	}
}

func TestInduceAndSearch(t *testing.T) {
	nli := api(t)
	loadTiny(t, nli)
	task := oneTask(t, 3)
	v, err := call(t, nli, "induce", taskJSON(t, task))
	if err != nil {
		t.Fatal(err)
	}
	var r resultJSON
	decode(t, v, &r)
	if r.Method != "induce" || len(r.Program) != model.Tiny().T || len(r.Prediction) != model.SeqLen || r.Pairs != 4 || r.Correct == nil {
		t.Errorf("induce = %+v", r)
	}

	// search with a per-step callback; the task object (not JSON text) is accepted too.
	var steps []stepJSON
	onStep := jsFunc(t, func(a []safejs.Value) {
		var s stepJSON
		decode(t, arg(a, 0), &s)
		steps = append(steps, s)
	})
	opts := obj(t, `{"starts": 3, "steps": 4, "seed": 9}`)
	opts.Set("onStep", onStep)
	v, err = call(t, nli, "search", obj(t, taskJSON(t, task)), opts)
	if err != nil {
		t.Fatal(err)
	}
	decode(t, v, &r)
	if r.Method != "search" || r.Starts != 3 || r.Seed != 9 || r.Aborted || len(r.Prediction) != model.SeqLen {
		t.Errorf("search = %+v", r)
	}
	if r.Steps != len(steps) || len(steps) == 0 || len(steps) > 4 {
		t.Fatalf("search ran %d steps and called onStep %d times", r.Steps, len(steps))
	}
	for i, s := range steps {
		if s.Step != i+1 || s.Steps != 4 || s.Loss == nil || len(s.Program) != model.Tiny().T || len(s.Prediction) != model.SeqLen {
			t.Errorf("step %d = %+v (checkEvery defaults to 1, so every step has a program)", i, s)
		}
	}

	// Same seed, same answer.
	v2, err := call(t, nli, "search", taskJSON(t, task), obj(t, `{"starts": 3, "steps": 4, "seed": 9}`))
	if err != nil {
		t.Fatal(err)
	}
	var r2 resultJSON
	decode(t, v2, &r2)
	if !equalInts(r.Program, r2.Program) {
		t.Errorf("search not deterministic: %v then %v", r.Program, r2.Program)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSearchAbort(t *testing.T) {
	nli := api(t)
	loadTiny(t, nli)
	signal := obj(t, `{"aborted": false}`)
	n := 0
	onStep := jsFunc(t, func([]safejs.Value) {
		n++
		if n == 2 {
			signal.Set("aborted", true)
		}
	})
	opts := obj(t, `{"starts": 2, "steps": 50}`)
	opts.Set("onStep", onStep)
	opts.Set("signal", signal)
	v, err := call(t, nli, "search", taskJSON(t, oneTask(t, 4)), opts)
	if err != nil {
		t.Fatal(err)
	}
	var r resultJSON
	decode(t, v, &r)
	if !r.Aborted || r.Steps != 2 || n != 2 || len(r.Prediction) != model.SeqLen {
		t.Errorf("aborted after step 2: result %+v, onStep called %d times", r, n)
	}
}

// TestSearchYields checks that a search returns to the event loop between
// steps: a JavaScript timer set before the search fires while it runs.
func TestSearchYields(t *testing.T) {
	nli := api(t)
	loadTiny(t, nli)
	fired, stepsAtFire, steps := false, 0, 0
	timer := jsFunc(t, func([]safejs.Value) { fired, stepsAtFire = true, steps })
	onStep := jsFunc(t, func([]safejs.Value) { steps++ })
	safejs.Global().Call("setTimeout", timer, 0)
	opts := obj(t, `{"starts": 2, "steps": 6, "checkEvery": 100}`)
	opts.Set("onStep", onStep)
	if _, err := call(t, nli, "search", taskJSON(t, oneTask(t, 5)), opts); err != nil {
		t.Fatal(err)
	}
	if !fired || stepsAtFire >= steps {
		t.Errorf("timer fired %v after %d of %d steps; want it to fire during the search", fired, stepsAtFire, steps)
	}
}

func TestBadInputRejects(t *testing.T) {
	nli := api(t)
	loadTiny(t, nli)
	good := oneTask(t, 1)
	short := good
	short.Train = append([]model.Pair{{Input: good.Train[0].Input[:19], Output: good.Train[0].Output}}, good.Train[1:]...)
	big := good
	big.Test = []model.Pair{{Input: append(append([]int{}, good.Test[0].Input[:19]...), 12)}}
	cases := []struct {
		fn   string
		args []any
		want string
	}{
		{"induce", []any{"{not json"}, "invalid JSON"},
		{"induce", []any{taskJSON(t, short)}, "train[0].input: length 19, want 20"},
		{"induce", []any{taskJSON(t, big)}, "test[0].input: value 12 outside 0..9 (position 19)"},
		{"induce", []any{`{"train": [], "test": []}`}, "train: empty"},
		{"induce", []any{}, "task: missing"},
		{"search", []any{taskJSON(t, good), `{"starts": -1}`}, "starts = -1"},
		{"search", []any{taskJSON(t, good), `{"stepz": 3}`}, "unknown field"},
		{"tasks", []any{`{"split": "shift-x"}`}, `unknown split "shift-x"`},
		{"run", []any{`[[1, 2]]`, `[[0]]`}, "programs[0]: 2 symbols"},
		{"run", []any{`[[0,0,0,0,0,0,0,0,0,0,0,99]]`, `[[0]]`}, "symbol 99 outside"},
		{"language", []any{`{"inputs": [[1, 2, 3]]}`}, "inputs[0]: length 3"},
		{"panicForTest", nil, "internal error: runtime error: index out of range"},
	}
	for _, c := range cases {
		_, err := call(t, nli, c.fn, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s(%v): err = %v, want a rejection containing %q", c.fn, c.args, err, c.want)
		}
	}
	// The service still works after a panic.
	if _, err := call(t, nli, "induce", taskJSON(t, good)); err != nil {
		t.Errorf("induce after the panic: %v", err)
	}
}

func TestTasksRunLanguage(t *testing.T) {
	nli := api(t)
	loadTiny(t, nli)
	v, err := call(t, nli, "tasks", `{"split": "shift-l", "part": "ood", "n": 3, "seed": 1234}`)
	if err != nil {
		t.Fatal(err)
	}
	var tasks []model.Task
	decode(t, v, &tasks)
	want := model.GenTasks(model.SplitShiftL, model.PartOOD, 3, 4, 1234)
	if len(tasks) != 3 || tasks[2].ID != want[2].ID || !equalInts(tasks[2].Test[0].Output, want[2].Test[0].Output) {
		t.Fatalf("tasks = %+v", tasks)
	}
	in, _ := json.Marshal([][]int{tasks[0].Test[0].Input})
	T := model.Tiny().T
	v, err = call(t, nli, "run", `[`+strings.Repeat("0,", T-1)+`0]`, string(in))
	if err == nil {
		t.Fatal("run with a flat program list resolved")
	}
	progs, _ := json.Marshal([][]int{make([]int, T)})
	v, err = call(t, nli, "run", string(progs), string(in))
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]int
	decode(t, v, &outs)
	if len(outs) != 1 || len(outs[0]) != model.SeqLen {
		t.Fatalf("run = %v", outs)
	}
	v, err = call(t, nli, "language", `{"inputs": `+string(in)+`, "symbols": [1, 2]}`)
	if err != nil {
		t.Fatal(err)
	}
	var lang []symbolJSON
	decode(t, v, &lang)
	if len(lang) != 2 || lang[1].Symbol != 2 || len(lang[1].Outputs) != 1 {
		t.Errorf("language = %+v", lang)
	}
}

func TestActsAs(t *testing.T) {
	x := toI32([][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}})
	y := make([]int32, model.SeqLen)
	model.Program{{Op: "rotl", K: 7}}.Apply(y, x[0])
	if got := actsAs(x, [][]int32{y}); got != "rotl 7" {
		t.Errorf("actsAs(rotl 7) = %q", got)
	}
	if got := actsAs(x, x); got != "identity" {
		t.Errorf("actsAs(identity) = %q", got)
	}
	y[0] = (y[0] + 3) % 10
	if got := actsAs(x, [][]int32{y}); got != "" {
		t.Errorf("actsAs(noise) = %q, want \"\"", got)
	}
}

// searchRight searches task with the loaded model (8 starts × 40 steps,
// seed 0) and checks that the answer is right and the program acts as the
// task's hidden program.
func searchRight(t *testing.T, nli safejs.Value, task model.Task) {
	t.Helper()
	r := searchSmall(t, nli, task)
	if r.Correct == nil || !*r.Correct || r.SpecPairs != 4 || r.Acts != task.Program {
		t.Errorf("search = %+v, want the right answer to %s", r, task.Program)
	}
}

// searchSmall runs the module's search on task with 8 starts × 40 steps
// (seed 0) and logs what it found.
func searchSmall(t *testing.T, nli safejs.Value, task model.Task) resultJSON {
	t.Helper()
	v, err := call(t, nli, "search", taskJSON(t, task), obj(t, `{"starts": 8, "steps": 40, "seed": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	var r resultJSON
	decode(t, v, &r)
	t.Logf("%s (%s): program %v acts as %q, solved at step %d, %.0f ms", task.ID, task.Program, r.Program, r.Acts, r.SolvedAt, r.Ms)
	return r
}

// TestShippedShiftL answers a known shift-l OOD task with the shipped
// weights (skipped when they are absent): the task is shift-l/ood/000004
// of `native gen --split shift-l --part ood --seed 1234`, a rotl 10 that 8
// starts solve in 12 steps.
func TestShippedShiftL(t *testing.T) {
	b, err := os.ReadFile("../weights/shift-l.nliw.sz")
	if err != nil {
		t.Skipf("no shipped weights: %v", err)
	}
	nli := api(t)
	if _, err := call(t, nli, "loadWeights", jsBytes(t, b), obj(t, `{"name": "shift-l"}`)); err != nil {
		t.Fatal(err)
	}
	task := model.GenTasks(model.SplitShiftL, model.PartOOD, 5, 4, 1234)[4]
	searchRight(t, nli, task)
	in, _ := json.Marshal([][]int{task.Test[0].Input, task.Train[0].Input})
	v, err := call(t, nli, "language", `{"inputs": `+string(in)+`, "symbols": [52]}`)
	if err != nil {
		t.Fatal(err)
	}
	var lang []symbolJSON
	decode(t, v, &lang)
	if len(lang) != 1 || lang[0].Acts != "rotl 1" {
		t.Errorf("language(52) = %+v, want rotl 1", lang)
	}
}

// TestShippedShiftP answers shift-p OOD tasks with the shipped
// symbol-selected-interpreter weights (skipped when they are absent): the
// first three tasks of `native gen --split shift-p --part ood --seed 1234`,
// held-out shifts the model writes from its rotl-4 symbol 7 and rotr-1
// symbol 15 (docs/LANGUAGES.md).
func TestShippedShiftP(t *testing.T) {
	b, err := os.ReadFile("../weights/shift-p-go-symmap-s1.nliw.sz")
	if err != nil {
		t.Skipf("no shipped weights: %v", err)
	}
	nli := api(t)
	if _, err := call(t, nli, "loadWeights", jsBytes(t, b), obj(t, `{"name": "shift-p-go-symmap-s1"}`)); err != nil {
		t.Fatal(err)
	}
	for _, task := range model.GenTasks(model.SplitShiftP, model.PartOOD, 3, 4, 1234) {
		searchRight(t, nli, task)
	}
	v, err := call(t, nli, "language", `{"inputs": [[0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]], "symbols": [7, 1]}`)
	if err != nil {
		t.Fatal(err)
	}
	var lang []symbolJSON
	decode(t, v, &lang)
	if len(lang) != 2 || lang[0].Acts != "rotl 4" || lang[1].Acts != "rotl 8" {
		t.Errorf("language(7, 1) = %+v, want rotl 4 and rotl 8", lang)
	}
}

// BenchmarkSearch is the search of serve's browser benchmark (8 starts × 20
// steps, one check at the end) under node, calling the model directly: it
// compares wasm builds (flags, GOWASM) without a browser.
func BenchmarkSearch(b *testing.B) {
	raw, err := os.ReadFile("../weights/shift-l.nliw.sz")
	if err != nil {
		b.Skipf("no shipped weights: %v", err)
	}
	wf, err := model.DecodeWeightsBytes(raw, "shift-l", nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.LoadModel(model.NewCPU(1), wf, "shift-l")
	if err != nil {
		b.Fatal(err)
	}
	s := model.NewSearcher(m)
	tb, err := model.NewTaskBatch(model.GenTasks(model.SplitShiftL, model.PartOOD, 1, 4, 1234))
	if err != nil {
		b.Fatal(err)
	}
	sc := m.Cfg.Search
	sc.Starts, sc.Steps, sc.CheckEvery = 8, 20, 20
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		s.Gradient(tb, sc, 0, nil)
	}
	b.ReportMetric(float64(b.N*sc.Starts*sc.Steps)/time.Since(t0).Seconds(), "start-steps/s")
}

// TestShippedCompI answers comp-i OOD tasks — compositions of two primitives
// never seen together in training — with the shipped comp-i weights (skipped
// when they are absent): tasks 4 and 5 of `native gen --split comp-i --part
// ood --seed 1234` (addpos; rev and rotr1; inc), which 8 starts × 40 steps
// solve under node in 16 and 9 steps. The found program's description may
// name an equal function (inc; rotr1 for rotr1; inc): it is compared by
// running both on the task's inputs.
func TestShippedCompI(t *testing.T) {
	b, err := os.ReadFile("../weights/comp-i-go-symmap-s5.nliw.sz")
	if err != nil {
		t.Skipf("no shipped weights: %v", err)
	}
	nli := api(t)
	if _, err := call(t, nli, "loadWeights", jsBytes(t, b), obj(t, `{"name": "comp-i-go-symmap-s5"}`)); err != nil {
		t.Fatal(err)
	}
	for _, task := range model.GenTasks(model.SplitCompI, model.PartOOD, 6, 4, 1234)[4:] {
		r := searchSmall(t, nli, task)
		if r.Correct == nil || !*r.Correct || r.SpecPairs != 4 {
			t.Errorf("search = %+v, want the right answer to %s", r, task.Program)
			continue
		}
		want, err1 := model.ParseProgram(task.Program)
		got, err2 := model.ParseProgram(r.Acts)
		if err1 != nil || err2 != nil {
			t.Errorf("%s: acts %q, hidden %q: %v %v", task.ID, r.Acts, task.Program, err2, err1)
			continue
		}
		for _, p := range append(task.Train, task.Test...) {
			x := make([]int32, len(p.Input))
			for i, v := range p.Input {
				x[i] = int32(v)
			}
			a, b := make([]int32, len(x)), make([]int32, len(x))
			want.Apply(a, x)
			got.Apply(b, x)
			if !slices.Equal(a, b) {
				t.Errorf("%s: the program acts as %q, which differs from %q on %v", task.ID, r.Acts, task.Program, p.Input)
			}
		}
	}
}
