// native select: of several finished training runs of one split (candidates
// trained from different seeds), pick the one whose training NLL at the end
// of the run is lowest, and copy its weights. Training data only: the
// criterion is the mean NLL of the metrics lines of the run's last --window
// steps (docs/DESIGN.md, "Best of three").

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/nli-go/nli/model"
)

// candidate is one run directory's score.
type candidate struct {
	Dir     string  `json:"dir"`
	Split   string  `json:"split"`
	Seed    uint64  `json:"seed"`
	Steps   int     `json:"steps"`   // the final attempt's steps (the weights' provenance)
	Attempt int     `json:"attempt"` // the final attempt (train.restart_at)
	NLL     float64 `json:"nll"`     // mean NLL of the window's metrics lines
	Lines   int     `json:"lines"`   // metrics lines in the window
	Picked  bool    `json:"picked"`
}

func cmdSelect(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("select", stderr)
	window := fs.Int("window", 500, "score: the mean NLL of the metrics lines of the run's last N steps (its log steps and final step)")
	out := fs.String("out", "", "copy the picked run's "+weightsFile+" to this file (written atomically)")
	asJSON := fs.Bool("json", false, "print the candidates as JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: native select [--window N] [--out FILE] [--json] RUN_DIR RUN_DIR...\n\n"+
			"Picks, among finished runs of one split (each a native train --out folder with %s, %s and %s),\n"+
			"the one with the lowest mean training NLL over its last --window steps; ties go to the first given.\n\n", weightsFile, metricsFile, configFile)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		return fmt.Errorf("no run folders given (native select RUN_DIR RUN_DIR...)")
	}
	if *window < 1 {
		return fmt.Errorf("--window = %d, must be ≥ 1", *window)
	}
	cands, best, err := selectRuns(dirs, *window)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := copyWeights(dirs[best], *out); err != nil {
			return err
		}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(selectReport(cands, best, *window, *out), "", "  ")
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	printCandidates(stdout, cands)
	if *out != "" {
		fmt.Fprintf(stdout, "wrote %s (from %s)\n", *out, dirs[best])
	}
	return nil
}

// selectRuns scores every run folder (scoreRun) and returns the scores and
// the index of the lowest, the first of equal ones; the runs must share
// their split.
func selectRuns(dirs []string, window int) ([]candidate, int, error) {
	cands := make([]candidate, len(dirs))
	best := -1
	for i, d := range dirs {
		c, err := scoreRun(d, window)
		if err != nil {
			return nil, 0, err
		}
		if i > 0 && c.Split != cands[0].Split {
			return nil, 0, fmt.Errorf("%s is a %s run and %s a %s run: candidates must share their split", d, c.Split, dirs[0], cands[0].Split)
		}
		cands[i] = c
		if best < 0 || c.NLL < cands[best].NLL {
			best = i
		}
	}
	cands[best].Picked = true
	return cands, best, nil
}

// selectReport is select's JSON: the window, every candidate, the pick and
// where its weights were copied ("" if not).
func selectReport(cands []candidate, best, window int, out string) map[string]any {
	return map[string]any{"window": window, "candidates": cands, "picked": cands[best].Dir, "out": out}
}

// copyWeights copies run folder dir's weights file to path, atomically.
func copyWeights(dir, path string) error {
	data, err := os.ReadFile(filepath.Join(dir, weightsFile))
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// printCandidates writes the candidates as a table, the pick marked.
func printCandidates(w io.Writer, cands []candidate) {
	fmt.Fprintf(w, "%-40s %-8s %6s %7s %8s %12s %6s\n", "run", "split", "seed", "attempt", "steps", "nll", "lines")
	for _, c := range cands {
		mark := ""
		if c.Picked {
			mark = "  <- picked"
		}
		fmt.Fprintf(w, "%-40s %-8s %6d %7d %8d %12.6g %6d%s\n", c.Dir, c.Split, c.Seed, c.Attempt, c.Steps, c.NLL, c.Lines, mark)
	}
}

// scoreRun reads a finished run folder: its weights' provenance (split,
// seed, the final attempt's steps), its config's log_every, and the mean NLL
// of the final attempt's metrics lines at log steps and the final step
// within the last window steps.
func scoreRun(dir string, window int) (candidate, error) {
	c := candidate{Dir: dir}
	wf, err := model.ReadWeightsFile(filepath.Join(dir, weightsFile))
	if err != nil {
		return c, fmt.Errorf("%s: not a finished run: %w", dir, err)
	}
	if wf.Kind != model.WeightsKindWeights {
		return c, fmt.Errorf("%s: %s is a %q file, want the final weights", dir, weightsFile, wf.Kind)
	}
	c.Split, c.Seed, c.Steps = wf.Provenance.Split, wf.Provenance.Seed, wf.Provenance.Steps
	if c.Split == "" || c.Steps <= 0 {
		return c, fmt.Errorf("%s: %s has no split or steps in its provenance", dir, weightsFile)
	}
	cfg, err := loadConfig(filepath.Join(dir, configFile))
	if err != nil {
		return c, fmt.Errorf("%s: %w", dir, err)
	}
	every := cfg.Train.LogEvery
	if every <= 0 {
		return c, fmt.Errorf("%s: %s has train.log_every = %d", dir, configFile, every)
	}
	b, err := os.ReadFile(filepath.Join(dir, metricsFile))
	if err != nil {
		return c, fmt.Errorf("%s: %w", dir, err)
	}
	type line struct {
		Step     int      `json:"step"`
		NLL      *float64 `json:"nll"`
		Attempt  int      `json:"attempt"`
		Pretrain bool     `json:"pretrain"`
	}
	var lines []line
	err = eachLine(metricsFile, b, func(n int, raw []byte) error {
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil
		}
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("%s line %d: %v", metricsFile, n, err)
		}
		lines = append(lines, l)
		c.Attempt = max(c.Attempt, l.Attempt)
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("%s: %w", dir, err)
	}
	last := 0
	for _, l := range lines {
		if l.Attempt == c.Attempt {
			last = max(last, l.Step)
		}
	}
	if last != c.Steps {
		return c, fmt.Errorf("%s: %s ends at step %d of attempt %d, the weights at step %d: not the metrics of these weights", dir, metricsFile, last, c.Attempt, c.Steps)
	}
	sum := 0.0
	for _, l := range lines {
		if l.Attempt != c.Attempt || l.Pretrain || l.NLL == nil || l.Step <= last-window || (l.Step%every != 0 && l.Step != last) {
			continue
		}
		if math.IsNaN(*l.NLL) || math.IsInf(*l.NLL, 0) {
			return c, fmt.Errorf("%s: %s: NLL %v at step %d", dir, metricsFile, *l.NLL, l.Step)
		}
		sum += *l.NLL
		c.Lines++
	}
	if c.Lines == 0 {
		return c, fmt.Errorf("%s: no metrics line with an NLL in the last %d steps (log_every %d)", dir, window, every)
	}
	c.NLL = sum / float64(c.Lines)
	return c, nil
}
