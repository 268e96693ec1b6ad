// native eval: the Table-1 row of one weights file: ID and OOD accuracy of
// the inductor alone, prior search and gradient search, with steps to
// solution and wall time.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nli-go/nli/model"
)

// methodStats summarises one search method on one test set.
type methodStats struct {
	TasksDone  int     `json:"tasks_done"`  // tasks answered (all unless --time-limit stopped the evaluation)
	Accuracy   float64 `json:"accuracy"`    // over the tasks done
	SpecSolved float64 `json:"spec_solved"` // tasks whose chosen program reproduces every spec pair
	WallS      float64 `json:"wall_s"`
	// Steps to solution (gradient search only): over the tasks solved.
	MedianSteps float64 `json:"median_steps_to_solution,omitempty"`
	MeanSteps   float64 `json:"mean_steps_to_solution,omitempty"`
}

// setReport is one test set's row: the three accuracies and the details.
type setReport struct {
	Inductor float64                `json:"inductor"`
	Prior    float64                `json:"prior"`
	Gradient float64                `json:"gradient"`
	Tasks    int                    `json:"tasks"`
	Detail   map[string]methodStats `json:"detail"`
}

func cmdEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	weights := fs.String("weights", "", "weights file (.nliw.sz) (required)")
	split := fs.String("split", "", "task split (default: the split the weights were trained on)")
	ntasks := fs.Int("tasks", 500, "tasks per test set")
	starts := fs.Int("starts", 0, "search starts S (default: the config's)")
	searchSteps := fs.Int("search-steps", 0, "gradient search steps N (default: the config's)")
	parts := fs.String("parts", "id,ood", "test sets to run, comma-separated: id, ood")
	seed := fs.Uint64("seed", 1234, "test-set seed (the sets are fixed by it)")
	device := fs.String("device", "cpu", "compute device: cpu or cuda")
	workers := fs.Int("workers", 0, "CPU worker goroutines (0 = all cores)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	maxSeqs := fs.Int("max-seqs", 8192, "most sequences (tasks × starts × pairs) searched in one batch")
	checkEvery := fs.Int("check-every", 0, checkEveryUsage)
	var sets setFlags
	fs.Var(&sets, "set", searchSetUsage)
	tf32 := fs.Bool("tf32", true, tf32Usage)
	fastGELU := fs.Bool("fast-gelu", true, fastGELUUsage)
	fastGumbel := fs.Bool("fast-gumbel", true, fastGumbelUsage)
	fastSoftmax := fs.Bool("fast-softmax", true, fastSoftmaxUsage)
	perTask := fs.String("per-task", "", "also write each task's answer per method to this file, as JSON lines (part, task, hidden program, method, chosen symbols, spec pairs, correct, solved_at)")
	timeLimit := fs.Float64("time-limit", 0, "stop cleanly before a chunk of tasks that would start after this many seconds and report the tasks done (every part's inductor and prior run before the gradient searches; 0 = none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *maxSeqs <= 0 {
		return fmt.Errorf("--max-seqs = %d, must be positive", *maxSeqs)
	}
	if *ntasks <= 0 {
		return fmt.Errorf("--tasks = %d, must be positive", *ntasks)
	}
	if *timeLimit < 0 || math.IsNaN(*timeLimit) || math.IsInf(*timeLimit, 0) {
		return fmt.Errorf("--time-limit = %g, must be 0 or a positive number of seconds", *timeLimit)
	}
	t0 := time.Now()
	b, err := newBackend(*device, *workers)
	if err != nil {
		return err
	}
	useTF32 := setTF32(b, *tf32)
	useFastGELU := setFastGELU(b, *fastGELU)
	useFastGumbel := setFastGumbel(b, *fastGumbel)
	useFastSoftmax := setFastSoftmax(b, *fastSoftmax)
	m, wf, err := loadWeights(b, *weights)
	if err != nil {
		return err
	}
	if m.Cfg.Search, err = applySearchSets(m.Cfg, sets); err != nil {
		return err
	}
	sc, err := searchFlags(m.Cfg.Search, *starts, *searchSteps, *checkEvery)
	if err != nil {
		return err
	}
	sp, err := splitOf(*split, wf)
	if err != nil {
		return err
	}
	report := map[string]any{"split": sp, "weights": *weights, "starts": sc.Starts, "search_steps": sc.Steps, "search": sc,
		"check_every": sc.CheckEvery, "tf32": useTF32, "fast_gelu": useFastGELU, "fast_gumbel": useFastGumbel,
		"fast_softmax": useFastSoftmax, "device": b.Name()}
	var rows []string
	var perTaskLines []perTaskLine
	type partRun struct {
		part  model.Part
		tasks []model.Task
		ev    *setEval
	}
	var runs []partRun
	for _, p := range strings.Split(*parts, ",") {
		part, err := model.ParsePart(strings.TrimSpace(p))
		if err != nil || part == model.PartTrain {
			return fmt.Errorf("--parts: %q is not id or ood", p)
		}
		tasks := model.GenTasks(sp, part, *ntasks, m.Cfg.Train.Pairs, *seed)
		ev, err := newSetEval(m, tasks, sc, *seed, *maxSeqs)
		if err != nil {
			return err
		}
		runs = append(runs, partRun{part, tasks, ev})
	}
	// The cheap methods of every part first, then the searches, so that a
	// time limit cuts the gradient search of the last part first.
	var deadline time.Time
	if *timeLimit > 0 {
		deadline = t0.Add(time.Duration(*timeLimit * float64(time.Second)))
	}
	stopped := false
	for _, me := range []string{"inductor", "prior", "gradient"} {
		for _, r := range runs {
			done, err := r.ev.run(me, deadline)
			if err != nil {
				return err
			}
			stopped = stopped || !done
		}
	}
	if stopped {
		report["stopped"] = fmt.Sprintf("--time-limit %gs: accuracies are over the tasks done (tasks_done)", *timeLimit)
	}
	for _, r := range runs {
		rep, all := r.ev.rep, r.ev.all
		report[string(r.part)] = rep
		for _, me := range []string{"inductor", "prior", "gradient"} {
			for i, res := range all[me] {
				perTaskLines = append(perTaskLines, perTaskLine{Part: string(r.part), Task: i, Hidden: r.tasks[i].Program,
					Method: me, Program: res.Program, SpecPairs: res.SpecPairs, Correct: res.Correct, SolvedAt: res.SolvedAt})
			}
		}
		g := rep.Detail["gradient"]
		done := ""
		if g.TasksDone < rep.Tasks {
			done = fmt.Sprintf("  (gradient: %d of %d tasks, --time-limit)", g.TasksDone, rep.Tasks)
		}
		rows = append(rows, fmt.Sprintf("%-8s %-4s %6d %9.3f %7.3f %9.3f %12.3f %10.0f %9.1f%s",
			sp, r.part, rep.Tasks, rep.Inductor, rep.Prior, rep.Gradient, g.SpecSolved, g.MedianSteps, g.WallS, done))
	}
	if *perTask != "" {
		if err := writePerTask(*perTask, perTaskLines); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	fmt.Fprintf(stdout, "%-8s %-4s %6s %9s %7s %9s %12s %10s %9s\n", "split", "set", "tasks", "inductor", "prior", "gradient", "spec_solved", "med_steps", "search_s")
	for _, r := range rows {
		fmt.Fprintln(stdout, r)
	}
	fmt.Fprintf(stdout, "(%s, %d starts × %d steps, hard check every %d steps, device %s%s)\n",
		*weights, sc.Starts, sc.Steps, sc.CheckEvery, b.Name(), map[bool]string{true: ", TF32"}[useTF32]+map[bool]string{true: ", float32 GELU"}[useFastGELU]+map[bool]string{true: ", float32 Gumbel"}[useFastGumbel]+
			map[bool]string{true: ", float32 softmax"}[useFastSoftmax])
	return nil
}

// perTaskLine is one line of `eval --per-task`: one method's answer to one task.
type perTaskLine struct {
	Part      string `json:"part"`
	Task      int    `json:"task"`
	Hidden    string `json:"hidden,omitempty"` // the program that made the task
	Method    string `json:"method"`
	Program   []int  `json:"program"` // the chosen symbols, T of them
	SpecPairs int    `json:"spec_pairs"`
	Correct   bool   `json:"correct"`
	SolvedAt  int    `json:"solved_at"`
}

// writePerTask writes lines as JSON lines, atomically (a temporary file renamed).
func writePerTask(path string, lines []perTaskLine) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--per-task: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--per-task: %w", err)
	}
	return nil
}

