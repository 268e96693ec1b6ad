// native solve: answers every task of a JSONL file with a search method and
// prints, per task, the prediction, the program, whether it reproduces the
// specification and whether the answer is right when the file has it.

package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/nli-go/nli/model"
)

// solved is one output record of native solve.
type solved struct {
	ID        string  `json:"id"`
	Pred      []int32 `json:"prediction"`
	Program   []int   `json:"program"`
	SpecPairs int     `json:"spec_pairs"`
	Pairs     int     `json:"pairs"`
	Reproduce bool    `json:"reproduces_spec"`
	SolvedAt  int     `json:"solved_at_step"`
	Correct   *bool   `json:"correct,omitempty"` // absent when the file has no answer
}

func cmdSolve(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("solve", stderr)
	weights := fs.String("weights", "", "weights file (.nliw.sz) (required)")
	tasksPath := fs.String("tasks", "", "JSONL task file (required)")
	method := fs.String("method", "gradient", "inductor, prior or gradient")
	starts := fs.Int("starts", 0, "search starts S (default: the config's)")
	searchSteps := fs.Int("search-steps", 0, "gradient search steps N (default: the config's)")
	seed := fs.Uint64("seed", 0, "search seed")
	strict := fs.Bool("strict", true, "reject unknown keys in the task file")
	device := fs.String("device", "cpu", "compute device: cpu or cuda")
	workers := fs.Int("workers", 0, "CPU worker goroutines (0 = all cores)")
	asJSON := fs.Bool("json", false, "print one JSON object per task")
	maxSeqs := fs.Int("max-seqs", 8192, "most sequences (tasks × starts × pairs) searched in one batch")
	checkEvery := fs.Int("check-every", 0, checkEveryUsage)
	var sets setFlags
	fs.Var(&sets, "set", searchSetUsage)
	tf32 := fs.Bool("tf32", true, tf32Usage)
	fastGELU := fs.Bool("fast-gelu", true, fastGELUUsage)
	fastGumbel := fs.Bool("fast-gumbel", true, fastGumbelUsage)
	fastSoftmax := fs.Bool("fast-softmax", true, fastSoftmaxUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *maxSeqs <= 0 {
		return fmt.Errorf("--max-seqs = %d, must be positive", *maxSeqs)
	}
	if *tasksPath == "" {
		return fmt.Errorf("--tasks is required")
	}
	if *method != "inductor" && *method != "prior" && *method != "gradient" {
		return fmt.Errorf("--method %q: want inductor, prior or gradient", *method)
	}
	tasks, err := model.ReadTasksFile(*tasksPath, *strict)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		return fmt.Errorf("%s: no tasks", *tasksPath)
	}
	b, err := newBackend(*device, *workers)
	if err != nil {
		return err
	}
	setTF32(b, *tf32)
	setFastGELU(b, *fastGELU)
	setFastGumbel(b, *fastGumbel)
	setFastSoftmax(b, *fastSoftmax)
	m, _, err := loadWeights(b, *weights)
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
	s := model.NewSearcher(m)
	s.MaxSeqs = *maxSeqs
	// Tasks with the same number of pairs share a batch.
	results := make([]model.Result, len(tasks))
	groups := map[int][]int{}
	var order []int
	for i, t := range tasks {
		k := len(t.Train)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		idx := groups[k]
		chunk := s.Chunk(sc.Starts, k)
		for lo := 0; lo < len(idx); lo += chunk {
			part := idx[lo:min(len(idx), lo+chunk)]
			sub := make([]model.Task, len(part))
			for j, i := range part {
				sub[j] = tasks[i]
			}
			tb, err := model.NewTaskBatch(sub)
			if err != nil {
				return fmt.Errorf("%s: %w", *tasksPath, err)
			}
			var res []model.Result
			switch *method {
			case "inductor":
				res = s.Induce(tb)
			case "prior":
				res = s.Prior(tb, sc.Starts, *seed+uint64(lo))
			default:
				res = s.Gradient(tb, sc, *seed+uint64(lo), nil)
			}
			if err := b.Err(); err != nil {
				return err
			}
			for j, i := range part {
				results[i] = res[j]
			}
		}
	}
	right, known, repro := 0, 0, 0
	enc := json.NewEncoder(stdout)
	for i, t := range tasks {
		r := results[i]
		rec := solved{ID: t.ID, Pred: r.Pred, Program: r.Program, SpecPairs: r.SpecPairs, Pairs: len(t.Train),
			Reproduce: r.SpecPairs == len(t.Train), SolvedAt: r.SolvedAt}
		if t.Test[0].Output != nil {
			c := r.Correct
			rec.Correct = &c
			known++
			if c {
				right++
			}
		}
		if rec.Reproduce {
			repro++
		}
		if *asJSON {
			if err := enc.Encode(rec); err != nil {
				return err
			}
			continue
		}
		mark := "?"
		if rec.Correct != nil {
			mark = map[bool]string{true: "right", false: "wrong"}[*rec.Correct]
		}
		fmt.Fprintf(stdout, "%-24s pred %v  program %v  spec %d/%d  %s\n", t.ID, r.Pred, r.Program, r.SpecPairs, len(t.Train), mark)
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%d tasks: %d reproduce their specification", len(tasks), repro)
		if known > 0 {
			fmt.Fprintf(stdout, "; %d/%d answers right (%.3f)", right, known, float64(right)/float64(known))
		}
		fmt.Fprintln(stdout)
	}
	return nil
}
