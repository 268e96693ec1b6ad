// Tests that the recipe configs and sweep lists of docs/experiments/go/
// stay loadable: every JSON config parses strictly and validates, spec.json
// is the default preset, and every sweep list line names a split, a step
// count, a seed and a config that go_sweep.sh can run.

package main

import (
	"bufio"
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
	spec, err := loadConfig(filepath.Join(goExperiments, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	if def := model.Default(); !reflect.DeepEqual(def, spec) {
		t.Errorf("spec.json is not the default preset:\n got %+v\nwant %+v", spec, def)
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
			if _, err := loadConfig(cfg); err != nil {
				t.Errorf("%s: %v", where, err)
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