// setEval runs the three methods on one test set, in chunks that fit the
// searcher, one method at a time (run), and keeps the summary and every
// task's result per method.
type setEval struct {
	m     *model.Model
	s     *model.Searcher
	tb    *model.TaskBatch
	sc    model.SearchConfig
	seed  uint64
	chunk int
	rep   setReport
	all   map[string][]model.Result
}

func newSetEval(m *model.Model, tasks []model.Task, sc model.SearchConfig, seed uint64, maxSeqs int) (*setEval, error) {
	tb, err := model.NewTaskBatch(tasks)
	if err != nil {
		return nil, err
	}
	s := model.NewSearcher(m)
	s.MaxSeqs = maxSeqs
	return &setEval{m: m, s: s, tb: tb, sc: sc, seed: seed, chunk: s.Chunk(sc.Starts, tb.M),
		rep: setReport{Tasks: tb.N, Detail: map[string]methodStats{}}, all: map[string][]model.Result{}}, nil
}

// run answers the set's tasks with one method ("inductor", "prior" or
// "gradient"), chunk by chunk; a zero deadline means none, else no chunk
// starts after it. done is false when the deadline left tasks unanswered.
func (e *setEval) run(method string, deadline time.Time) (done bool, err error) {
	var fn func(*model.TaskBatch, uint64) []model.Result
	switch method {
	case "inductor":
		fn = func(c *model.TaskBatch, _ uint64) []model.Result { return e.s.Induce(c) }
	case "prior":
		fn = func(c *model.TaskBatch, sd uint64) []model.Result { return e.s.Prior(c, e.sc.Starts, sd) }
	case "gradient":
		fn = func(c *model.TaskBatch, sd uint64) []model.Result { return e.s.Gradient(c, e.sc, sd, nil) }
	default:
		return false, fmt.Errorf("eval: unknown method %q", method)
	}
	t0 := time.Now()
	var res []model.Result
	done = true
	for lo := 0; lo < e.tb.N; lo += e.chunk {
		if !deadline.IsZero() && time.Now().After(deadline) {
			done = false
			break
		}
		hi := min(e.tb.N, lo+e.chunk)
		res = append(res, fn(e.tb.Slice(lo, hi), e.seed+uint64(lo))...)
		if err := e.m.B.Err(); err != nil {
			return false, err
		}
	}
	e.all[method] = res
	st := summarize(res, e.tb.M)
	st.WallS = time.Since(t0).Seconds()
	e.rep.Detail[method] = st
	switch method {
	case "inductor":
		e.rep.Inductor = st.Accuracy
	case "prior":
		e.rep.Prior = st.Accuracy
	case "gradient":
		e.rep.Gradient = st.Accuracy
	}
	return done, nil
}

