// native gen: writes a JSONL task file of one split and part, fixed by seed.

package main

import (
	"fmt"
	"io"

	"github.com/nli-go/nli/model"
)

func cmdGen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gen", stderr)
	split := fs.String("split", "", "task split: shift-l, shift-p or comp-i (required)")
	part := fs.String("part", "ood", "train, id or ood")
	n := fs.Int("n", 100, "number of tasks")
	pairs := fs.Int("pairs", 4, "specification pairs per task")
	seed := fs.Uint64("seed", 1234, "seed (the same seed gives the same tasks)")
	out := fs.String("out", "", "output file (default: standard output)")
	if err := parse(fs, args); err != nil {
		return err
	}
	sp, err := model.ParseSplit(*split)
	if err != nil {
		return fmt.Errorf("--split: %w", err)
	}
	pt, err := model.ParsePart(*part)
	if err != nil {
		return fmt.Errorf("--part: %w", err)
	}
	if *n <= 0 || *n > 1_000_000 {
		return fmt.Errorf("--n = %d, want 1..1000000", *n)
	}
	if *pairs <= 0 || *pairs > 64 {
		return fmt.Errorf("--pairs = %d, want 1..64", *pairs)
	}
	tasks := model.GenTasks(sp, pt, *n, *pairs, *seed)
	if *out == "" {
		return model.WriteTasks(stdout, tasks)
	}
	return model.WriteTasksFile(*out, tasks)
}
