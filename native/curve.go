// native curve: the test-time compute curve of one weights file: accuracy of
// gradient search for every (starts, steps) budget of a grid, each cell a
// separate search exactly as native eval runs that budget, with the inductor
// and prior search as reference rows. Writes curve.json, curve.md and an SVG
// plot; saves after every chunk of tasks, so --resume continues a run that a
// time limit stopped.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nli-go/nli/model"
)

// curveCell is one method and budget on one test set. The counters (tasks
// done, correct, spec, solved_at) are what --resume continues from; the rates
// are over the tasks done.
type curveCell struct {
	Starts     int     `json:"starts,omitempty"` // S (prior: samples); absent for the inductor
	Steps      int     `json:"steps,omitempty"`  // N (gradient search only)
	Accuracy   float64 `json:"accuracy"`
	SpecSolved float64 `json:"spec_solved"` // tasks whose chosen program reproduces every spec pair
	// Median steps to a program reproducing every spec pair, over the tasks
	// solved (gradient only; eval's rule: the upper median); null if none.
	MedianSteps *float64 `json:"median_steps_to_solution"`
	WallS       float64  `json:"wall_s"`
	StartSteps  int64    `json:"start_steps,omitempty"` // tasks × starts × steps actually run (early exit included)
	TasksDone   int      `json:"tasks_done"`
	Correct     int      `json:"correct"`
	Spec        int      `json:"spec"`
	SolvedAt    []int    `json:"solved_at"` // steps to solution of each solved task, in task order
}

// add counts one chunk's results.
func (c *curveCell) add(res []model.Result, pairs int, wall float64, startSteps int64) {
	for _, r := range res {
		if r.Correct {
			c.Correct++
		}
		if r.SpecPairs == pairs {
			c.Spec++
		}
		if r.SolvedAt > 0 {
			c.SolvedAt = append(c.SolvedAt, r.SolvedAt)
		}
	}
	c.TasksDone += len(res)
	c.WallS += wall
	c.StartSteps += startSteps
	n := float64(c.TasksDone)
	c.Accuracy, c.SpecSolved = float64(c.Correct)/n, float64(c.Spec)/n
	c.MedianSteps = nil
	if len(c.SolvedAt) > 0 {
		s := slices.Clone(c.SolvedAt)
		sort.Ints(s)
		med := float64(s[len(s)/2])
		c.MedianSteps = &med
	}
}

// curveSet is one test set's grid.
type curveSet struct {
	Part     string       `json:"part"`
	Tasks    int          `json:"tasks"`
	Inductor *curveCell   `json:"inductor"`
	Prior    []*curveCell `json:"prior"`    // one per starts value, ascending
	Gradient []*curveCell `json:"gradient"` // starts-major: Gradient[i*len(steps)+j] is (starts[i], steps[j])
}

// curveSettings is everything that fixes the numbers; --resume requires the
// same settings.
type curveSettings struct {
	WeightsSHA256 string             `json:"weights_sha256"`
	Split         string             `json:"split"`
	Parts         []string           `json:"parts"`
	Tasks         int                `json:"tasks"`
	Pairs         int                `json:"pairs"`
	Seed          uint64             `json:"seed"`
	Steps         []int              `json:"steps"`
	Starts        []int              `json:"starts"`
	Search        model.SearchConfig `json:"search"` // starts and steps are the cell's
	MaxSeqs       int                `json:"max_seqs"`
	Device        string             `json:"device"`
	TF32          bool               `json:"tf32"`
	FastGELU      bool               `json:"fast_gelu"`
	FastGumbel    bool               `json:"fast_gumbel,omitempty"`
	FastSoftmax   bool               `json:"fast_softmax,omitempty"`
}

// curveWeights is the weights file's provenance.
type curveWeights struct {
	Path       string           `json:"path"`
	Kind       string           `json:"kind"`
	SHA256     string           `json:"sha256"`
	Provenance model.Provenance `json:"provenance"`
	Config     json.RawMessage  `json:"config"`
}

// curveReport is curve.json.
type curveReport struct {
	Settings  curveSettings `json:"settings"`
	Weights   curveWeights  `json:"weights"`
	GitCommit string        `json:"git_commit,omitempty"` // of the curve binary
	Created   string        `json:"created"`
	Updated   string        `json:"updated"`
	Complete  bool          `json:"complete"`
	Sets      []*curveSet   `json:"sets"`
}

// curveFile is the name of the JSON report in --out.
const curveFile = "curve.json"

