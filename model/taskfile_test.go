// Tests for taskfile.go: task generation, validation, SpecArrays, and the
// JSONL reader and writer.
package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestGenTasks(t *testing.T) {
	for _, sp := range []Split{SplitShiftL, SplitShiftP, SplitCompI} {
		for _, pt := range []Part{PartTrain, PartID, PartOOD} {
			tasks := GenTasks(sp, pt, 30, 4, 7)
			if len(tasks) != 30 {
				t.Fatalf("%s/%s: %d tasks, want 30", sp, pt, len(tasks))
			}
			allowed := map[string]bool{}
			for _, p := range Programs(sp, pt) {
				allowed[p.String()] = true
			}
			for i, task := range tasks {
				if want := string(sp) + "/" + string(pt) + "/" + []string{"000000", "000001"}[min(i, 1)]; i < 2 && task.ID != want {
					t.Errorf("task %d ID %q, want %q", i, task.ID, want)
				}
				if err := task.Validate(); err != nil {
					t.Fatalf("%s: %v", task.ID, err)
				}
				if len(task.Train) != 4 || len(task.Test) != 1 || task.Test[0].Output == nil {
					t.Fatalf("%s: %d train / %d test pairs", task.ID, len(task.Train), len(task.Test))
				}
				if !allowed[task.Program] {
					t.Fatalf("%s: program %q not in %s/%s", task.ID, task.Program, sp, pt)
				}
				p, err := ParseProgram(task.Program)
				if err != nil {
					t.Fatalf("%s: %v", task.ID, err)
				}
				for _, pair := range append(slices.Clone(task.Train), task.Test...) {
					got := make([]int32, SeqLen)
					in := make([]int32, SeqLen)
					for k, v := range pair.Input {
						in[k] = int32(v)
					}
					p.Apply(got, in)
					for k := range got {
						if int(got[k]) != pair.Output[k] {
							t.Fatalf("%s: output %v is not %s(%v)", task.ID, pair.Output, p, pair.Input)
						}
					}
				}
			}
		}
	}
	if got := GenTasks(SplitShiftL, PartOOD, 1000, 2, 1)[42].ID; got != "shift-l/ood/000042" {
		t.Errorf("ID = %q, want shift-l/ood/000042", got)
	}
}

func TestGenTasksDeterminism(t *testing.T) {
	a := GenTasks(SplitCompI, PartOOD, 20, 3, 11)
	b := GenTasks(SplitCompI, PartOOD, 20, 3, 11)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed gave different tasks")
	}
	c := GenTasks(SplitCompI, PartOOD, 20, 3, 12)
	if reflect.DeepEqual(a[0].Train, c[0].Train) {
		t.Error("different seeds gave the same tasks")
	}
	// train and id share programs but must be different tasks for one seed.
	tr := GenTasks(SplitShiftL, PartTrain, 5, 3, 11)
	id := GenTasks(SplitShiftL, PartID, 5, 3, 11)
	if reflect.DeepEqual(tr[0].Train, id[0].Train) {
		t.Error("train and id parts gave the same tasks for one seed")
	}
	// Prefix stability: more tasks extend the list.
	more := GenTasks(SplitCompI, PartOOD, 25, 3, 11)
	if !reflect.DeepEqual(a, more[:20]) {
		t.Error("GenTasks(n=25) does not extend GenTasks(n=20)")
	}
}

func TestGenTasksInvalid(t *testing.T) {
	if GenTasks("nope", PartOOD, 3, 3, 1) != nil || GenTasks(SplitShiftL, "x", 3, 3, 1) != nil ||
		GenTasks(SplitShiftL, PartOOD, 0, 3, 1) != nil || GenTasks(SplitShiftL, PartOOD, 3, 0, 1) != nil {
		t.Error("GenTasks with invalid arguments should return nil")
	}
}

func taskSeqOf(start int) []int {
	s := make([]int, SeqLen)
	for i := range s {
		s[i] = (start + i) % NumValues
	}
	return s
}

