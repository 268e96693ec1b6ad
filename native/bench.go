// native bench: training steps per second and gradient-search start-steps
// per second of one config on one device, optionally with a per-op time
// breakdown (docs/bench_gpu.sh runs it beside the PyTorch reference).

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nli-go/nli/model"
)

// benchReport is what native bench measures.
type benchReport struct {
	Device            string           `json:"device"`
	Config            string           `json:"config"`
	TrainStepsPerS    float64          `json:"train_steps_per_s"`
	SamplesPerS       float64          `json:"train_samples_per_s"`
	SearchTasks       int              `json:"search_tasks"`
	SearchStarts      int              `json:"search_starts"`
	SearchTF32        bool             `json:"search_tf32"`         // search Gemms in TF32 (training is float32)
	CheckEvery        int              `json:"search_check_every"`  // hard-program check every N steps
	SearchFold        bool             `json:"search_fold"`         // the interpreter's folded search form
	SearchFastGELU    bool             `json:"search_fast_gelu"`    // search GELUs in float32 (cuda --fast-gelu)
	SearchFastGumbel  bool             `json:"search_fast_gumbel"`  // search Gumbel noise in float32 (cuda --fast-gumbel)
	SearchFused       bool             `json:"search_fused_gumbel"` // state noise drawn inside SoftmaxMix (cuda --fused-gumbel)
	SearchFastSoftmax bool             `json:"search_fast_softmax"` // the state softmax in float32 (cuda --fast-softmax)
	StartStepsPerS    float64          `json:"search_start_steps_per_s"`
	TrainProfile      []model.OpTime   `json:"train_profile,omitempty"`
	SearchProfile     []model.OpTime   `json:"search_profile,omitempty"`
	TrainGemms        []model.GemmTime `json:"train_gemms,omitempty"` // with --profile: matrix products by shape
	SearchGemms       []model.GemmTime `json:"search_gemms,omitempty"`
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	cfgName := fs.String("config", "default", "config preset or JSON file")
	device := fs.String("device", "cpu", "compute device: cpu or cuda")
	workers := fs.Int("workers", 0, "CPU worker goroutines (0 = all cores)")
	trainSteps := fs.Int("train-steps", 20, "timed training steps (after 3 warm-up steps)")
	searchSteps := fs.Int("search-steps", 10, "timed search steps (after 2 warm-up steps)")
	tasks := fs.Int("tasks", 1, "tasks searched at once")
	starts := fs.Int("starts", 0, "starts per task (default: the config's)")
	checkEvery := fs.Int("check-every", 0, checkEveryUsage)
	fold := fs.Bool("fold", true, "search with the interpreter's folded first layer (false = its training form, for comparison)")
	tf32 := fs.Bool("tf32", true, "search with "+tf32Usage+"; training is always float32 here")
	fastGELU := fs.Bool("fast-gelu", true, "search with "+fastGELUUsage+"; training is always float64 GELU here")
	fastGumbel := fs.Bool("fast-gumbel", true, "search with "+fastGumbelUsage+"; training always draws float64 noise here")
	fusedGumbel := fs.Bool("fused-gumbel", true, "search with the interpreter's state noise drawn inside its softmax (cuda with --fast-gumbel; the same values without a noise buffer; false = a Gumbel pass into a buffer first)")
	fastSoftmax := fs.Bool("fast-softmax", true, "search with "+fastSoftmaxUsage+"; training is always float64 here")
	profile := fs.Bool("profile", false, "time every op (synchronising after each; slower) and print the breakdown")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *trainSteps < 0 || *searchSteps < 0 || *tasks <= 0 || *starts < 0 || *checkEvery < 0 {
		return fmt.Errorf("--train-steps, --search-steps, --starts, --check-every must be ≥ 0 and --tasks positive")
	}
	cfg, err := loadConfig(*cfgName)
	if err != nil {
		return err
	}
	b, err := newBackend(*device, *workers)
	if err != nil {
		return err
	}
	raw := b // the backend itself, for the TF32 and fast-GELU switches
	var prof *model.Profiled
	if *profile {
		prof = model.NewProfiled(b)
		b = prof
	}
	m, err := model.NewModel(b, cfg)
	if err != nil {
		return err
	}
	m.Init(0)
	rep := benchReport{Device: *device, Config: cfg.Name}
	if *trainSteps > 0 {
		tr, err := model.NewTrainer(m, model.SplitShiftL, 1000000, 0)
		if err != nil {
			return err
		}
		defer tr.Close()
		for i := 0; i < 3; i++ {
			if _, err := tr.TrainStep(); err != nil {
				return err
			}
		}
		if prof != nil {
			prof.Reset()
		}
		t0 := time.Now()
		for i := 0; i < *trainSteps; i++ {
			if _, err := tr.TrainStep(); err != nil {
				return err
			}
		}
		if err := b.Sync(); err != nil {
			return err
		}
		d := time.Since(t0).Seconds()
		rep.TrainStepsPerS = float64(*trainSteps) / d
		rep.SamplesPerS = rep.TrainStepsPerS * float64(cfg.Train.Batch*cfg.Train.Pairs)
		if prof != nil {
			rep.TrainProfile, rep.TrainGemms = prof.Profile(), prof.GemmProfile()
		}
	}
	if *searchSteps > 0 {
		sc := cfg.Search
		if *starts > 0 {
			sc.Starts = *starts
		}
		if *checkEvery > 0 {
			sc.CheckEvery = *checkEvery
		}
		sc.Steps = *searchSteps + 2
		rep.SearchTF32 = setTF32(raw, *tf32)
		rep.SearchFastGELU = setFastGELU(raw, *fastGELU)
		rep.SearchFastGumbel = setFastGumbel(raw, *fastGumbel)
		rep.SearchFused = setFusedGumbel(raw, *fusedGumbel)
		rep.SearchFastSoftmax = setFastSoftmax(raw, *fastSoftmax)
		rep.CheckEvery = sc.CheckEvery
		tb, err := model.NewTaskBatch(model.GenTasks(model.SplitShiftL, model.PartOOD, *tasks, cfg.Train.Pairs, 1234))
		if err != nil {
			return err
		}
		s := model.NewSearcher(m)
		s.Plain = !*fold
		rep.SearchFold = *fold
		run := s.StartGradient(tb, sc, 0)
		defer run.Close()
		run.Step()
		run.Step()
		if prof != nil {
			prof.Reset()
		}
		t0 := time.Now()
		n := 0
		for ; n < *searchSteps; n++ {
			if _, more := run.Step(); !more {
				n++
				break
			}
		}
		if err := b.Sync(); err != nil {
			return err
		}
		rep.SearchTasks, rep.SearchStarts = *tasks, sc.Starts
		rep.StartStepsPerS = float64(n**tasks*sc.Starts) / time.Since(t0).Seconds()
		if prof != nil {
			rep.SearchProfile, rep.SearchGemms = prof.Profile(), prof.GemmProfile()
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "%s, config %s: training %.2f steps/s (%.0f samples/s, float32); search %.1f start-steps/s (%d tasks × %d starts, TF32 %v, check every %d, fold %v, fast GELU %v, fast Gumbel %v, fused %v, fast softmax %v)\n",
		rep.Device, rep.Config, rep.TrainStepsPerS, rep.SamplesPerS, rep.StartStepsPerS, rep.SearchTasks, rep.SearchStarts, rep.SearchTF32, rep.CheckEvery, rep.SearchFold, rep.SearchFastGELU, rep.SearchFastGumbel, rep.SearchFused, rep.SearchFastSoftmax)
	printOps(stdout, "training", rep.TrainProfile)
	printOps(stdout, "search", rep.SearchProfile)
	printGemms(stdout, "training", rep.TrainGemms)
	printGemms(stdout, "search", rep.SearchGemms)
	return nil
}

// printOps prints a profile's time per op with each op's share (nothing
// for an empty profile).
func printOps(w io.Writer, part string, rows []model.OpTime) {
	if len(rows) == 0 {
		return
	}
	var total time.Duration
	for _, r := range rows {
		total += r.Total
	}
	fmt.Fprintf(w, "\n%s: time per op (synchronised after each op)\n%-20s %8s %10s %6s\n", part, "op", "calls", "ms", "share")
	for _, r := range rows {
		fmt.Fprintf(w, "%-20s %8d %10.1f %5.1f%%\n", r.Op, r.Calls, float64(r.Total.Microseconds())/1000, 100*float64(r.Total)/float64(total))
	}
}

// printGemms prints the twelve costliest matrix-product shapes of a
// profile with their rates (nothing for an empty profile).
func printGemms(w io.Writer, part string, rows []model.GemmTime) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s: matrix products by shape (M×N×K, transposes of A and B)\n%-24s %8s %10s %8s\n", part, "shape", "calls", "ms", "TFLOP/s")
	for i, r := range rows {
		if i == 12 {
			fmt.Fprintf(w, "(%d more shapes)\n", len(rows)-i)
			break
		}
		fmt.Fprintf(w, "%-24s %8d %10.1f %8.2f\n", r.Shape, r.Calls, float64(r.Total.Microseconds())/1000, r.TFLOPS)
	}
}
