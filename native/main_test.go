// End-to-end tests of the command line, run in-process: gen, train (with
// interruption and --resume), eval and solve on the weights train wrote,
// and bad input that must end in a one-line error, never a panic.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nli-go/nli/model"
)

// runCLI runs the command line and returns exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("native %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

func TestCLIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	tasks := filepath.Join(dir, "tasks.jsonl")
	mustRun(t, "gen", "--split", "shift-l", "--part", "ood", "--n", "3", "--seed", "7", "--out", tasks)

	// Train 6 steps in one go, and 3 + stop + resume 3: same metrics, bit for bit.
	a, c := filepath.Join(dir, "a"), filepath.Join(dir, "c")
	common := []string{"train", "--split", "shift-l", "--config", "tiny", "--steps", "6", "--seed", "1",
		"--batch", "4", "--log-every", "1", "--save-every", "2", "--quiet"}
	mustRun(t, append(common, "--out", a)...)
	mustRun(t, append(common, "--out", c, "--stop-after", "3")...)
	if code, _, errs := runCLI(t, append(common, "--out", c)...); code == 0 || !strings.Contains(errs, "--resume") {
		t.Fatalf("training into an existing run without --resume: exit %d, %q", code, errs)
	}
	mustRun(t, append(common, "--out", c, "--resume")...)
	ma, _ := os.ReadFile(filepath.Join(a, metricsFile))
	mc, _ := os.ReadFile(filepath.Join(c, metricsFile))
	if got, want := lossesOf(t, mc), lossesOf(t, ma); !slices.Equal(got, want) {
		t.Fatalf("metrics after resume differ:\n%v\n%v", got, want)
	}
	if code, _, errs := runCLI(t, append(append([]string{}, common...), "--out", c, "--resume", "--steps", "7")...); code == 0 || !strings.Contains(errs, "6 steps") {
		t.Fatalf("resume with another --steps: exit %d, %q", code, errs)
	}

	w := filepath.Join(a, weightsFile)
	out := mustRun(t, "eval", "--weights", w, "--tasks", "2", "--starts", "2", "--search-steps", "2", "--check-every", "1", "--json")
	var rep map[string]map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	if string(raw["check_every"]) != "1" || string(raw["tf32"]) != "false" {
		t.Errorf("eval --json: check_every %s, tf32 %s; want 1 and false (no TF32 on the CPU)", raw["check_every"], raw["tf32"])
	}
	// --set changes search settings of trained weights, and nothing else.
	perTask := filepath.Join(t.TempDir(), "per-task.jsonl")
	out2 := mustRun(t, "eval", "--weights", w, "--tasks", "1", "--starts", "2", "--search-steps", "2", "--parts", "ood",
		"--set", "search.sigma=0.8", "--set", "search.lr=0.2", "--json", "--per-task", perTask)
	// --per-task: one line per task and method, consistent with the summary.
	ptb, err := os.ReadFile(perTask)
	if err != nil {
		t.Fatal(err)
	}
	var rep2 struct {
		OOD setReport `json:"ood"`
	}
	if err := json.Unmarshal([]byte(out2), &rep2); err != nil {
		t.Fatal(err)
	}
	ptl := strings.Split(strings.TrimSpace(string(ptb)), "\n")
	if len(ptl) != 3 {
		t.Fatalf("--per-task: %d lines for 1 task and 3 methods:\n%s", len(ptl), ptb)
	}
	for i, l := range ptl {
		var pl perTaskLine
		if err := json.Unmarshal([]byte(l), &pl); err != nil {
			t.Fatal(err)
		}
		acc := map[string]float64{"inductor": rep2.OOD.Inductor, "prior": rep2.OOD.Prior, "gradient": rep2.OOD.Gradient}[pl.Method]
		if pl.Part != "ood" || pl.Task != 0 || pl.Hidden == "" || len(pl.Program) != 12 || (acc == 1) != pl.Correct ||
			pl.Method != []string{"inductor", "prior", "gradient"}[i] {
			t.Errorf("--per-task line %d: %+v (summary accuracy %v)", i, pl, acc)
		}
	}
	var raw2 struct {
		Search model.SearchConfig `json:"search"`
	}
	if err := json.Unmarshal([]byte(out2), &raw2); err != nil || raw2.Search.Sigma != 0.8 || raw2.Search.LR != 0.2 || raw2.Search.Starts != 2 {
		t.Errorf("eval --set search.sigma=0.8 --set search.lr=0.2 --starts 2: search %+v (%v)", raw2.Search, err)
	}
	// --time-limit: past the limit no chunk starts; the report says so and
	// counts the tasks done (0 here), while a run without it answers all.
	out3 := mustRun(t, "eval", "--weights", w, "--tasks", "2", "--starts", "2", "--search-steps", "2", "--parts", "ood",
		"--time-limit", "1e-9", "--json")
	var rep3 struct {
		Stopped string    `json:"stopped"`
		OOD     setReport `json:"ood"`
	}
	if err := json.Unmarshal([]byte(out3), &rep3); err != nil {
		t.Fatal(err)
	}
	if rep3.Stopped == "" || rep3.OOD.Detail["gradient"].TasksDone != 0 || rep3.OOD.Detail["inductor"].TasksDone != 0 {
		t.Errorf("eval --time-limit 1e-9: %+v", rep3)
	}
	if rep2.OOD.Detail["gradient"].TasksDone != 1 || strings.Contains(out2, `"stopped"`) {
		t.Errorf("eval without --time-limit: gradient tasks_done %d, want 1 and no stop", rep2.OOD.Detail["gradient"].TasksDone)
	}
	if code, _, errs := runCLI(t, "eval", "--weights", w, "--time-limit", "-1"); code != 2 || !strings.Contains(errs, "--time-limit") {
		t.Errorf("eval --time-limit -1: exit %d, %q", code, errs)
	}
	for _, c := range []struct{ set, want string }{
		{"train.lr=1", "only search.*"}, {"K=8", "only search.*"}, {"search.sigma=-1", "search.sigma"}, {"search.nope=1", "nope"},
	} {
		if code, _, errs := runCLI(t, "eval", "--weights", w, "--tasks", "1", "--set", c.set); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("eval --set %s: exit %d, stderr %q; want 2 and %q", c.set, code, errs, c.want)
		}
	}
	rep = map[string]map[string]any{}
	for _, k := range []string{"id", "ood"} {
		var m map[string]any
		if err := json.Unmarshal(raw[k], &m); err != nil {
			t.Fatalf("eval --json: key %q: %v", k, err)
		}
		for _, f := range []string{"inductor", "prior", "gradient"} {
			v, ok := m[f].(float64)
			if !ok || v < 0 || v > 1 {
				t.Errorf("eval --json: %s.%s = %v", k, f, m[f])
			}
		}
		rep[k] = m
	}
	out = mustRun(t, "solve", "--weights", w, "--tasks", tasks, "--starts", "2", "--search-steps", "2", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("solve printed %d lines for 3 tasks:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var s solved
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Pred) != 20 || len(s.Program) != 12 || s.Correct == nil {
			t.Errorf("solve record incomplete: %s", l)
		}
	}
	mustRun(t, "solve", "--weights", w, "--tasks", tasks, "--method", "inductor")
}