func summarize(res []model.Result, pairs int) methodStats {
	var st methodStats
	var steps []float64
	for _, r := range res {
		if r.Correct {
			st.Accuracy++
		}
		if r.SpecPairs == pairs {
			st.SpecSolved++
		}
		if r.SolvedAt > 0 {
			steps = append(steps, float64(r.SolvedAt))
		}
	}
	st.TasksDone = len(res)
	if len(res) == 0 {
		return st
	}
	n := float64(len(res))
	st.Accuracy /= n
	st.SpecSolved /= n
	if len(steps) > 0 {
		sort.Float64s(steps)
		st.MedianSteps = steps[len(steps)/2]
		sum := 0.0
		for _, v := range steps {
			sum += v
		}
		st.MeanSteps = sum / float64(len(steps))
	}
	return st
}

// loadWeights reads a weights (or checkpoint) file and builds its model.
func loadWeights(b model.Backend, path string) (*model.Model, *model.WeightsFile, error) {
	if path == "" {
		return nil, nil, fmt.Errorf("--weights is required")
	}
	wf, err := model.ReadWeightsFile(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := model.LoadModel(b, wf, path)
	if err != nil {
		return nil, nil, err
	}
	return m, wf, nil
}

// checkEveryUsage is the help text of --check-every.
const searchSetUsage = "override one search setting of the weights' config, key=value (repeatable): --set search.sigma=1 --set search.lr=0.3 (search.* only)"

const checkEveryUsage = "gradient search: hard-program check (selection, early exit) every N steps and at the last (default: the config's; 1 = every step)"

// searchFlags applies --starts, --search-steps and --check-every (0 keeps
// the config's value) to the config's search settings.
func searchFlags(sc model.SearchConfig, starts, steps, checkEvery int) (model.SearchConfig, error) {
	if starts < 0 || steps < 0 || checkEvery < 0 {
		return sc, fmt.Errorf("--starts, --search-steps and --check-every must be positive")
	}
	if checkEvery > 0 {
		sc.CheckEvery = checkEvery
	}
	if starts > 0 {
		sc.Starts = starts
	}
	if steps > 0 {
		sc.Steps = steps
	}
	return sc, nil
}

// splitOf resolves --split, defaulting to the split the weights were trained on.
func splitOf(flagValue string, wf *model.WeightsFile) (model.Split, error) {
	if flagValue == "" {
		flagValue = wf.Provenance.Split
	}
	sp, err := model.ParseSplit(flagValue)
	if err != nil {
		return "", fmt.Errorf("--split: %w", err)
	}
	return sp, nil
}
