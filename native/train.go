// native train: trains a model on one split, writing metrics (JSONL),
// checkpoints (atomically, resumable bit for bit) and the final weights.

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nli-go/nli/model"
	"github.com/schollz/progressbar/v3"
)

// File names inside a run directory.
const (
	checkpointFile = "checkpoint" + model.WeightsFileExt
	weightsFile    = "model" + model.WeightsFileExt
	metricsFile    = "metrics.jsonl"
	configFile     = "config.json"
)

func cmdTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", stderr)
	split := fs.String("split", "", "task split: shift-l, shift-p or comp-i (required)")
	cfgName := fs.String("config", "sym", "config preset (sym: the recipe, with the contrast loss for comp-i; default: SPEC's MLP model; tiny: CPU smoke runs) or a JSON config file")
	steps := fs.Int("steps", 0, "total training steps (required; the temperature schedule spans them)")
	seed := fs.Uint64("seed", 0, "run seed (data stream and noise)")
	out := fs.String("out", "", "run directory (required)")
	resume := fs.Bool("resume", false, "continue the run in --out from its checkpoint")
	device := fs.String("device", "cpu", "compute device: cpu or cuda")
	workers := fs.Int("workers", 0, "CPU worker goroutines (0 = all cores)")
	batch := fs.Int("batch", 0, "override train.batch")
	lr := fs.Float64("lr", 0, "override train.lr")
	lambda := fs.Float64("lambda", -1, "override train.lambda")
	logEvery := fs.Int("log-every", 0, "override train.log_every")
	saveEvery := fs.Int("save-every", 0, "override train.save_every")
	quiet := fs.Bool("quiet", false, "no progress bar")
	stopAfter := fs.Int("stop-after", 0, "stop with a checkpoint after this many steps of this invocation (continue with --resume)")
	diag := fs.Bool("diag", true, "inductor diagnostics (sym_total, n_prog, mi, hard_acc, gn_* …) in the metrics of log steps")
	tf32 := fs.Bool("tf32", false, "TF32 tensor-core matrix products (cuda only; changes training numerics; default float32)")
	candidates := fs.Int("candidates", 0, "best of N: train N runs (--out/candidate-c, seed seed·N + c, one after another) and keep the one with the lowest training NLL over its last 500 steps as --out's weights (native select; docs/DESIGN.md \"Best of three\"); 0: the recipe's 3 with --config sym, else 1 (with --resume: what the run in --out was started with)")
	var sets setFlags
	fs.Var(&sets, "set", "override one config field, key=value with the config's JSON names (repeatable): --set train.head_lr_mult=0.2 --set exec=film")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	if *steps <= 0 {
		return fmt.Errorf("--steps = %d, must be positive", *steps)
	}
	sp, err := model.ParseSplit(*split)
	if err != nil {
		return fmt.Errorf("--split: %w", err)
	}
	// trainConfig is a new run's config: the preset (sym: the split's
	// recipe) or file, then --set, then the flags that override fields.
	trainConfig := func() (model.Config, error) {
		cfg, err := model.SymRecipeFor(sp), error(nil)
		if *cfgName != "sym" {
			if cfg, err = loadConfig(*cfgName); err != nil {
				return cfg, err
			}
		}
		if cfg, err = applySets(cfg, sets); err != nil {
			return cfg, err
		}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "batch":
				cfg.Train.Batch = *batch
			case "lr":
				cfg.Train.LR = *lr
			case "lambda":
				cfg.Train.Lambda = *lambda
			case "log-every":
				cfg.Train.LogEvery = *logEvery
			case "save-every":
				cfg.Train.SaveEvery = *saveEvery
			}
		})
		if err := cfg.Validate(); err != nil {
			return cfg, fmt.Errorf("--config %s: %w", *cfgName, err)
		}
		return cfg, nil
	}
	n, err := resolveCandidates(*candidates, *cfgName, *out, *seed, *resume)
	if err != nil {
		return err
	}
	if n > 1 {
		if err := checkDevice(*device); err != nil {
			return err
		}
		if !*resume { // a bad config fails here, before any folder is made
			if _, err := trainConfig(); err != nil {
				return err
			}
		}
		return trainCandidates(args, *out, *seed, n, *resume, stdout, stderr)
	}
	b, err := newBackend(*device, *workers)
	if err != nil {
		return err
	}
	if c, ok := b.(interface{ Close() error }); ok {
		// After tr.Close (deferred later, run first): a device context goes
		// with its memory (train --candidates runs several trainings).
		defer func() {
			if err := c.Close(); err != nil {
				fmt.Fprintf(stderr, "native train: closing the %s backend: %v\n", b.Name(), err)
			}
		}()
	}
	setTF32(b, *tf32)
	ckPath := filepath.Join(*out, checkpointFile)

	var tr *model.Trainer
	if *resume {
		if len(sets) > 0 {
			return errors.New("--set with --resume: a resumed run keeps the config of its checkpoint")
		}
		wf, err := model.ReadWeightsFile(ckPath)
		if err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
		if tr, err = model.ResumeTrainer(b, wf, ckPath); err != nil {
			return err
		}
		if tr.Split != sp {
			return fmt.Errorf("--resume: %s was trained on %s, not %s", ckPath, tr.Split, sp)
		}
		if tr.Steps != *steps {
			return fmt.Errorf("--resume: %s is a run of %d steps, not %d (the schedule depends on it)", ckPath, tr.Steps, *steps)
		}
		if err := trimMetrics(filepath.Join(*out, metricsFile), tr.Attempt, tr.Step); err != nil {
			return err
		}
	} else {
		if _, err := os.Stat(ckPath); err == nil {
			return fmt.Errorf("--out %s already holds a run; pass --resume to continue it or choose another directory", *out)
		}
		cfg, err := trainConfig()
		if err != nil {
			return err
		}
		m, err := model.NewModel(b, cfg)
		if err != nil {
			return fmt.Errorf("--config %s: %w", *cfgName, err)
		}
		m.Init(*seed)
		if tr, err = model.NewTrainer(m, sp, *steps, *seed); err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		cj, _ := json.MarshalIndent(cfg, "", "  ")
		if err := writeFileAtomic(filepath.Join(*out, configFile), append(cj, '\n')); err != nil {
			return err
		}
	}
	defer tr.Close() // stops the data producer; every return (Ctrl-C, --stop-after, errors) passes here
	cfg := tr.M.Cfg
	mf, err := os.OpenFile(filepath.Join(*out, metricsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer mf.Close()

	prov := model.Provenance{GitCommit: gitCommit(), Command: "native train " + strings.Join(args, " ")}
	save := func() error {
		ck, err := tr.Checkpoint(prov)
		if err != nil {
			return err
		}
		ck.Provenance.Created = time.Now().UTC().Format(time.RFC3339)
		return model.WriteWeightsFile(ckPath, ck, model.DTypeF32)
	}

	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	defer signal.Stop(interrupt)

	var bar *progressbar.ProgressBar
	if !*quiet {
		bar = progressbar.NewOptions(tr.Steps, progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription(fmt.Sprintf("train %s %s", sp, cfg.Name)),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("steps"),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish())
		_ = bar.Set(tr.Step)
	}
	samples := cfg.Train.Batch * cfg.Train.Pairs
	t0, lastT, lastStep := time.Now(), time.Now(), tr.Step
	for done := 0; tr.Step < tr.Steps; done++ {
		if *stopAfter > 0 && done == *stopAfter {
			if err := save(); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "stopped at step %d of %d; checkpoint %s, continue with --resume\n", tr.Step, tr.Steps, ckPath)
			return nil
		}
		select {
		case <-interrupt:
			if err := save(); err != nil {
				return fmt.Errorf("interrupted; saving the checkpoint failed: %w", err)
			}
			fmt.Fprintf(stderr, "\ninterrupted at step %d; checkpoint saved, continue with --resume\n", tr.Step)
			return nil
		default:
		}
		tr.Diagnose = *diag && logStep(tr.Step+1, cfg.Train.LogEvery, tr.Steps)
		st, err := tr.TrainStep()
		if err != nil {
			return err
		}
		if bar != nil {
			_ = bar.Add(1)
		}
		if st.Restart != nil && st.Restart.Restarted {
			fmt.Fprintf(stderr, "\nrestart: mean NLL %.3f of steps %d-%d above train.restart_nll %g; attempt %d of at most %d from seed %d\n",
				st.Restart.NLL, st.Step-min(model.RestartWindow, st.Step)+1, st.Step, st.Restart.Threshold,
				tr.Attempt+1, cfg.Train.Restarts+1, model.AttemptSeed(tr.Seed, tr.Attempt))
			if bar != nil {
				_ = bar.Set(0)
			}
		}
		if logStep(st.Step, cfg.Train.LogEvery, tr.Steps) || st.Split != nil || st.Restart != nil || st.Skipped {
			now := time.Now()
			rec := map[string]any{
				"step": st.Step, "loss": st.Loss, "nll": st.NLL, "reg": st.Reg,
				"tau_e": st.TauE, "tau_d": st.TauD, "grad_norm": st.GradNorm, "lr": st.LR,
				"lambda": st.Lambda, "noise": st.Noise,
				"samples_per_s": model.Throughput(samples*(st.Step-lastStep), now.Sub(lastT)),
				"time_s":        now.Sub(t0).Seconds(),
			}
			if st.Diag != nil {
				st.Diag.AddTo(rec)
			}
			if st.Split != nil {
				rec["split"] = st.Split
			}
			if st.HardExecW > 0 {
				rec["hard_nll"], rec["hard_exec_w"] = st.HardNLL, st.HardExecW
			}
			if st.ContrastW > 0 {
				rec["ctr"], rec["ctr_w"] = st.Contrast, st.ContrastW
			}
			if st.ST {
				rec["st"] = true
			}
			if st.Pretrain { // the encoder alone: no NLL, regulariser or program noise
				delete(rec, "nll")
				delete(rec, "reg")
				delete(rec, "lambda")
				delete(rec, "noise")
				rec["pretrain"] = true
			}
			if st.Attempt > 0 {
				rec["attempt"] = st.Attempt
			}
			if st.Restart != nil {
				rec["restart"] = st.Restart
			}
			if cfg.Train.SpikeSkip > 0 { // train.spike_skip: every skipped step has its line
				rec["grad_mean"], rec["skips"] = st.GradMean, tr.Skips
				if st.Skipped {
					rec["skipped"] = true
				}
			}
			line, _ := json.Marshal(rec)
			if _, err := mf.Write(append(line, '\n')); err != nil {
				return fmt.Errorf("write %s: %w", metricsFile, err)
			}
			lastT, lastStep = now, st.Step
			if st.Restart != nil && st.Restart.Restarted {
				lastStep = 0 // the next attempt counts from step 0
			}
		}
		if st.Step%cfg.Train.SaveEvery == 0 || st.Step == tr.Steps {
			if err := save(); err != nil {
				return err
			}
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	wf, err := tr.M.Weights(model.Provenance{Split: string(sp), Steps: tr.Step, Seed: tr.Seed,
		GitCommit: prov.GitCommit, Command: prov.Command, Created: time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	wp := filepath.Join(*out, weightsFile)
	if err := model.WriteWeightsFile(wp, wf, model.DTypeF32); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained %s on %s for %d steps in %.1fs: weights %s\n", cfg.Name, sp, tr.Step, time.Since(t0).Seconds(), wp)
	if tr.Attempt > 0 {
		fmt.Fprintf(stdout, "after %d restarts (train.restart_at): the weights are attempt %d's, seed %d; %d steps trained in all\n",
			tr.Attempt, tr.Attempt, model.AttemptSeed(tr.Seed, tr.Attempt), tr.Attempt*cfg.Train.RestartAt+tr.Step)
	}
	return nil
}

// logStep reports whether step (1-based) of a run of steps steps writes a
// metrics line: every logEvery steps, the first and the last.
func logStep(step, logEvery, steps int) bool {
	return step%logEvery == 0 || step == steps || step == 1
}

// loadConfig resolves a preset name or reads a JSON config file.
func loadConfig(name string) (model.Config, error) {
	if c, err := model.Preset(name); err == nil {
		return c, nil
	}
	if !strings.HasSuffix(name, ".json") {
		return model.Config{}, fmt.Errorf("--config %q: not a preset (tiny, default, sym) nor a .json file", name)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return model.Config{}, fmt.Errorf("--config: %w", err)
	}
	c, err := model.ParseConfig(b)
	if err != nil {
		return model.Config{}, fmt.Errorf("--config %s: %w", name, err)
	}
	return c, nil
}

// trimMetrics drops metric lines logged after the checkpoint's attempt and
// step (train.restart_at: lines carry their attempt, 0 when absent), so a
// resumed run's metrics file reads as one uninterrupted run.
func trimMetrics(path string, attempt, step int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	err = eachLine(path, data, func(ln int, line []byte) error {
		var rec struct {
			Step    *int `json:"step"`
			Attempt int  `json:"attempt"`
		}
		if err := json.Unmarshal(line, &rec); err != nil || rec.Step == nil {
			return fmt.Errorf("%s:%d: not a metrics record", path, ln)
		}
		if rec.Attempt < attempt || rec.Attempt == attempt && *rec.Step <= step {
			keep.Write(line)
			keep.WriteByte('\n')
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeFileAtomic(path, keep.Bytes())
}

// eachLine calls f with each line of the metrics file name's data (1-based
// line numbers, lines up to 16 MiB) and stops at f's first error; a read
// error is reported with name.
func eachLine(name string, data []byte, f func(ln int, line []byte) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for ln := 1; sc.Scan(); ln++ {
		if err := f(ln, sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it into place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// gitCommit returns the VCS revision the binary was built from, if known.
func gitCommit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
