// Tests that the recipe configs and sweep lists of docs/experiments/go/
// stay loadable: every JSON config parses strictly and validates, default.json
// is the default preset and spec.json the same without its learning-rate decay
// (SPEC §3), and every sweep list line names a split, a step
// count, a seed and a config that go_sweep.sh can run.

package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nli-go/nli/model"
)

// goExperiments is the folder of the Go trainer's sweep configs.
const goExperiments = "../docs/experiments/go"

func TestExperimentConfigs(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(goExperiments, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no JSON configs in %s", goExperiments)
	}
	for _, p := range paths {
		c, err := loadConfig(p) // strict decoding and Validate
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, err := model.NewModel(model.NewCPU(1), c); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	def, err := loadConfig(filepath.Join(goExperiments, "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := model.Default(); !reflect.DeepEqual(def, want) {
		t.Errorf("default.json is not the default preset:\n got %+v\nwant %+v", def, want)
	}
	spec, err := loadConfig(filepath.Join(goExperiments, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := model.Default()
	want.Train.LRDecayFrom = 0
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("spec.json is not the default preset without its lr decay:\n got %+v\nwant %+v", spec, want)
	}
}

func TestExperimentSweepLists(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(goExperiments, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no sweep lists in %s", goExperiments)
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		sc := bufio.NewScanner(f)
		for ln := 1; sc.Scan(); ln++ {
			line, _, _ := strings.Cut(sc.Text(), "#")
			fl := strings.Fields(line)
			if len(fl) == 0 {
				continue
			}
			where := p + ":" + strconv.Itoa(ln)
			if len(fl) < 5 {
				t.Errorf("%s: want NAME SPLIT STEPS SEED CONFIG [train flags], got %q", where, line)
				continue
			}
			if names[fl[0]] {
				t.Errorf("%s: run name %s used twice", where, fl[0])
			}
			names[fl[0]] = true
			if _, err := model.ParseSplit(fl[1]); err != nil {
				t.Errorf("%s: %v", where, err)
			}
			steps, err := strconv.Atoi(fl[2])
			if err != nil || steps <= 0 {
				t.Errorf("%s: steps %q is not a positive integer", where, fl[2])
			}
			if _, err := strconv.ParseUint(fl[3], 10, 64); err != nil {
				t.Errorf("%s: seed %q: %v", where, fl[3], err)
			}
			// go_sweep.sh looks for the config beside the list, then as given
			// (from the repository root), else passes it on as a preset name.
			cfg := fl[4]
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), cfg)); err == nil {
				cfg = filepath.Join(filepath.Dir(p), cfg)
			} else if _, err := os.Stat(filepath.Join("..", cfg)); err == nil {
				cfg = filepath.Join("..", cfg)
			}
			c, err := loadConfig(cfg)
			if err != nil {
				t.Errorf("%s: %v", where, err)
			}
			var sets []string // --set k=v and --set=k=v overrides must apply to the config
			for i, x := range fl[5:] {
				if v, ok := strings.CutPrefix(x, "--set="); ok {
					sets = append(sets, v)
				} else if x == "--set" && 5+i+1 < len(fl) {
					sets = append(sets, fl[5+i+1])
				}
			}
			if err == nil {
				if _, err := applySets(c, sets); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
			for _, x := range fl[5:] {
				if strings.HasPrefix(x, "--") && slices.Contains([]string{"--split", "--steps", "--seed", "--out", "--config", "--device", "--resume"}, strings.SplitN(x, "=", 2)[0]) {
					t.Errorf("%s: extra flag %s is set by go_sweep.sh itself", where, x)
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrainMetricsDiagnostics checks that every metrics line of a run
// carries the inductor diagnostics go_sweep.sh tabulates, and that --diag=false
// leaves them out.
func TestTrainMetricsDiagnostics(t *testing.T) {
	keys := []string{"sym_total", "skip", "ent", "n_prog", "mi", "mi_max", "hard_acc", "gn_enc", "gn_head", "gn_exe"}
	for _, diag := range []bool{true, false} {
		dir := t.TempDir()
		mustRun(t, "train", "--split", "comp-i", "--config", "tiny", "--batch", "4", "--steps", "3", "--log-every", "2",
			"--out", dir, "--quiet", "--workers", "1", "--diag="+strconv.FormatBool(diag))
		data, err := os.ReadFile(filepath.Join(dir, metricsFile))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 3 { // steps 1, 2 and 3
			t.Fatalf("diag=%v: %d metrics lines, want 3", diag, len(lines))
		}
		for _, ln := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(ln), &rec); err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if _, ok := rec[k]; ok != diag {
					t.Errorf("diag=%v: key %s present %v in %s", diag, k, ok, ln)
				}
			}
			if diag && rec["mi_max"].(float64) <= 0 {
				t.Errorf("mi_max = %v: the batches (seed 0) draw several programs, so the program index is not reaching the diagnostics", rec["mi_max"])
			}
		}
	}
}
