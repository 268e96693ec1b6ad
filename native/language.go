// native language: prints the learned language of a weights file: what each
// used symbol does alone, how the inductor writes each training program, and
// how each OOD program composes from the recognised symbols (with how often
// the interpreter runs that composition right), and how well the inductor's
// encoder tells the training programs apart (a nearest-centroid probe).

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/nli-go/nli/model"
)

func cmdLanguage(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("language", stderr)
	weights := fs.String("weights", "", "weights file (.nliw.sz) (required)")
	split := fs.String("split", "", "split whose training programs probe the inductor (default: the weights' own)")
	tasks := fs.Int("tasks", 100, "ID tasks used to count symbol uses")
	probes := fs.Int("probes", 32, "random inputs each symbol is run on")
	all := fs.Bool("all", false, "describe every symbol, not only the used ones")
	seed := fs.Uint64("seed", 1, "seed of the probe tasks and inputs")
	device := fs.String("device", "cpu", "compute device: cpu or cuda")
	workers := fs.Int("workers", 0, "CPU worker goroutines (0 = all cores)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *tasks <= 0 || *tasks > 100000 || *probes <= 0 || *probes > 10000 {
		return fmt.Errorf("--tasks must be in 1..100000 and --probes in 1..10000")
	}
	b, err := newBackend(*device, *workers)
	if err != nil {
		return err
	}
	m, wf, err := loadWeights(b, *weights)
	if err != nil {
		return err
	}
	sp, err := splitOf(*split, wf)
	if err != nil {
		return err
	}
	lang, err := model.DescribeLanguage(model.NewSearcher(m), sp, *tasks, m.Cfg.Train.Pairs, *probes, *seed, *all)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(lang)
	}
	fmt.Fprintf(stdout, "learned language of %s (%s; %d ID tasks, %d probe inputs)\n\n", *weights, sp, *tasks, *probes)
	effs, w := make([]string, len(lang.Symbols)), len("alone it does")
	for i, s := range lang.Symbols {
		effs[i] = s.Effect
		if s.Closest != "" {
			effs[i] += fmt.Sprintf(" (~%s, %.0f%% of positions)", s.Closest, 100*s.PosMatch)
		}
		w = max(w, utf8.RuneCountInString(effs[i]))
	}
	fmt.Fprintf(stdout, "%-6s %5s  %-*s %6s  %s\n", "symbol", "uses", w, "alone it does", "match", "example: input → output")
	for i, s := range lang.Symbols {
		fmt.Fprintf(stdout, "%-6d %5d  %-*s %5.0f%%  %v → %v\n", s.Symbol, s.Uses, w, effs[i], 100*s.Match, s.Input, s.Output)
	}
	fmt.Fprintf(stdout, "\n%-16s %-28s %s\n", "program", "induced symbols (no SKIPs)", "share of its tasks")
	for _, p := range lang.Programs {
		fmt.Fprintf(stdout, "%-16s %-28s %.2f of %d\n", p.Program, fmt.Sprint(p.Symbols), p.Share, p.Tasks)
	}
	fmt.Fprintf(stdout, "\n%-16s %-32s %s\n", "OOD program", "composed of symbols", "interpreter exact on the probes")
	for _, c := range lang.OOD {
		if c.Symbols == nil {
			fmt.Fprintf(stdout, "%-16s %-32s -\n", c.Program, "(no composition of recognised symbols)")
			continue
		}
		fmt.Fprintf(stdout, "%-16s %-32s %.0f%%\n", c.Program, fmt.Sprint(c.Symbols), 100*c.Exact)
	}
	if e := lang.Encoder; e != nil {
		fmt.Fprintf(stdout, "\nencoder probe: nearest centroid of the pooled encodings by hidden program, fit on half of the tasks: %.3f on the other half\n", e.Accuracy)
		fmt.Fprintf(stdout, "%-16s %-8s %s\n", "program", "right", "most often taken for")
		for _, p := range e.Programs {
			fmt.Fprintf(stdout, "%-16s %-8s %s\n", p.Program, fmt.Sprintf("%d/%d", p.Right, p.Tasks), map[bool]string{true: fmt.Sprintf("%s (%d)", p.Confused, p.Times)}[p.Confused != ""])
		}
	}
	return nil
}
