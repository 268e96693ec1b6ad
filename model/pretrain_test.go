// Tests of train.pretrain: the pretraining steps move the encoder only, the
// schedule after them is a run's of the remaining steps, resume is bit for
// bit, and the config is validated.

package model

import (
	"math"
	"strings"
	"testing"
)

// withPretrain is c with the contrast loss and p pretraining steps.
func withPretrain(c Config, p int) Config {
	c.Name += "-pretrain"
	c.Train.Contrast = 0.5
	c.Train.Pretrain = p
	return c
}

// TestPretrain runs on the MLP model with the recipe's schedules (warm-up,
// ramps): pretraining does not depend on the interpreter, and -race runs
// must stay short.
func TestPretrain(t *testing.T) {
	const p, steps, seed = 2, 6, 5
	base := withRecipe(smallConfig())
	b := NewCPU(2)
	cfg := withPretrain(base, p)
	cfg.Train.SplitEvery, cfg.Train.SplitStart = 2, 1 // only to compare splitDue (no step is run with it)
	tr := newTestTrainer(t, b, cfg, steps, seed)
	init := tr.M.P.Export(false)

	// The schedule after pretraining is that of a run of steps − p steps.
	ref := cfg
	ref.Train.Pretrain = 0
	m, err := NewModel(b, ref)
	if err != nil {
		t.Fatal(err)
	}
	short, err := NewTrainer(m, SplitShiftL, steps-p, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	for j := 0; j < steps-p; j++ {
		if got, want := tr.Schedule(p+j), short.Schedule(j); got != want {
			t.Errorf("Schedule(%d) = %+v, want the %d-step run's Schedule(%d) = %+v", p+j, got, steps-p, j, want)
		}
		if got, want := tr.splitDue(p+j), short.splitDue(j); got != want {
			t.Errorf("splitDue(%d) = %v, want %v", p+j, got, want)
		}
	}
	for i := 0; i < p; i++ {
		if tr.splitDue(i) || !tr.Pretraining(i) {
			t.Errorf("step %d: a split is due (%v) or it is not pretraining", i, tr.splitDue(i))
		}
	}

	// Pretraining moves the encoder (every parameter before head.*) and
	// nothing else; the others' AdamW moments stay zero.
	tr.M.Cfg.Train.SplitEvery = 0
	for i := 0; i < p; i++ {
		st, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if !st.Pretrain || st.NLL != 0 || !(st.Contrast > 0) || st.ContrastW != 0.5 || math.Abs(st.Loss-0.5*st.Contrast) > 1e-6*st.Loss {
			t.Fatalf("pretraining step %d: %+v", i+1, st)
		}
	}
	after := tr.M.P.Export(true)
	encoder, moved := true, 0
	rest := map[string]bool{} // the parameters after the encoder
	for i, nt := range init {
		if strings.HasPrefix(nt.Name, "head.") {
			encoder = false
		}
		rest[nt.Name] = !encoder
		a := after[i]
		same := true
		for j := range nt.Data {
			if math.Float32bits(nt.Data[j]) != math.Float32bits(a.Data[j]) {
				same = false
				break
			}
		}
		if encoder && !same {
			moved++
		}
		if !encoder && !same {
			t.Errorf("%s changed during pretraining", nt.Name)
		}
	}
	if moved == 0 {
		t.Error("pretraining moved no encoder parameter")
	}
	checked := 0
	for _, nt := range after[len(init):] { // the moments follow the parameters in Export(true)
		_, name, _ := strings.Cut(nt.Name, "/")
		if !rest[name] {
			continue
		}
		checked++
		for _, v := range nt.Data {
			if v != 0 {
				t.Errorf("%s: a non-encoder moment is %v after pretraining", nt.Name, v)
				break
			}
		}
	}
	if checked == 0 {
		t.Fatal("no moments of non-encoder parameters found")
	}
	st, err := tr.TrainStep()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pretrain || !(st.NLL > 0) {
		t.Fatalf("first step after pretraining: %+v", st)
	}

	// Resume inside pretraining and after it: bit for bit.
	want, _ := trainLosses(t, newTestTrainer(t, b, withPretrain(base, p), steps, seed), steps)
	for _, stop := range []int{p - 1, p + 2} {
		c := newTestTrainer(t, b, withPretrain(base, p), steps, seed)
		got, _ := trainLosses(t, c, stop)
		d := resumeFromCheckpoint(t, c, NewCPU(1))
		rest, _ := trainLosses(t, d, steps-stop)
		sameBits(t, "resumed at "+string(rune('0'+stop)), want, append(got, rest...))
	}
}

func TestPretrainConfig(t *testing.T) {
	ok := withPretrain(Tiny(), 1000)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	noCtr := ok
	noCtr.Train.Contrast = 0
	neg := ok
	neg.Train.Pretrain = -1
	overlap := withRestart(ok, 1050, 12, 1) // its window, steps 951-1050, overlaps pretraining
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{noCtr, "needs train.contrast > 0"},
		{neg, "train.pretrain = -1"},
		{overlap, "must come after train.pretrain"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	if err := withRestart(ok, 1100, 12, 1).Validate(); err != nil {
		t.Errorf("restart window right after pretraining: %v", err)
	}
	m, err := NewModel(NewCPU(1), withPretrain(smallConfig(), 10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(m, SplitShiftL, 10, 0); err == nil || !strings.Contains(err.Error(), "below the run's 10 steps") {
		t.Errorf("pretrain = steps: error %v", err)
	}
}
