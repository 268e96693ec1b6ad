// Package model: taskfile.go defines the Task / Pair JSON types, task
// generation (GenTasks), validation, and reading and writing task sets as
// JSONL files.
package model

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// MaxTaskLineBytes caps the length of one JSONL line read by ReadTasks.
const MaxTaskLineBytes = 1 << 20

// Pair is one input/output example. A nil Output means the output is unknown
// (allowed only for test pairs).
type Pair struct {
	Input  []int `json:"input"`
	Output []int `json:"output,omitempty"`
}

// Task is one few-shot task: specification (Train) pairs, Test pairs, and
// optionally the hidden program (Program.String form) that produced them.
type Task struct {
	ID      string `json:"id"`
	Train   []Pair `json:"train"`
	Test    []Pair `json:"test"`
	Program string `json:"program,omitempty"`
}

// checkTaskSeq verifies that seq has SeqLen values in 0..NumValues-1.
func checkTaskSeq(field string, seq []int) error {
	if len(seq) != SeqLen {
		return fmt.Errorf("%s: length %d, want %d", field, len(seq), SeqLen)
	}
	for i, v := range seq {
		if v < 0 || v >= NumValues {
			return fmt.Errorf("%s: value %d outside 0..%d (position %d)", field, v, NumValues-1, i)
		}
	}
	return nil
}

// Validate checks the task's shape, the same checks ReadTasks makes in
// non-strict mode: a non-empty Train whose pairs all have an output, a
// non-empty Test (test outputs may be absent), every sequence of length SeqLen
// with values in 0..NumValues-1. Errors name the field, e.g.
// "train[2].output: value 12 outside 0..9 (position 5)". The Program field is
// not checked here (ReadTasks checks it in strict mode).
func (t Task) Validate() error {
	if len(t.Train) == 0 {
		return errors.New("train: empty (need at least one pair)")
	}
	for i, p := range t.Train {
		if err := checkTaskSeq(fmt.Sprintf("train[%d].input", i), p.Input); err != nil {
			return err
		}
		if p.Output == nil {
			return fmt.Errorf("train[%d].output: missing (train pairs need an output)", i)
		}
		if err := checkTaskSeq(fmt.Sprintf("train[%d].output", i), p.Output); err != nil {
			return err
		}
	}
	if len(t.Test) == 0 {
		return errors.New("test: empty (need at least one pair)")
	}
	for i, p := range t.Test {
		if err := checkTaskSeq(fmt.Sprintf("test[%d].input", i), p.Input); err != nil {
			return err
		}
		if p.Output != nil {
			if err := checkTaskSeq(fmt.Sprintf("test[%d].output", i), p.Output); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateStrict adds the strict-mode checks to Validate: a non-empty Program
// must parse.
func (t Task) validateStrict() error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.Program != "" {
		if _, err := ParseProgram(t.Program); err != nil {
			return fmt.Errorf("program: %w", err)
		}
	}
	return nil
}

// SpecArrays flattens the task's Train pairs into x and y, each of length
// len(Train)*SeqLen, for the model. Call Validate first: a sequence of the
// wrong length is truncated or zero-padded and a missing output is zeros.
func (t Task) SpecArrays() (x, y []int32) {
	x = make([]int32, len(t.Train)*SeqLen)
	y = make([]int32, len(t.Train)*SeqLen)
	for j, p := range t.Train {
		for i := 0; i < SeqLen && i < len(p.Input); i++ {
			x[j*SeqLen+i] = int32(p.Input[i])
		}
		for i := 0; i < SeqLen && i < len(p.Output); i++ {
			y[j*SeqLen+i] = int32(p.Output[i])
		}
	}
	return x, y
}

// taskStreamConst derives the second PCG seed word from split and part, so that
// GenTasks streams of different parts (e.g. id and ood) differ for one seed.
func taskStreamConst(split Split, part Part) uint64 {
	h := fnv.New64a()
	h.Write([]byte("nli-tasks/" + string(split) + "/" + string(part)))
	return h.Sum64()
}

func randomTaskPair(rng *rand.Rand, p Program) Pair {
	var xs, ys [SeqLen]int32
	for i := range xs {
		xs[i] = int32(rng.IntN(NumValues))
	}
	p.Apply(ys[:], xs[:])
	in := make([]int, SeqLen)
	out := make([]int, SeqLen)
	for i := range xs {
		in[i] = int(xs[i])
		out[i] = int(ys[i])
	}
	return Pair{Input: in, Output: out}
}

// GenTasks makes n tasks of the given split and part, each with m
// specification pairs and one test pair (with its output), fully determined by
// seed: a math/rand/v2 PCG seeded with (seed, a constant derived from split
// and part). Each task draws its program uniformly from Programs(split, part).
// IDs look like "shift-l/ood/000042"; Program holds Program.String(). It
// returns nil for an unknown split or part, n <= 0 or m <= 0.
func GenTasks(split Split, part Part, n, m int, seed uint64) []Task {
	progs := Programs(split, part)
	if len(progs) == 0 || n <= 0 || m <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, taskStreamConst(split, part)))
	tasks := make([]Task, n)
	for i := range tasks {
		p := progs[rng.IntN(len(progs))]
		t := Task{
			ID:      fmt.Sprintf("%s/%s/%06d", split, part, i),
			Train:   make([]Pair, m),
			Program: p.String(),
		}
		for j := range t.Train {
			t.Train[j] = randomTaskPair(rng, p)
		}
		t.Test = []Pair{randomTaskPair(rng, p)}
		tasks[i] = t
	}
	return tasks
}