func goodTestTask() Task {
	return Task{
		ID: "t1",
		Train: []Pair{
			{Input: taskSeqOf(0), Output: taskSeqOf(1)},
			{Input: taskSeqOf(2), Output: taskSeqOf(3)},
			{Input: taskSeqOf(4), Output: taskSeqOf(5)},
		},
		Test:    []Pair{{Input: taskSeqOf(6), Output: taskSeqOf(7)}},
		Program: "inc",
	}
}

// taskLine marshals a task after letting edit modify its generic JSON form.
func taskLine(t *testing.T, edit func(m map[string]any)) string {
	t.Helper()
	raw, err := json.Marshal(goodTestTask())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func taskPairAt(m map[string]any, list string, i int) map[string]any {
	return m[list].([]any)[i].(map[string]any)
}

func TestReadTasksErrors(t *testing.T) {
	good := taskLine(t, nil)
	cases := []struct {
		name   string
		line   string
		strict bool
		want   []string
	}{
		{"invalid json", `{"id": "x", "train": [`, false, []string{"invalid JSON"}},
		{"not an object", `[1, 2, 3]`, false, []string{"expected a JSON object"}},
		{"trailing data", good + ` {}`, false, []string{"trailing data"}},
		{"wrong type", taskLine(t, func(m map[string]any) { m["train"] = "abc" }), false, []string{"invalid JSON", "train"}},
		{"fractional value", strings.Replace(good, `"input":[0,`, `"input":[0.5,`, 1), false, []string{"invalid JSON"}},
		{"short input", taskLine(t, func(m map[string]any) { taskPairAt(m, "train", 1)["input"] = []int{1, 2, 3} }), false,
			[]string{"train[1].input", "length 3, want 20"}},
		{"long output", taskLine(t, func(m map[string]any) { taskPairAt(m, "train", 0)["output"] = append(taskSeqOf(0), 1) }), false,
			[]string{"train[0].output", "length 21, want 20"}},
		{"value too big", taskLine(t, func(m map[string]any) { taskPairAt(m, "train", 2)["output"].([]any)[5] = 12 }), false,
			[]string{"train[2].output: value 12 outside 0..9", "position 5"}},
		{"negative value", taskLine(t, func(m map[string]any) { taskPairAt(m, "test", 0)["input"].([]any)[0] = -1 }), false,
			[]string{"test[0].input: value -1 outside 0..9"}},
		{"empty train", taskLine(t, func(m map[string]any) { m["train"] = []any{} }), false, []string{"train: empty"}},
		{"null train", taskLine(t, func(m map[string]any) { m["train"] = nil }), false, []string{"train: empty"}},
		{"missing train", taskLine(t, func(m map[string]any) { delete(m, "train") }), false, []string{"train: empty"}},
		{"train without output", taskLine(t, func(m map[string]any) { delete(taskPairAt(m, "train", 1), "output") }), false,
			[]string{"train[1].output: missing"}},
		{"empty test", taskLine(t, func(m map[string]any) { m["test"] = []any{} }), false, []string{"test: empty"}},
		{"missing test", taskLine(t, func(m map[string]any) { delete(m, "test") }), false, []string{"test: empty"}},
		{"bad test output", taskLine(t, func(m map[string]any) { taskPairAt(m, "test", 0)["output"] = []int{1} }), false,
			[]string{"test[0].output", "length 1"}},
		{"empty test output", taskLine(t, func(m map[string]any) { taskPairAt(m, "test", 0)["output"] = []int{} }), false,
			[]string{"test[0].output", "length 0"}},
		{"strict unknown key", taskLine(t, func(m map[string]any) { m["extra"] = 1 }), true, []string{"invalid JSON", `unknown field "extra"`}},
		{"strict unknown pair key", taskLine(t, func(m map[string]any) { taskPairAt(m, "test", 0)["note"] = "x" }), true, []string{`unknown field "note"`}},
		{"strict bad program", taskLine(t, func(m map[string]any) { m["program"] = "rotl 25" }), true, []string{"program:", "k 25 outside 0..19"}},
		{"strict unknown op", taskLine(t, func(m map[string]any) { m["program"] = "flip" }), true, []string{"program:", `unknown op "flip"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Line 1 good, line 2 blank, line 3 the case.
			in := good + "\n\n" + c.line + "\n" + good + "\n"
			_, err := ReadTasks(strings.NewReader(in), "tasks.jsonl", c.strict)
			if err == nil {
				t.Fatalf("ReadTasks accepted %s", c.line)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "tasks.jsonl:3: ") {
				t.Errorf("error %q does not start with tasks.jsonl:3: ", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestReadTasksStrictness(t *testing.T) {
	cases := []struct {
		name string
		line string
	}{
		{"unknown key", taskLine(t, func(m map[string]any) { m["difficulty"] = "hard" })},
		{"unparsable program", taskLine(t, func(m map[string]any) { m["program"] = "a free-text description" })},
	}
	for _, c := range cases {
		tasks, err := ReadTasks(strings.NewReader(c.line), "x.jsonl", false)
		if err != nil || len(tasks) != 1 {
			t.Errorf("%s: non-strict ReadTasks = %d tasks, %v; want 1 task", c.name, len(tasks), err)
		}
		if _, err := ReadTasks(strings.NewReader(c.line), "x.jsonl", true); err == nil || !strings.HasPrefix(err.Error(), "x.jsonl:1: ") {
			t.Errorf("%s: strict ReadTasks error = %v, want x.jsonl:1: ...", c.name, err)
		}
	}
}

func TestReadTasksTestOutputAbsent(t *testing.T) {
	for _, line := range []string{
		taskLine(t, func(m map[string]any) { delete(taskPairAt(m, "test", 0), "output") }),
		taskLine(t, func(m map[string]any) { taskPairAt(m, "test", 0)["output"] = nil }),
	} {
		for _, strict := range []bool{false, true} {
			tasks, err := ReadTasks(strings.NewReader(line), "x.jsonl", strict)
			if err != nil {
				t.Fatalf("strict=%v: %v", strict, err)
			}
			if len(tasks) != 1 || tasks[0].Test[0].Output != nil {
				t.Fatalf("strict=%v: got %+v, want one task with a nil test output", strict, tasks)
			}
		}
	}
	// And writing it omits the key.
	task := goodTestTask()
	task.Test[0].Output = nil
	var buf bytes.Buffer
	if err := WriteTasks(&buf, []Task{task}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), `"output"`) != len(task.Train) {
		t.Errorf("nil test output was written: %s", buf.String())
	}
}

func TestReadTasksLines(t *testing.T) {
	good := taskLine(t, nil)
	in := "\n  \r\n" + good + "\r\n\t\n" + good // CRLF, blank lines, no final newline
	tasks, err := ReadTasks(strings.NewReader(in), "x.jsonl", true)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("ReadTasks = %d tasks, %v; want 2", len(tasks), err)
	}
	tasks, err = ReadTasks(strings.NewReader(""), "x.jsonl", true)
	if err != nil || len(tasks) != 0 {
		t.Errorf("empty input: %d tasks, %v", len(tasks), err)
	}

	// A line over the cap fails with a clear error and its line number.
	long := `{"id": "` + strings.Repeat("a", MaxTaskLineBytes) + `"}`
	_, err = ReadTasks(strings.NewReader(good+"\n"+long+"\n"), "big.jsonl", false)
	if err == nil || !strings.Contains(err.Error(), "big.jsonl:2: ") || !strings.Contains(err.Error(), "longer than 1048576 bytes") {
		t.Errorf("long line error = %v", err)
	}
	// A long but allowed line (just under the cap, beyond the reader buffer) is fine.
	pad := MaxTaskLineBytes - len(good) - 20
	okLong := strings.Replace(good, `"id":"t1"`, `"id":"`+strings.Repeat("b", pad)+`"`, 1)
	if len(okLong) > MaxTaskLineBytes {
		t.Fatalf("test setup: line %d bytes", len(okLong))
	}
	tasks, err = ReadTasks(strings.NewReader(okLong+"\n"+good), "x.jsonl", true)
	if err != nil || len(tasks) != 2 || len(tasks[0].ID) != pad {
		t.Errorf("long allowed line: %d tasks, %v", len(tasks), err)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	tasks := GenTasks(SplitCompI, PartOOD, 25, 4, 3)
	tasks[3].Test[0].Output = nil
	tasks[4].Program = ""
	var buf bytes.Buffer
	if err := WriteTasks(&buf, tasks); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(tasks) {
		t.Errorf("wrote %d lines for %d tasks", n, len(tasks))
	}
	got, err := ReadTasks(&buf, "buf", true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tasks) {
		t.Error("WriteTasks -> ReadTasks round trip differs")
	}
}

func TestWriteTasksFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.jsonl")
	first := GenTasks(SplitShiftL, PartID, 5, 3, 1)
	second := GenTasks(SplitShiftP, PartOOD, 7, 2, 2)
	for _, tasks := range [][]Task{first, second} { // the second write replaces the first
		if err := WriteTasksFile(path, tasks); err != nil {
			t.Fatal(err)
		}
		got, err := ReadTasksFile(path, true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tasks) {
			t.Error("WriteTasksFile -> ReadTasksFile round trip differs")
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only tasks.jsonl (temp file left?)", len(entries))
	}
	if err := WriteTasksFile(filepath.Join(dir, "missing", "t.jsonl"), first); err == nil {
		t.Error("WriteTasksFile into a missing directory succeeded")
	}
	_, err = ReadTasksFile(filepath.Join(dir, "nope.jsonl"), false)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadTasksFile(missing) = %v, want an fs.ErrNotExist", err)
	}
	// Errors from a file name the path.
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTasksFile(bad, false); err == nil || !strings.HasPrefix(err.Error(), bad+":1: train: empty") {
		t.Errorf("ReadTasksFile(bad) = %v", err)
	}
}

func TestTaskValidate(t *testing.T) {
	if err := goodTestTask().Validate(); err != nil {
		t.Fatalf("good task: %v", err)
	}
	task := goodTestTask()
	task.Train[2].Output[5] = 12
	if err := task.Validate(); err == nil || !strings.HasPrefix(err.Error(), "train[2].output: value 12 outside 0..9") {
		t.Errorf("Validate = %v", err)
	}
	task = goodTestTask()
	task.Program = "not a program" // Validate leaves the program to strict reading
	if err := task.Validate(); err != nil {
		t.Errorf("Validate with free-text program: %v", err)
	}
}

func TestSpecArrays(t *testing.T) {
	task := goodTestTask()
	x, y := task.SpecArrays()
	if len(x) != 3*SeqLen || len(y) != 3*SeqLen {
		t.Fatalf("SpecArrays lengths %d, %d", len(x), len(y))
	}
	for j, p := range task.Train {
		for i := 0; i < SeqLen; i++ {
			if int(x[j*SeqLen+i]) != p.Input[i] || int(y[j*SeqLen+i]) != p.Output[i] {
				t.Fatalf("pair %d position %d: got (%d, %d), want (%d, %d)", j, i, x[j*SeqLen+i], y[j*SeqLen+i], p.Input[i], p.Output[i])
			}
		}
	}
	// Malformed tasks do not panic.
	bad := Task{Train: []Pair{{Input: []int{1, 2}}, {Input: taskSeqOf(0), Output: append(taskSeqOf(0), 5, 5)}}}
	x, y = bad.SpecArrays()
	if len(x) != 2*SeqLen || len(y) != 2*SeqLen || x[1] != 2 || x[2] != 0 || y[0] != 0 {
		t.Errorf("SpecArrays on a malformed task: %v %v", x, y)
	}
}
