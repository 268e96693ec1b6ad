// Tests of native select: the score reads only the final attempt's log-step
// lines of the last --window steps, the lowest score is picked and copied,
// and bad run folders are rejected with the folder and the reason.

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nli-go/nli/model"
)

// fakeRun makes a run folder from a real tiny run's weights and config,
// with the weights' provenance at steps (seed seed, split split) and the
// given metrics lines.
func fakeRun(t *testing.T, src, dir, split string, steps int, seed uint64, lines []map[string]any) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wf, err := model.ReadWeightsFile(filepath.Join(src, weightsFile))
	if err != nil {
		t.Fatal(err)
	}
	wf.Provenance.Split, wf.Provenance.Steps, wf.Provenance.Seed = split, steps, seed
	if err := model.WriteWeightsFile(filepath.Join(dir, weightsFile), wf, model.DTypeF32); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(src, configFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, configFile), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		j, _ := json.Marshal(l)
		b.Write(append(j, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, metricsFile), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logLines returns metrics lines every 50 steps from 50 to last, the NLL
// of step s being nll(s), with attempt a (0: no attempt field).
func logLines(last, a int, nll func(int) float64) []map[string]any {
	var out []map[string]any
	for s := 50; s <= last; s += 50 {
		l := map[string]any{"step": s, "nll": nll(s)}
		if a > 0 {
			l["attempt"] = a
		}
		out = append(out, l)
	}
	return out
}

// TestCLISelect: three candidates built so that only the documented rule
// picks B: A's window mean is 2; B's is 1, with 100 before the window and a
// split record (not a log step) of NLL 50 inside it; C's final attempt
// (attempt 1) averages 1.5 and its first attempt, logged at the same steps,
// 0. Counting steps before the window, off-step lines or an earlier attempt
// would each pick another run. The picked weights are copied byte for byte.
func TestCLISelect(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	mustRun(t, "train", "--split", "shift-l", "--config", "tiny", "--steps", "2", "--batch", "4", "--log-every", "50", "--quiet", "--out", src)
	if got := logEveryOf(t, src); got != 50 {
		t.Fatalf("tiny's log_every is %d; this test's lines assume 50", got)
	}
	const last = 1000
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	fakeRun(t, src, a, "shift-l", last, 1, logLines(last, 0, func(int) float64 { return 2 }))
	bl := logLines(last, 0, func(s int) float64 {
		if s <= last-500 {
			return 100
		}
		return 1
	})
	bl = append(bl, map[string]any{"step": 801, "nll": 50.0, "split": map[string]any{"step": 800}})
	fakeRun(t, src, b, "shift-l", last, 2, bl)
	cl := append(logLines(last, 0, func(int) float64 { return 0 }), map[string]any{"step": 4000, "nll": 0.0, "restart": map[string]any{"restarted": true}})
	cl = append(cl, logLines(last, 1, func(int) float64 { return 1.5 })...)
	fakeRun(t, src, c, "shift-l", last, 3, cl)

	out := filepath.Join(dir, "best.nliw.sz")
	var rep struct {
		Picked     string      `json:"picked"`
		Candidates []candidate `json:"candidates"`
	}
	js := mustRun(t, "select", "--json", "--out", out, a, b, c)
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("select --json: %v\n%s", err, js)
	}
	if rep.Picked != b {
		t.Errorf("picked %s, want %s; candidates %+v", rep.Picked, b, rep.Candidates)
	}
	want := map[string]struct {
		nll     float64
		lines   int
		attempt int
	}{a: {2, 10, 0}, b: {1, 10, 0}, c: {1.5, 10, 1}}
	for _, cd := range rep.Candidates {
		w := want[cd.Dir]
		if cd.NLL != w.nll || cd.Lines != w.lines || cd.Attempt != w.attempt || cd.Steps != last || cd.Picked != (cd.Dir == b) {
			t.Errorf("candidate %+v, want nll %g over %d lines, attempt %d", cd, w.nll, w.lines, w.attempt)
		}
	}
	got, _ := os.ReadFile(out)
	wantB, _ := os.ReadFile(filepath.Join(b, weightsFile))
	if len(got) == 0 || string(got) != string(wantB) {
		t.Errorf("--out is not B's weights (%d bytes, want %d)", len(got), len(wantB))
	}
	// A window of one step: only the final lines count (A 2, B 1, C 1.5): still B;
	// the table marks it.
	if tab := mustRun(t, "select", "--window", "1", a, b, c); !strings.Contains(tab, b) || !strings.Contains(tab, "<- picked") ||
		strings.Count(tab, "<- picked") != 1 || !strings.Contains(strings.Split(tab, "\n")[2], "<- picked") {
		t.Errorf("table:\n%s", tab)
	}
	// Ties go to the first given.
	if js := mustRun(t, "select", "--json", a, a); !strings.Contains(js, fmt.Sprintf("%q: %q", "picked", a)) {
		t.Errorf("tie: %s", js)
	}
}

