// native train --candidates N: best of N. The run trains N candidates, one
// after another, each a whole native train run in --out/candidate-c with
// seed seed·N + c, then keeps the one native select picks (the lowest mean
// training NLL over the last 500 steps): its weights become --out's
// model.nliw.sz, the scores --out's select.json (docs/DESIGN.md, "Best of
// three"). Interrupted or --stop-after: the candidate saves its checkpoint
// and the run stops; --resume continues it, skips finished candidates and
// starts the rest.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nli-go/nli/model"
)

// selectFile holds a best-of-N run's candidate scores; candidatesFile
// records how the run was started (N and the seed), so that --resume
// continues the same candidates.
const (
	selectFile     = "select.json"
	candidatesFile = "candidates.json"
)

// candidatesStart is candidatesFile's content.
type candidatesStart struct {
	Candidates int    `json:"candidates"`
	Seed       uint64 `json:"seed"`
}

// readCandidatesStart reads out's candidatesFile; ok is false when there is none.
func readCandidatesStart(out string) (st candidatesStart, ok bool, err error) {
	path := filepath.Join(out, candidatesFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("%s: %w", path, err)
	}
	if st.Candidates < 2 || st.Candidates > 100 {
		return st, false, fmt.Errorf("%s: candidates = %d, want 2 to 100", path, st.Candidates)
	}
	return st, true, nil
}

// resolveCandidates turns --candidates (0: the default) into N: the
// recipe's model.SymCandidates for the sym preset, 1 for other configs;
// under --resume, what the run in out was started with (candidatesFile,
// which must also name seed).
func resolveCandidates(flagN int, cfgName, out string, seed uint64, resume bool) (int, error) {
	if flagN < 0 || flagN > 100 {
		return 0, fmt.Errorf("--candidates = %d, want 1 to 100 (or 0: %d with --config sym, else 1)", flagN, model.SymCandidates)
	}
	if resume && out != "" {
		st, ok, err := readCandidatesStart(out)
		if err != nil {
			return 0, fmt.Errorf("--resume: %w", err)
		}
		switch {
		case ok && flagN != 0 && flagN != st.Candidates:
			return 0, fmt.Errorf("--candidates %d: the run in %s was started with --candidates %d", flagN, out, st.Candidates)
		case ok && st.Seed != seed:
			return 0, fmt.Errorf("--seed %d: the run in %s was started with --seed %d", seed, out, st.Seed)
		case ok:
			return st.Candidates, nil
		case flagN != 0:
			return flagN, nil
		case fileExists(candidateDir(out, 0)):
			return 0, fmt.Errorf("--resume: %s holds candidates but no %s; pass the --candidates it was started with", out, candidatesFile)
		}
		return 1, nil // a single run's checkpoint (train reports it if missing)
	}
	if flagN != 0 {
		return flagN, nil
	}
	if cfgName == "sym" {
		return model.SymCandidates, nil
	}
	return 1, nil
}

// candidateDir is candidate c's run folder inside out.
func candidateDir(out string, c int) string {
	return filepath.Join(out, "candidate-"+strconv.Itoa(c))
}

// trainCandidates runs native train's args n times into candidate folders
// of out (later flags override earlier ones, so each call appends its own
// --out, --seed and --candidates 1), then selects.
func trainCandidates(args []string, out string, seed uint64, n int, resume bool, stdout, stderr io.Writer) error {
	if seed > (math.MaxUint64-uint64(n-1))/uint64(n) {
		return fmt.Errorf("--seed %d with --candidates %d: the candidates' seeds (seed·%d + c) overflow", seed, n, n)
	}
	if !resume && (fileExists(candidateDir(out, 0)) || fileExists(filepath.Join(out, candidatesFile))) {
		return fmt.Errorf("--out %s already holds candidates; pass --resume to continue or choose another directory", out)
	}
	if !resume && fileExists(filepath.Join(out, checkpointFile)) {
		return fmt.Errorf("--out %s already holds a run; pass --resume to continue it or choose another directory", out)
	}
	if !resume { // under --resume, resolveCandidates checked N and the seed against the record
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		js, _ := json.Marshal(candidatesStart{Candidates: n, Seed: seed})
		if err := writeFileAtomic(filepath.Join(out, candidatesFile), append(js, '\n')); err != nil {
			return err
		}
	}
	// A candidate not yet started under --resume takes the config a started one wrote.
	startedConfig := ""
	if resume {
		for c := range n {
			if p := filepath.Join(candidateDir(out, c), configFile); fileExists(p) {
				startedConfig = p
				break
			}
		}
		if startedConfig == "" {
			return fmt.Errorf("--resume: %s holds no started candidate (%s)", out, candidateDir(out, 0))
		}
	}
	dirs := make([]string, n)
	for c := range n {
		dir := candidateDir(out, c)
		dirs[c] = dir
		if resume && fileExists(filepath.Join(dir, weightsFile)) { // without --resume, train refuses the folder
			fmt.Fprintf(stdout, "candidate %d of %d: finished already (%s)\n", c+1, n, dir)
			continue
		}
		call := append(append([]string{}, args...), "--candidates=1", "--out="+dir,
			"--seed="+strconv.FormatUint(seed*uint64(n)+uint64(c), 10))
		switch {
		case !resume:
		case fileExists(filepath.Join(dir, checkpointFile)):
			call = append(call, "--resume=true")
		default:
			call = append(call, "--resume=false", "--config="+startedConfig)
		}
		fmt.Fprintf(stdout, "candidate %d of %d: %s, seed %d\n", c+1, n, dir, seed*uint64(n)+uint64(c))
		if err := cmdTrain(call, stdout, stderr); err != nil {
			if c == 0 && !resume && !fileExists(filepath.Join(dir, configFile)) {
				// Nothing started (a device that cannot be opened, say): no record either,
				// so that the same command can simply be run again.
				os.Remove(filepath.Join(out, candidatesFile))
			}
			if errors.Is(err, errUsage) {
				return err
			}
			return fmt.Errorf("candidate %d (%s): %w", c, dir, err)
		}
		if !fileExists(filepath.Join(dir, weightsFile)) {
			fmt.Fprintf(stdout, "stopped in candidate %d of %d; continue with --resume\n", c+1, n)
			return nil
		}
	}
	cands, best, err := selectRuns(dirs, 500)
	if err != nil {
		return err
	}
	js, _ := json.MarshalIndent(selectReport(cands, best, 500, filepath.Join(out, weightsFile)), "", "  ")
	if err := writeFileAtomic(filepath.Join(out, selectFile), append(js, '\n')); err != nil {
		return err
	}
	if err := copyWeights(dirs[best], filepath.Join(out, weightsFile)); err != nil {
		return err
	}
	printCandidates(stdout, cands)
	fmt.Fprintf(stdout, "best of %d: %s (training NLL %.6g over its last 500 steps); weights %s\n",
		n, dirs[best], cands[best].NLL, filepath.Join(out, weightsFile))
	return nil
}

// fileExists reports whether path names an existing file or folder.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