func cmdCurve(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("curve", stderr)
	weights := fs.String("weights", "", "weights file (.nliw.sz) (required)")
	split := fs.String("split", "", "task split (default: the split the weights were trained on)")
	partsFlag := fs.String("parts", "ood", "test sets, comma-separated: id, ood")
	ntasks := fs.Int("tasks", 500, "tasks per test set (the same tasks for every cell)")
	stepsFlag := fs.String("steps", "1,10,50,200,400", "gradient search steps N, comma-separated")
	startsFlag := fs.String("starts", "1,4,16,64,256,1024", "search starts S, comma-separated (also the prior's sample counts)")
	seed := fs.Uint64("seed", 1234, "test-set and search seed (as native eval's --seed)")
	device := fs.String("device", "cpu", "compute device: cpu or cuda")
	workers := fs.Int("workers", 0, "CPU worker goroutines (0 = all cores)")
	maxSeqs := fs.Int("max-seqs", 8192, "most sequences (tasks × starts × pairs) searched in one batch")
	checkEvery := fs.Int("check-every", 0, checkEveryUsage)
	var sets setFlags
	fs.Var(&sets, "set", searchSetUsage)
	tf32 := fs.Bool("tf32", true, tf32Usage)
	fastGELU := fs.Bool("fast-gelu", true, fastGELUUsage)
	fastGumbel := fs.Bool("fast-gumbel", true, fastGumbelUsage)
	fastSoftmax := fs.Bool("fast-softmax", true, fastSoftmaxUsage)
	out := fs.String("out", "", "output folder for curve.json, curve.md, curve.svg (required)")
	resume := fs.Bool("resume", false, "continue the run in --out (same settings), skipping finished work")
	timeLimit := fs.Float64("time-limit", 0, "stop cleanly (resumable) before a chunk that would start after this many seconds (0 = none)")
	stopAfter := fs.Int("stop-after", 0, "stop (resumable) after this many chunks of tasks (for tests; 0 = run all)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	steps, err := parseIntList("--steps", *stepsFlag)
	if err != nil {
		return err
	}
	starts, err := parseIntList("--starts", *startsFlag)
	if err != nil {
		return err
	}
	parts, err := parseParts(*partsFlag)
	if err != nil {
		return err
	}
	switch {
	case *ntasks <= 0:
		return fmt.Errorf("--tasks = %d, must be positive", *ntasks)
	case *maxSeqs <= 0:
		return fmt.Errorf("--max-seqs = %d, must be positive", *maxSeqs)
	case *checkEvery < 0:
		return fmt.Errorf("--check-every = %d, must be positive", *checkEvery)
	case *stopAfter < 0:
		return fmt.Errorf("--stop-after = %d, must be 0 or positive", *stopAfter)
	case *timeLimit < 0:
		return fmt.Errorf("--time-limit = %g, must be 0 or positive", *timeLimit)
	case *out == "":
		return fmt.Errorf("--out is required")
	case *weights == "":
		return fmt.Errorf("--weights is required")
	}
	if *split != "" {
		if _, err := model.ParseSplit(*split); err != nil {
			return fmt.Errorf("--split: %w", err)
		}
	}
	jsonPath := filepath.Join(*out, curveFile)
	_, statErr := os.Stat(jsonPath)
	if statErr == nil && !*resume {
		return fmt.Errorf("--out %s already holds %s: continue it with --resume, or choose another --out", *out, curveFile)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
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
		return fmt.Errorf("--weights: %w", err)
	}
	if m.Cfg.Search, err = applySearchSets(m.Cfg, sets); err != nil {
		return err
	}
	base, err := searchFlags(m.Cfg.Search, 0, 0, *checkEvery)
	if err != nil {
		return err
	}
	base.Starts, base.Steps = 0, 0
	sp, err := splitOf(*split, wf)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339)
	rep := &curveReport{
		Settings: curveSettings{WeightsSHA256: wf.SHA256, Split: string(sp), Tasks: *ntasks,
			Pairs: m.Cfg.Train.Pairs, Seed: *seed, Steps: steps, Starts: starts, Search: base,
			MaxSeqs: *maxSeqs, Device: b.Name(), TF32: useTF32, FastGELU: useFastGELU, FastGumbel: useFastGumbel,
			FastSoftmax: useFastSoftmax},
		Weights: curveWeights{Path: *weights, Kind: wf.Kind, SHA256: wf.SHA256,
			Provenance: wf.Provenance, Config: json.RawMessage(wf.Config)},
		GitCommit: gitCommit(), Created: now,
	}
	for _, p := range parts {
		rep.Settings.Parts = append(rep.Settings.Parts, string(p))
		set := &curveSet{Part: string(p), Tasks: *ntasks, Inductor: &curveCell{}}
		for _, S := range starts {
			set.Prior = append(set.Prior, &curveCell{Starts: S})
			for _, N := range steps {
				set.Gradient = append(set.Gradient, &curveCell{Starts: S, Steps: N})
			}
		}
		rep.Sets = append(rep.Sets, set)
	}
	if statErr == nil {
		old, err := readCurve(jsonPath)
		if err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
		if err := sameSettings(old.Settings, rep.Settings); err != nil {
			return fmt.Errorf("--resume: %s was made with other settings: %w", jsonPath, err)
		}
		rep.Sets, rep.Created = old.Sets, old.Created
	}

	cr := &curveRun{m: m, rep: rep, out: *out, seed: *seed, base: base, stderr: stderr, quiet: *quiet,
		t0: time.Now(), limit: *timeLimit, stopAfter: *stopAfter}
	for _, set := range rep.Sets {
		part, _ := model.ParsePart(set.Part)
		tasks := model.GenTasks(sp, part, *ntasks, m.Cfg.Train.Pairs, *seed)
		if err := cr.runSet(set, tasks); err != nil {
			if errors.Is(err, errStop) {
				fmt.Fprintf(stdout, "stopped with %d of %d cells done; continue with --resume\n", cr.done(), cr.total())
				return cr.save(true)
			}
			return err
		}
	}
	rep.Complete = true
	if err := cr.save(true); err != nil {
		return err
	}
	fmt.Fprint(stdout, curveMarkdown(rep))
	return nil
}