// logEveryOf reads a run's train.log_every.
func logEveryOf(t *testing.T, dir string) int {
	t.Helper()
	cfg, err := loadConfig(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Train.LogEvery
}

// TestCLISelectErrors: each bad input names the folder and what is wrong.
func TestCLISelectErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	mustRun(t, "train", "--split", "shift-l", "--config", "tiny", "--steps", "2", "--batch", "4", "--quiet", "--out", src)
	ok := filepath.Join(dir, "ok")
	fakeRun(t, src, ok, "shift-l", 100, 0, logLines(100, 0, func(int) float64 { return 1 }))
	other := filepath.Join(dir, "other")
	fakeRun(t, src, other, "comp-i", 100, 0, logLines(100, 0, func(int) float64 { return 1 }))
	short := filepath.Join(dir, "short")
	fakeRun(t, src, short, "shift-l", 100, 0, logLines(50, 0, func(int) float64 { return 1 }))
	bad := filepath.Join(dir, "bad")
	fakeRun(t, src, bad, "shift-l", 100, 0, logLines(100, 0, func(int) float64 { return 1 }))
	if err := os.WriteFile(filepath.Join(bad, metricsFile), []byte("{\"step\": 50, \"nll\": 1}\n{\"step\": 100, \"nll\": \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pre := filepath.Join(dir, "pre")
	fakeRun(t, src, pre, "shift-l", 100, 0, []map[string]any{{"step": 50, "pretrain": true}, {"step": 100, "pretrain": true}})
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no run folders"},
		{[]string{"--window", "0", ok}, "--window = 0"},
		{[]string{filepath.Join(dir, "missing")}, "missing: not a finished run"},
		{[]string{ok, other}, "candidates must share their split"},
		{[]string{short}, "ends at step 50 of attempt 0, the weights at step 100"},
		{[]string{bad}, "metrics.jsonl line 2"},
		{[]string{pre}, "no metrics line with an NLL in the last 500 steps"},
	} {
		code, _, errs := runCLI(t, append([]string{"select"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("select %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// TestCLITrainCandidates: train --candidates 2 trains two runs with seeds
// seed·2 + c in candidate folders and keeps the lower-scoring one's weights
// (byte for byte) with the scores in select.json; stopped inside the first
// candidate and resumed, it trains the same two runs (the same losses at
// every logged step; the second candidate, not started before the stop,
// takes the first one's config, --set included) and picks the same.
func TestCLITrainCandidates(t *testing.T) {
	dir := t.TempDir()
	base := []string{"train", "--split", "shift-l", "--config", "tiny", "--steps", "6", "--seed", "1", "--batch", "4",
		"--log-every", "2", "--save-every", "2", "--quiet", "--candidates", "2"}
	sets := []string{"--set", "train.lambda_warm=0.5"}
	d, e := filepath.Join(dir, "d"), filepath.Join(dir, "e")
	mustRun(t, append(append(slices.Clone(base), sets...), "--out", d)...)
	var rep struct {
		Picked     string      `json:"picked"`
		Candidates []candidate `json:"candidates"`
	}
	js, err := os.ReadFile(filepath.Join(d, selectFile))
	if err != nil || json.Unmarshal(js, &rep) != nil || len(rep.Candidates) != 2 {
		t.Fatalf("select.json: %v\n%s", err, js)
	}
	lo := 0
	for i, c := range rep.Candidates {
		if want := filepath.Join(d, fmt.Sprintf("candidate-%d", i)); c.Dir != want || c.Seed != uint64(2+i) || c.Steps != 6 {
			t.Errorf("candidate %d: %+v, want %s with seed %d", i, c, want, 2+i)
		}
		if c.NLL < rep.Candidates[lo].NLL {
			lo = i
		}
	}
	if rep.Picked != rep.Candidates[lo].Dir || !rep.Candidates[lo].Picked {
		t.Errorf("picked %s, want the lower score %s", rep.Picked, rep.Candidates[lo].Dir)
	}
	got, _ := os.ReadFile(filepath.Join(d, weightsFile))
	want, _ := os.ReadFile(filepath.Join(rep.Picked, weightsFile))
	if len(got) == 0 || string(got) != string(want) {
		t.Errorf("%s is not the picked candidate's weights", weightsFile)
	}

	out := mustRun(t, append(append(slices.Clone(base), sets...), "--out", e, "--stop-after", "3")...)
	if !strings.Contains(out, "stopped in candidate 1 of 2") || fileExists(candidateDir(e, 1)) || fileExists(filepath.Join(e, weightsFile)) {
		t.Fatalf("--stop-after 3 did not stop inside the first candidate:\n%s", out)
	}
	// Resumed without --candidates: the run's candidates.json says 2.
	mustRun(t, append(slices.Clone(base[:len(base)-2]), "--out", e, "--resume")...)
	for c := range 2 {
		md, _ := os.ReadFile(filepath.Join(candidateDir(d, c), metricsFile))
		me, _ := os.ReadFile(filepath.Join(candidateDir(e, c), metricsFile))
		if got, want := lossesOf(t, me), lossesOf(t, md); !slices.Equal(got, want) {
			t.Errorf("candidate %d after stop and resume:\n%v\nwant\n%v", c, got, want)
		}
	}
	cd, _ := os.ReadFile(filepath.Join(candidateDir(d, 1), configFile))
	ce, _ := os.ReadFile(filepath.Join(candidateDir(e, 1), configFile))
	if string(cd) != string(ce) || !strings.Contains(string(ce), `"lambda_warm": 0.5`) {
		t.Errorf("the second candidate's config after resume differs or lost --set:\n%s\nwant\n%s", ce, cd)
	}
	se, _ := os.ReadFile(filepath.Join(e, selectFile))
	if !strings.Contains(string(se), fmt.Sprintf("%q: %q", "picked", candidateDir(e, lo))) {
		t.Errorf("resumed run picked otherwise: %s", se)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{append(slices.Clone(base), "--out", d), "already holds candidates"},
		{append(slices.Clone(base), "--out", filepath.Join(dir, "none"), "--resume"), "holds no started candidate"},
		{append(slices.Clone(base), "--out", filepath.Join(dir, "z"), "--candidates", "-1"), "--candidates = -1"},
		{append(slices.Clone(base), "--out", e, "--resume", "--candidates", "3"), "started with --candidates 2"},
		{append(slices.Clone(base), "--out", e, "--resume", "--seed", "4"), "started with --seed 1"},
		{append(slices.Clone(base), "--out", filepath.Join(dir, "v"), "--batch", "-3"), "train.batch"},
	} {
		code, _, errs := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, errs, c.want)
		}
	}
	if fileExists(filepath.Join(dir, "v")) {
		t.Errorf("a bad config left a folder behind")
	}
}

// TestResolveCandidates: --candidates 0 is the recipe's best of three with
// --config sym and one run otherwise; under --resume it is what the run
// was started with (candidates.json), and a malformed record is an error
// that names the file.
func TestResolveCandidates(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		flag int
		cfg  string
		want int
	}{{0, "sym", model.SymCandidates}, {0, "tiny", 1}, {0, "default", 1}, {0, "x.json", 1}, {1, "sym", 1}, {5, "tiny", 5}} {
		if got, err := resolveCandidates(c.flag, c.cfg, dir, 0, false); err != nil || got != c.want {
			t.Errorf("resolveCandidates(%d, %s) = %d, %v; want %d", c.flag, c.cfg, got, err, c.want)
		}
	}
	if model.SymCandidates != 3 {
		t.Errorf("SymCandidates = %d, want 3 (docs/DESIGN.md, \"Best of three\")", model.SymCandidates)
	}
	// --resume of a single run (no candidates.json): one run whatever the preset.
	if got, err := resolveCandidates(0, "sym", dir, 0, true); err != nil || got != 1 {
		t.Errorf("resume of a single run: %d, %v; want 1", got, err)
	}
	os.WriteFile(filepath.Join(dir, candidatesFile), []byte(`{"candidates": 4, "seed": 2}`), 0o644)
	if got, err := resolveCandidates(0, "tiny", dir, 2, true); err != nil || got != 4 {
		t.Errorf("resume with candidates.json: %d, %v; want 4", got, err)
	}
	for _, bad := range []string{`{"candidates": 1}`, `{"candidates": "x"}`, `{`} {
		os.WriteFile(filepath.Join(dir, candidatesFile), []byte(bad), 0o644)
		if _, err := resolveCandidates(0, "sym", dir, 0, true); err == nil || !strings.Contains(err.Error(), candidatesFile) {
			t.Errorf("candidates.json %s: error %v, want one naming the file", bad, err)
		}
	}
	os.Remove(filepath.Join(dir, candidatesFile))
	os.MkdirAll(candidateDir(dir, 0), 0o755)
	if _, err := resolveCandidates(0, "sym", dir, 0, true); err == nil || !strings.Contains(err.Error(), "pass the --candidates") {
		t.Errorf("candidates without a record: error %v", err)
	}
}

// TestCLITrainSymRecipe: native train's default config is the recipe for
// the split: the sym preset, with the contrast loss for comp-i only.
func TestCLITrainSymRecipe(t *testing.T) {
	for _, c := range []struct {
		split    string
		contrast float64
	}{{"comp-i", model.SymCompIContrast}, {"shift-p", 0}} {
		d := filepath.Join(t.TempDir(), "r")
		mustRun(t, "train", "--split", c.split, "--steps", "1", "--batch", "2", "--candidates", "1", "--quiet", "--out", d)
		got, err := loadConfig(filepath.Join(d, configFile))
		if err != nil {
			t.Fatal(err)
		}
		want := model.SymRecipe()
		want.Train.Contrast = c.contrast
		want.Train.Batch = 2
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: config %+v\nwant %+v", c.split, got, want)
		}
	}
}
