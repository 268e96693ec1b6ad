// Tests of native curve: flag parsing and one-line errors, and a tiny
// end-to-end run on the CPU with weights trained by the test: every cell in
// the JSON, the markdown tables' shape, the SVG as XML, agreement with
// native eval, and --stop-after + --resume reproducing a run in one go.

package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseIntList(t *testing.T) {
	got, err := parseIntList("--steps", " 50, 1,10 ")
	if err != nil || !slices.Equal(got, []int{1, 10, 50}) {
		t.Errorf("parseIntList: %v, %v; want [1 10 50]", got, err)
	}
	for _, c := range []struct{ in, want string }{
		{"", "--steps: empty list"},
		{"1,,2", `--steps: "" is not an integer`},
		{"1,2.5", `--steps: "2.5" is not an integer`},
		{"1,x", `--steps: "x" is not an integer`},
		{"0", "--steps: 0 is not positive"},
		{"4,-1", "--steps: -1 is not positive"},
		{"4,4", "--steps: 4 is listed twice"},
	} {
		if _, err := parseIntList("--steps", c.in); err == nil || err.Error() != c.want {
			t.Errorf("parseIntList(%q): %v, want %q", c.in, err, c.want)
		}
	}
}

func TestCurveBadInput(t *testing.T) {
	dir := t.TempDir()
	w := "../weights/shift-l.nliw.sz"
	o := filepath.Join(dir, "o")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--weights", w, "--out", o, "--steps", ""}, "--steps: empty list"},
		{[]string{"--weights", w, "--out", o, "--steps", "1,0"}, "--steps: 0 is not positive"},
		{[]string{"--weights", w, "--out", o, "--starts", "4,1.5"}, `--starts: "1.5" is not an integer`},
		{[]string{"--weights", w, "--out", o, "--starts", "-2"}, "--starts: -2"},
		{[]string{"--weights", w, "--out", o, "--parts", "ood,train"}, "--parts"},
		{[]string{"--weights", w, "--out", o, "--parts", "ood,ood"}, "--parts: ood is listed twice"},
		{[]string{"--weights", w, "--out", o, "--split", "shift-x"}, "--split"},
		{[]string{"--weights", w, "--out", o, "--tasks", "0"}, "--tasks"},
		{[]string{"--weights", w, "--out", o, "--tasks", "two"}, "-tasks"},
		{[]string{"--weights", w, "--out", o, "--max-seqs", "-1"}, "--max-seqs"},
		{[]string{"--weights", w, "--out", o, "--check-every", "-1"}, "--check-every"},
		{[]string{"--weights", w, "--out", o, "--seed", "-1"}, "-seed"},
		{[]string{"--weights", w, "--out", o, "--device", "tpu"}, "--device"},
		{[]string{"--weights", w}, "--out is required"},
		{[]string{"--out", o}, "--weights is required"},
		{[]string{"--weights", filepath.Join(dir, "missing.nliw.sz"), "--out", o}, "--weights: read weights"},
		{[]string{"--weights", w, "--out", o, "extra"}, "unexpected argument"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, append([]string{"curve"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("native curve %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errs, c.want)
		}
		if lines := strings.Count(strings.TrimSpace(errs), "\n"); lines > 0 && !strings.Contains(errs, "Usage") {
			t.Errorf("native curve %v: %d-line error %q", c.args, lines+1, errs)
		}
	}
}

func TestCurveEndToEnd(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	mustRun(t, "train", "--split", "shift-l", "--config", "tiny", "--steps", "2", "--seed", "3", "--batch", "4", "--quiet", "--out", run)
	w := filepath.Join(run, weightsFile)
	// --max-seqs 8 makes one task a chunk at S = 2 (m = 4), so cells are chunked.
	common := []string{"curve", "--weights", w, "--tasks", "3", "--steps", "2,1", "--starts", "1,2",
		"--check-every", "1", "--max-seqs", "8", "--workers", "1", "--quiet"}
	a := filepath.Join(dir, "a")
	mustRun(t, append(common, "--out", a)...)
	rep, err := readCurve(filepath.Join(a, curveFile))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || len(rep.Sets) != 1 || rep.Sets[0].Part != "ood" || rep.Settings.Split != "shift-l" || rep.Weights.SHA256 == "" {
		t.Fatalf("curve.json: complete %v, %d sets, split %q, sha %q", rep.Complete, len(rep.Sets), rep.Settings.Split, rep.Weights.SHA256)
	}
	set := rep.Sets[0]
	if len(set.Gradient) != 4 || len(set.Prior) != 2 {
		t.Fatalf("curve.json: %d gradient cells, %d prior rows; want 4 and 2", len(set.Gradient), len(set.Prior))
	}
	for i, S := range []int{1, 2} {
		for j, N := range []int{1, 2} {
			c := set.Gradient[i*2+j]
			if c.Starts != S || c.Steps != N || c.TasksDone != 3 {
				t.Errorf("cell %d: S %d N %d, %d tasks done; want S %d N %d, 3", i*2+j, c.Starts, c.Steps, c.TasksDone, S, N)
			}
			if c.StartSteps <= 0 || c.StartSteps > int64(3*S*N) {
				t.Errorf("cell S %d N %d: %d start-steps, want 1..%d", S, N, c.StartSteps, 3*S*N)
			}
		}
	}
	for _, c := range set.cells() {
		if c.Accuracy < 0 || c.Accuracy > 1 || c.SpecSolved < 0 || c.SpecSolved > 1 || c.WallS < 0 {
			t.Errorf("cell S %d N %d: accuracy %v, spec %v, wall %v", c.Starts, c.Steps, c.Accuracy, c.SpecSolved, c.WallS)
		}
	}

	// The same numbers as native eval for that budget.
	out := mustRun(t, "eval", "--weights", w, "--parts", "ood", "--tasks", "3", "--starts", "2", "--search-steps", "2",
		"--check-every", "1", "--max-seqs", "8", "--workers", "1", "--json")
	var ev struct{ Ood setReport }
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatal(err)
	}
	if g, c := ev.Ood.Detail["gradient"], set.Gradient[3]; g.Accuracy != c.Accuracy || g.SpecSolved != c.SpecSolved {
		t.Errorf("S 2 N 2: eval %+v, curve %+v", g, c)
	}
	if ev.Ood.Prior != set.Prior[1].Accuracy || ev.Ood.Inductor != set.Inductor.Accuracy {
		t.Errorf("eval prior %v inductor %v, curve %v %v", ev.Ood.Prior, ev.Ood.Inductor, set.Prior[1].Accuracy, set.Inductor.Accuracy)
	}

	// Markdown: three tables of 2 rows, columns S, N = 1, 2, prior.
	md, _ := os.ReadFile(filepath.Join(a, "curve.md"))
	var rows []string
	for _, l := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(l, "|") {
			rows = append(rows, l)
			if n := strings.Count(l, "|"); n != 5 {
				t.Errorf("curve.md row %q has %d cells, want 4", l, n-1)
			}
		}
	}
	if len(rows) != 3*4 || !strings.HasPrefix(rows[0], "| S \\ N | 1 | 2 | prior |") || strings.Contains(string(md), "…") {
		t.Errorf("curve.md tables:\n%s", md)
	}

	// SVG: well-formed XML with one polyline per starts value.
	svg, _ := os.ReadFile(filepath.Join(a, "curve.svg"))
	if n := countXML(t, svg, "polyline"); n != 2 {
		t.Errorf("curve.svg: %d polylines, want 2", n)
	}

	// An existing run needs --resume; --resume needs the same settings.
	if code, _, errs := runCLI(t, append(common, "--out", a)...); code != 2 || !strings.Contains(errs, "--resume") {
		t.Errorf("curve into an existing run: exit %d, %q", code, errs)
	}
	if code, _, errs := runCLI(t, append(common, "--out", a, "--resume", "--seed", "9")...); code != 2 || !strings.Contains(errs, "seed was 1234, now 9") {
		t.Errorf("curve --resume with another seed: exit %d, %q", code, errs)
	}

	// Stopped mid-cell and resumed: the same counts as in one go.
	b := filepath.Join(dir, "b")
	out = mustRun(t, append(common, "--out", b, "--stop-after", "5")...)
	if !strings.Contains(out, "continue with --resume") {
		t.Errorf("curve --stop-after: %q", out)
	}
	part, err := readCurve(filepath.Join(b, curveFile))
	if err != nil || part.Complete {
		t.Fatalf("stopped run: %v, complete %v", err, part.Complete)
	}
	mdPart, _ := os.ReadFile(filepath.Join(b, "curve.md"))
	if !strings.Contains(string(mdPart), "…") {
		t.Errorf("a stopped run's curve.md shows no pending cells:\n%s", mdPart)
	}
	svgPart, _ := os.ReadFile(filepath.Join(b, "curve.svg"))
	countXML(t, svgPart, "polyline")
	mustRun(t, append(common, "--out", b, "--resume")...)
	res, err := readCurve(filepath.Join(b, curveFile))
	if err != nil || !res.Complete {
		t.Fatalf("resumed run: %v, complete %v", err, res.Complete)
	}
	ca, cb := set.cells(), res.Sets[0].cells()
	for i := range ca {
		x, y := *ca[i], *cb[i]
		x.WallS, y.WallS = 0, 0
		if x.MedianSteps != nil && y.MedianSteps != nil && *x.MedianSteps == *y.MedianSteps {
			x.MedianSteps, y.MedianSteps = nil, nil
		}
		xj, _ := json.Marshal(x)
		yj, _ := json.Marshal(y)
		if string(xj) != string(yj) {
			t.Errorf("cell %d: in one go %s, resumed %s", i, xj, yj)
		}
	}
}

// countXML parses data as XML and counts the elements named name.
func countXML(t *testing.T, data []byte, name string) int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(data)))
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v\n%s", err, data)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			n++
		}
	}
}