// errStop stops a run at --time-limit or --stop-after.
var errStop = errors.New("stopped")

// curveRun runs the cells of a report, saving as it goes.
type curveRun struct {
	m      *model.Model
	rep    *curveReport
	out    string
	seed   uint64
	base   model.SearchConfig
	stderr io.Writer
	quiet  bool
	t0     time.Time
	limit  float64
	// stopAfter > 0 stops the run after that many chunks.
	stopAfter, chunks int
	saved             time.Time
}

// runSet runs one test set: the inductor, the prior per starts value, then
// the gradient cells from the cheapest (starts × steps) up, so a time-limited
// call finishes as many cells as it can.
func (cr *curveRun) runSet(set *curveSet, tasks []model.Task) error {
	tb, err := model.NewTaskBatch(tasks)
	if err != nil {
		return err
	}
	s := model.NewSearcher(cr.m)
	s.MaxSeqs = cr.rep.Settings.MaxSeqs
	if err := cr.runCell(set, set.Inductor, tb, s.Chunk(1, tb.M), func(c *model.TaskBatch, _ uint64) ([]model.Result, int64) {
		return s.Induce(c), 0
	}); err != nil {
		return err
	}
	for _, c := range set.Prior {
		S := c.Starts
		if err := cr.runCell(set, c, tb, s.Chunk(S, tb.M), func(c *model.TaskBatch, sd uint64) ([]model.Result, int64) {
			return s.Prior(c, S, sd), 0
		}); err != nil {
			return err
		}
	}
	order := slices.Clone(set.Gradient)
	slices.SortStableFunc(order, func(a, b *curveCell) int {
		return a.Starts*a.Steps - b.Starts*b.Steps
	})
	for _, c := range order {
		sc := cr.base
		sc.Starts, sc.Steps = c.Starts, c.Steps
		if err := cr.runCell(set, c, tb, s.Chunk(sc.Starts, tb.M), func(c *model.TaskBatch, sd uint64) ([]model.Result, int64) {
			ran := 0
			res := s.Gradient(c, sc, sd, func(i model.StepInfo) bool { ran = i.Step; return true })
			return res, int64(c.N) * int64(sc.Starts) * int64(ran)
		}); err != nil {
			return err
		}
	}
	return nil
}