// readTaskLine reads one line (without its trailing "\n") into buf, failing if
// it exceeds MaxTaskLineBytes. At end of input it returns io.EOF only when no
// bytes were read.
func readTaskLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > MaxTaskLineBytes+2 { // allow for "\r\n"
			return buf, fmt.Errorf("line longer than %d bytes", MaxTaskLineBytes)
		}
		switch {
		case err == nil:
			buf = buf[:len(buf)-1]
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) == 0 {
				return buf, io.EOF
			}
		default:
			return buf, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if len(buf) > MaxTaskLineBytes {
			return buf, fmt.Errorf("line longer than %d bytes", MaxTaskLineBytes)
		}
		return buf, nil
	}
}

// decodeTaskLine decodes one non-blank JSONL line into a task.
func decodeTaskLine(line []byte, strict bool) (Task, error) {
	var t Task
	if line[0] != '{' {
		return t, errors.New("invalid JSON: expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&t); err != nil {
		return t, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return t, errors.New("invalid JSON: trailing data after the object")
	}
	if strict {
		return t, t.validateStrict()
	}
	return t, t.Validate()
}

// ReadTasks reads tasks as JSONL (one JSON object per line; blank lines are
// skipped). Each task must pass Task.Validate; in strict mode unknown keys are
// rejected and a non-empty program must pass ParseProgram. Lines longer than
// MaxTaskLineBytes are rejected. name is used in error messages, which look
// like "tasks.jsonl:7: train[2].output: value 12 outside 0..9 (position 5)".
func ReadTasks(r io.Reader, name string, strict bool) ([]Task, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var tasks []Task
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		line, err := readTaskLine(br, buf)
		buf = line
		if errors.Is(err, io.EOF) {
			return tasks, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		t, err := decodeTaskLine(line, strict)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		tasks = append(tasks, t)
	}
}

// ReadTasksFile reads a JSONL task file with ReadTasks, using path as the name
// in error messages.
func ReadTasksFile(path string, strict bool) ([]Task, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read tasks: %w", err)
	}
	defer f.Close()
	return ReadTasks(f, path, strict)
}

// WriteTasks writes tasks as JSONL, one JSON object per line. It does not
// validate them.
func WriteTasks(w io.Writer, tasks []Task) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range tasks {
		if err := enc.Encode(&tasks[i]); err != nil {
			return fmt.Errorf("write task %d (%q): %w", i, tasks[i].ID, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write tasks: %w", err)
	}
	return nil
}

// WriteTasksFile writes tasks as JSONL to path atomically: it writes a temp
// file in the same directory, fsyncs it and renames it over path, so readers
// see either the old or the new file, never a partial one.
func WriteTasksFile(path string, tasks []Task) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write tasks %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; task files are ordinary data. A file
	// system that cannot chmod is not a reason to fail the write.
	_ = f.Chmod(0o644)
	if err = WriteTasks(f, tasks); err != nil {
		return fmt.Errorf("write tasks %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write tasks %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write tasks %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write tasks %s: rename: %w", path, err)
	}
	// Best effort: persist the rename. Not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