func lossesOf(t *testing.T, b []byte) []float64 {
	var out []float64
	for _, r := range jsonLines[struct {
		Step int     `json:"step"`
		Loss float64 `json:"loss"`
	}](t, b) {
		out = append(out, float64(r.Step), r.Loss)
	}
	return out
}

// jsonLines decodes each line of a JSON-lines file (a metrics file) as a T.
func jsonLines[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r T
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"id":"a","train":[{"input":[1,2],"output":[1,2]}],"test":[{"input":[1]}]}`+"\n"), 0o644)
	corrupt := filepath.Join(dir, "corrupt.nliw.sz")
	os.WriteFile(corrupt, []byte("not a weights file"), 0o644)
	good := filepath.Join(dir, "good.jsonl")
	mustRun(t, "gen", "--split", "shift-l", "--n", "1", "--out", good)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"train", "--bogus"}, "flag provided but not defined"},
		{[]string{"train", "--split", "nope", "--steps", "1", "--out", dir}, "unknown split"},
		{[]string{"train", "--split", "shift-l", "--steps", "0", "--out", dir}, "--steps"},
		{[]string{"train", "--split", "shift-l", "--steps", "1", "--out", filepath.Join(dir, "x"), "--config", "huge"}, "not a preset"},
		{[]string{"train", "--split", "shift-l", "--steps", "1", "--out", filepath.Join(dir, "y"), "--batch", "-3"}, "train.batch"},
		{[]string{"gen", "--split", "shift-l", "--part", "test"}, "part"},
		{[]string{"solve", "--weights", corrupt, "--tasks", good}, "corrupt.nliw.sz"},
		{[]string{"solve", "--weights", corrupt, "--tasks", bad}, "bad.jsonl:1"},
		{[]string{"eval", "--weights", filepath.Join(dir, "missing.nliw.sz")}, "missing.nliw.sz"},
		{[]string{"train", "--split", "shift-l", "--steps", "1", "--out", filepath.Join(dir, "z"), "--device", "tpu"}, "--device"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, c.args...)
		if code != 2 {
			t.Errorf("native %v: exit %d, want 2 (stderr %q)", c.args, code, errs)
		}
		if !strings.Contains(errs, c.want) {
			t.Errorf("native %v: stderr %q does not mention %q", c.args, errs, c.want)
		}
	}
}

// TestCLILanguage describes the shipped shift-l model's language: the
// inductor writes rotl k as k copies of one symbol that rotates by one.
func TestCLILanguage(t *testing.T) {
	out := mustRun(t, "language", "--weights", "../weights/shift-l.nliw.sz", "--tasks", "60", "--probes", "8", "--json", "--workers", "1")
	var lang struct {
		Symbols []struct {
			Symbol   int
			Effect   string
			Match    float64
			PosMatch float64 `json:"pos_match"`
		}
		Programs []struct {
			Program string
			Symbols []int
		}
		OOD []struct {
			Program string
			Symbols []int
			Exact   float64
		}
		Encoder struct {
			Accuracy float64
			Programs []struct {
				Program      string
				Right, Tasks int
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &lang); err != nil {
		t.Fatalf("language --json: %v\n%s", err, out)
	}
	// Its encoder tells the five shifts apart (each written differently):
	// the probe scores the second half of the 60 tasks (1.00 measured; with
	// 20 tasks, two per shift to fit a centroid, it scored 0.70).
	scored := 0
	for _, p := range lang.Encoder.Programs {
		scored += p.Tasks
		if p.Right > p.Tasks {
			t.Errorf("encoder probe: %s right %d of %d", p.Program, p.Right, p.Tasks)
		}
	}
	if len(lang.Encoder.Programs) != 5 || scored != 30 || lang.Encoder.Accuracy < 0.9 {
		t.Errorf("encoder probe: %d programs, %d tasks scored, accuracy %.2f; want 5, 30, ≥ 0.9", len(lang.Encoder.Programs), scored, lang.Encoder.Accuracy)
	}
	rot := -1
	for _, s := range lang.Symbols {
		if s.Effect == "rotl 1" && s.Match == 1 {
			rot = s.Symbol
			if s.PosMatch != 1 { // every output exact: every position right
				t.Errorf("symbol %d: exact on every probe but pos_match %g", s.Symbol, s.PosMatch)
			}
		}
		if !(s.PosMatch >= s.Match && s.PosMatch <= 1) {
			t.Errorf("symbol %d: pos_match %g outside [match %g, 1]", s.Symbol, s.PosMatch, s.Match)
		}
	}
	if rot < 0 {
		t.Fatalf("no symbol acts as rotl 1: %s", out)
	}
	for _, p := range lang.Programs {
		var k int
		if _, err := fmt.Sscanf(p.Program, "rotl %d", &k); err != nil {
			t.Fatalf("program %q", p.Program)
		}
		if len(p.Symbols) != k {
			t.Errorf("%s written as %v, want %d copies of symbol %d", p.Program, p.Symbols, k, rot)
		}
	}
	// The OOD shifts 6..10 compose as k copies of the rotate symbol (the shortest
	// composition), and this model runs them right on most probe inputs.
	if len(lang.OOD) != 5 {
		t.Fatalf("%d OOD compositions, want rotl 6..10: %s", len(lang.OOD), out)
	}
	for i, c := range lang.OOD {
		k := 6 + i
		if c.Program != fmt.Sprintf("rotl %d", k) || len(c.Symbols) != k || slices.ContainsFunc(c.Symbols, func(v int) bool { return v != rot }) {
			t.Errorf("OOD %s composed as %v, want %d copies of symbol %d", c.Program, c.Symbols, k, rot)
		}
		if c.Exact < 0.75 {
			t.Errorf("OOD %s as %v: interpreter exact on %.2f of the probes, want most", c.Program, c.Symbols, c.Exact)
		}
	}
}

// TestCLILanguageNoComposition: a shift-l model (one rotate-by-one symbol)
// probed with comp-i cannot write comp-i's OOD programs (each needs a value
// map or a reflection), so every composition is reported as missing.
func TestCLILanguageNoComposition(t *testing.T) {
	out := mustRun(t, "language", "--weights", "../weights/shift-l.nliw.sz", "--split", "comp-i", "--tasks", "8", "--probes", "8", "--json", "--workers", "1")
	var lang struct {
		OOD []struct {
			Program string
			Symbols []int
		}
	}
	if err := json.Unmarshal([]byte(out), &lang); err != nil {
		t.Fatalf("language --json: %v\n%s", err, out)
	}
	if len(lang.OOD) < 30 {
		t.Fatalf("%d comp-i OOD programs listed: %s", len(lang.OOD), out)
	}
	for _, c := range lang.OOD {
		if c.Symbols != nil {
			t.Errorf("comp-i OOD %s composed as %v from a language of rotations", c.Program, c.Symbols)
		}
	}
}

// TestCLIBench runs the benchmark command on the CPU with a tiny config.
func TestCLIBench(t *testing.T) {
	out := mustRun(t, "bench", "--config", "tiny", "--train-steps", "1", "--search-steps", "1", "--profile", "--json", "--workers", "1")
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	if !(rep.TrainStepsPerS > 0 && rep.StartStepsPerS > 0) || len(rep.TrainProfile) == 0 || len(rep.SearchProfile) == 0 ||
		len(rep.TrainGemms) == 0 || len(rep.SearchGemms) == 0 || !(rep.SearchGemms[0].TFLOPS > 0) || rep.SearchGemms[0].Calls == 0 {
		t.Errorf("bench report incomplete: %+v", rep)
	}
	if rep.CheckEvery != model.Tiny().Search.CheckEvery || rep.SearchTF32 {
		t.Errorf("bench report: check every %d, TF32 %v; want the config's %d and false (CPU)", rep.CheckEvery, rep.SearchTF32, model.Tiny().Search.CheckEvery)
	}
	out = mustRun(t, "bench", "--config", "tiny", "--train-steps", "0", "--search-steps", "2", "--check-every", "1", "--tf32=false", "--json", "--workers", "1")
	rep = benchReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.CheckEvery != 1 {
		t.Errorf("bench --check-every 1: %v, report %+v", err, rep)
	}
}

// TestCLIRestart: with train.restart_at the run restarts (a metrics line
// with the check, the following lines with their attempt), and stopping
// after the restart and resuming gives the same metrics as one run.
func TestCLIRestart(t *testing.T) {
	dir := t.TempDir()
	a, c := filepath.Join(dir, "a"), filepath.Join(dir, "c")
	common := []string{"train", "--split", "shift-l", "--config", "tiny", "--steps", "5", "--seed", "2",
		"--batch", "4", "--log-every", "1", "--save-every", "2", "--quiet",
		"--set", "train.restart_at=3", "--set", "train.restart_nll=1e-6", "--set", "train.restarts=1"}
	out := mustRun(t, append(common, "--out", a)...)
	if !strings.Contains(out, "after 1 restarts") || !strings.Contains(out, "8 steps trained in all") {
		t.Errorf("train output does not report the restart:\n%s", out)
	}
	mustRun(t, append(common, "--out", c, "--stop-after", "4")...) // attempt 1, step 1; checkpoint there
	mustRun(t, append(common[:len(common)-6], "--out", c, "--resume")...)
	ma, _ := os.ReadFile(filepath.Join(a, metricsFile))
	mc, _ := os.ReadFile(filepath.Join(c, metricsFile))
	if got, want := lossesOf(t, mc), lossesOf(t, ma); !slices.Equal(got, want) {
		t.Fatalf("metrics after resume differ:\n%v\n%v", got, want)
	}
	var attempts []int
	restarts := 0
	for _, r := range jsonLines[struct {
		Attempt int                 `json:"attempt"`
		Restart *model.RestartEvent `json:"restart"`
	}](t, ma) {
		attempts = append(attempts, r.Attempt)
		if r.Restart != nil {
			restarts++
			if !r.Restart.Restarted || r.Restart.Attempt != 1 || r.Attempt != 0 {
				t.Errorf("restart line %+v (event %+v)", r, *r.Restart)
			}
		}
	}
	if want := []int{0, 0, 0, 1, 1, 1, 1, 1}; restarts != 1 || !slices.Equal(attempts, want) {
		t.Errorf("attempts per metrics line %v (want %v), %d restart lines", attempts, want, restarts)
	}
}

// TestCLIPretrain: train.pretrain's steps are logged as such, without an NLL.
func TestCLIPretrain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	mustRun(t, "train", "--split", "comp-i", "--config", "tiny", "--steps", "4", "--batch", "4", "--log-every", "1",
		"--quiet", "--set", "train.contrast=0.5", "--set", "train.pretrain=2", "--out", dir)
	mb, _ := os.ReadFile(filepath.Join(dir, metricsFile))
	var flags []bool
	for _, r := range jsonLines[map[string]any](t, mb) {
		_, hasNLL := r["nll"]
		pre := r["pretrain"] == true
		if pre == hasNLL || r["ctr"] == nil {
			t.Errorf("metrics line %v: pretrain %v with nll %v, ctr %v", r, pre, hasNLL, r["ctr"])
		}
		flags = append(flags, pre)
	}
	if want := []bool{true, true, false, false}; !slices.Equal(flags, want) {
		t.Errorf("pretrain flags per line %v, want %v", flags, want)
	}
}

// TestCLISpikeSkip: with train.spike_skip every skipped step has its metrics
// line (skipped, the running mean, the skips so far, counting up by one).
func TestCLISpikeSkip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	steps := model.SpikeWarm + 30
	mustRun(t, "train", "--split", "shift-l", "--config", "tiny", "--steps", strconv.Itoa(steps), "--batch", "4",
		"--log-every", "1000", "--quiet", "--set", "train.spike_skip=1.01", "--out", dir)
	mb, _ := os.ReadFile(filepath.Join(dir, metricsFile))
	skipped := 0
	for _, r := range jsonLines[struct {
		Step     int     `json:"step"`
		Skipped  bool    `json:"skipped"`
		GradMean float64 `json:"grad_mean"`
		Skips    *int    `json:"skips"`
	}](t, mb) {
		if r.Skips == nil || (r.Step > 1 && !(r.GradMean > 0)) {
			t.Fatalf("metrics line of step %d without skips or grad_mean: %+v", r.Step, r)
		}
		if r.Skipped {
			skipped++
			if *r.Skips != skipped || r.Step <= model.SpikeWarm {
				t.Errorf("skipped line of step %d: skips %d, want %d (and a step after the warm-up)", r.Step, *r.Skips, skipped)
			}
		}
	}
	if skipped == 0 {
		t.Errorf("spike_skip 1.01: no step of %d skipped", steps)
	}
}