// runCell runs the tasks of one cell not yet done, in chunks of chunk tasks
// with eval's seeds (seed + first task of the chunk), saving after each.
func (cr *curveRun) runCell(set *curveSet, c *curveCell, tb *model.TaskBatch, chunk int,
	run func(*model.TaskBatch, uint64) ([]model.Result, int64)) error {
	if c.TasksDone >= tb.N {
		return nil
	}
	if c.TasksDone%chunk != 0 {
		return fmt.Errorf("--resume: cell S=%d N=%d stopped at task %d, not a chunk boundary (chunk %d)", c.Starts, c.Steps, c.TasksDone, chunk)
	}
	for lo := c.TasksDone; lo < tb.N; lo += chunk {
		if cr.limit > 0 && time.Since(cr.t0).Seconds() > cr.limit || cr.stopAfter > 0 && cr.chunks == cr.stopAfter {
			return errStop
		}
		hi := min(tb.N, lo+chunk)
		t0 := time.Now()
		res, startSteps := run(tb.Slice(lo, hi), cr.seed+uint64(lo))
		if err := cr.m.B.Err(); err != nil {
			return err
		}
		c.add(res, tb.M, time.Since(t0).Seconds(), startSteps)
		cr.chunks++
		if err := cr.save(hi == tb.N); err != nil {
			return err
		}
	}
	if !cr.quiet {
		name := "inductor"
		switch {
		case c.Steps > 0:
			name = fmt.Sprintf("gradient S=%d N=%d", c.Starts, c.Steps)
		case c.Starts > 0:
			name = fmt.Sprintf("prior S=%d", c.Starts)
		}
		med := "-"
		if c.MedianSteps != nil {
			med = strconv.FormatFloat(*c.MedianSteps, 'f', 0, 64)
		}
		fmt.Fprintf(cr.stderr, "curve %s %-3s %-24s accuracy %.3f  spec %.3f  median steps %-4s %8.1f s  [%d/%d]\n",
			cr.rep.Settings.Split, set.Part, name, c.Accuracy, c.SpecSolved, med, c.WallS, cr.done(), cr.total())
	}
	return nil
}

// done and total count finished and all cells of the report.
func (cr *curveRun) done() int {
	n := 0
	for _, set := range cr.rep.Sets {
		for _, c := range set.cells() {
			if c.TasksDone >= set.Tasks {
				n++
			}
		}
	}
	return n
}

func (cr *curveRun) total() int {
	n := 0
	for _, set := range cr.rep.Sets {
		n += len(set.cells())
	}
	return n
}

// cells lists every cell of the set.
func (set *curveSet) cells() []*curveCell {
	return append(append([]*curveCell{set.Inductor}, set.Prior...), set.Gradient...)
}

// save writes curve.json, curve.md and the plots, at most every 2 s unless
// force.
func (cr *curveRun) save(force bool) error {
	if !force && time.Since(cr.saved) < 2*time.Second {
		return nil
	}
	cr.saved = time.Now()
	cr.rep.Updated = cr.saved.UTC().Format(time.RFC3339)
	js, err := json.MarshalIndent(cr.rep, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(cr.out, curveFile), append(js, '\n')); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(cr.out, "curve.md"), []byte(curveMarkdown(cr.rep))); err != nil {
		return err
	}
	for _, set := range cr.rep.Sets {
		if err := writeFileAtomic(filepath.Join(cr.out, curveSVGName(cr.rep, set)), []byte(curveSVG(cr.rep, set))); err != nil {
			return err
		}
	}
	return nil
}

// curveSVGName is curve.svg for a single test set, curve-PART.svg for several.
func curveSVGName(rep *curveReport, set *curveSet) string {
	if len(rep.Sets) == 1 {
		return "curve.svg"
	}
	return "curve-" + set.Part + ".svg"
}

// readCurve reads a curve.json written by an earlier run.
func readCurve(path string) (*curveReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep curveReport
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// sameSettings returns nil if a and b are equal, else an error naming the
// first setting that differs.
func sameSettings(a, b curveSettings) error {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var ma, mb map[string]json.RawMessage
	json.Unmarshal(ja, &ma)
	json.Unmarshal(jb, &mb)
	keys := make([]string, 0, len(ma))
	for k := range ma {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !bytes.Equal(ma[k], mb[k]) {
			return fmt.Errorf("%s was %s, now %s", k, ma[k], mb[k])
		}
	}
	return nil
}

// parseIntList parses a comma-separated list of distinct positive integers
// for the flag name and returns it sorted ascending.
func parseIntList(name, s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s: empty list", name)
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an integer", name, f)
		}
		if v <= 0 {
			return nil, fmt.Errorf("%s: %d is not positive", name, v)
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("%s: %d is listed twice", name, v)
		}
		out = append(out, v)
	}
	sort.Ints(out)
	return out, nil
}

// parseParts parses --parts: distinct test sets, id or ood.
func parseParts(s string) ([]model.Part, error) {
	var out []model.Part
	for _, f := range strings.Split(s, ",") {
		p, err := model.ParsePart(strings.TrimSpace(f))
		if err != nil || p == model.PartTrain {
			return nil, fmt.Errorf("--parts: %q is not id or ood", strings.TrimSpace(f))
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("--parts: %s is listed twice", p)
		}
		out = append(out, p)
	}
	return out, nil
}
