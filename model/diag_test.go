// Tests of the training diagnostics on hand-made batches whose answers are
// known: programs that identify the task (MI = H(class)), that ignore it
// (MI = 0), uniform logits (entropy ln K), and hard final states.

package model

import (
	"math"
	"slices"
	"testing"
)

// progLogits returns (B, T, K) logits whose argmax in slot t of
// specification b is progs[b][t], by margin over the other symbols (0).
func progLogits(progs [][]int, K int, margin float32) []float32 {
	T := len(progs[0])
	lg := make([]float32, len(progs)*T*K)
	for b, p := range progs {
		for t, k := range p {
			lg[(b*T+t)*K+k] = margin
		}
	}
	return lg
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9+1e-9*math.Abs(b) }

func TestInductorStatsTaskDependent(t *testing.T) {
	// Class 0 writes "1 2", class 1 writes "3"; SKIPs (0) anywhere do not
	// change a program, so [1 0 2] and [1 2 0] are the same program.
	progs := [][]int{{1, 0, 2}, {3, 0, 0}, {1, 2, 0}, {0, 3, 0}}
	class := []int32{0, 1, 0, 1}
	const K, margin = 4, 5
	d := InductorStats(progLogits(progs, K, margin), class, 4, 3, K)
	if d.SymTotal != 4 {
		t.Errorf("sym_total = %d, want 4", d.SymTotal)
	}
	if !near(d.Skip, 6.0/12) {
		t.Errorf("skip = %v, want 0.5", d.Skip)
	}
	if d.NProg != 2 {
		t.Errorf("n_prog = %d, want 2", d.NProg)
	}
	if !near(d.MI, 1) || !near(d.MIMax, 1) {
		t.Errorf("mi = %v, mi_max = %v, want 1 and 1 (each class its own program)", d.MI, d.MIMax)
	}
	// Every slot: one logit 5, three 0: p = e⁵/(e⁵+3) and three (1−p)/3.
	p := math.Exp(margin) / (math.Exp(margin) + 3)
	q := (1 - p) / 3
	want := -p*math.Log(p) - 3*q*math.Log(q)
	if !near(d.Ent, want) {
		t.Errorf("ent = %v, want %v", d.Ent, want)
	}
}

func TestInductorStatsTaskIndependent(t *testing.T) {
	// Four classes, one program for all: MI 0 of H(class) = 2 bits.
	same := [][]int{{2, 0}, {2, 0}, {0, 2}, {2, 0}}
	d := InductorStats(progLogits(same, 3, 1), []int32{0, 1, 2, 3}, 4, 2, 3)
	if d.NProg != 1 || d.MI != 0 || !near(d.MIMax, 2) { // exactly 0: clamped against rounding
		t.Errorf("one program: n_prog %d, mi %v, mi_max %v; want 1, 0, 2", d.NProg, d.MI, d.MIMax)
	}
	// Two programs, but each class writes both equally often: still MI 0.
	mixed := [][]int{{1}, {2}, {1}, {2}}
	d = InductorStats(progLogits(mixed, 3, 1), []int32{0, 0, 1, 1}, 4, 1, 3)
	if d.NProg != 2 || !near(d.MI, 0) || !near(d.MIMax, 1) {
		t.Errorf("independent programs: n_prog %d, mi %v, mi_max %v; want 2, 0, 1", d.NProg, d.MI, d.MIMax)
	}
	// Three specifications of class 0 split 2:1 over two programs, one of
	// class 1 on the second: H(prog) = 1, H(class) = H(¾,¼), H(joint) =
	// H(½,¼,¼) = 1.5.
	part := [][]int{{1}, {1}, {2}, {2}}
	d = InductorStats(progLogits(part, 3, 1), []int32{0, 0, 0, 1}, 4, 1, 3)
	h := -0.75*math.Log2(0.75) - 0.25*math.Log2(0.25)
	if !near(d.MI, 1+h-1.5) || !near(d.MIMax, h) {
		t.Errorf("partial: mi %v, mi_max %v; want %v, %v", d.MI, d.MIMax, 1+h-1.5, h)
	}
}

func TestInductorStatsUniform(t *testing.T) {
	// Equal logits: argmax is the first symbol, SKIP, in every slot; the
	// program is empty for every task; entropy is ln K.
	const B, T, K = 3, 4, 8
	d := InductorStats(make([]float32, B*T*K), []int32{0, 1, 2}, B, T, K)
	if d.SymTotal != 1 || d.Skip != 1 || d.NProg != 1 || !near(d.MI, 0) || !near(d.MIMax, math.Log2(3)) {
		t.Errorf("uniform: %+v", d)
	}
	if !near(d.Ent, math.Log(K)) {
		t.Errorf("ent = %v, want ln %d = %v", d.Ent, K, math.Log(K))
	}
	// A logit far above the rest: the entropy underflows to 0, not NaN.
	lg := make([]float32, K)
	lg[3] = 1e4
	if d := InductorStats(lg, []int32{0}, 1, 1, K); d.Ent != 0 || d.SymTotal != 1 || d.Skip != 0 {
		t.Errorf("one-hot: %+v", d)
	}
}

func TestHardAccuracy(t *testing.T) {
	// N = 3 rows of L = 2 positions over V = 3 values.
	pi := []float32{
		0.1, 0.8, 0.1, 0, 0, 1, // argmax 1, 2
		1, 0, 0, 0.2, 0.3, 0.5, // argmax 0, 2
		0.5, 0.5, 0, 0, 1, 0, // argmax 0 (tie → first), 1
	}
	y := []int32{1, 2, 0, 1, 0, 1}
	if got := HardAccuracy(pi, y, 3, 2, 3); !near(got, 2.0/3) {
		t.Errorf("hard_acc = %v, want 2/3 (row 1 wrong at position 1)", got)
	}
	if got := HardAccuracy(nil, nil, 0, 2, 3); got != 0 {
		t.Errorf("no rows: %v", got)
	}
}

// TestTrainerDiagnose checks the trainer's diagnostics on real batches:
// a diagnosed run trains bit for bit as an undiagnosed one, the values are
// in range, the per-part gradient norms make up the global one, and the
// program index of each specification is the program that made its pairs.
func TestTrainerDiagnose(t *testing.T) {
	for _, cfg := range []Config{smallConfig(), withRecipe(withFiLM(smallConfig())), withSym(smallConfig())} {
		on := newTestTrainer(t, NewCPU(1), cfg, 50, 3)
		off := newTestTrainer(t, NewCPU(1), cfg, 50, 3)
		on.Diagnose = true
		B, P, L := cfg.Train.Batch, cfg.Train.Pairs, cfg.L
		hx, hy := make([]int32, B*P*L), make([]int32, B*P*L)
		for step := 0; step < 3; step++ {
			a, err := on.TrainStep()
			if err != nil {
				t.Fatal(err)
			}
			b, err := off.TrainStep()
			if err != nil {
				t.Fatal(err)
			}
			if b.Diag != nil {
				t.Fatalf("%s: diagnostics without Diagnose", cfg.Name)
			}
			d := a.Diag
			if d == nil {
				t.Fatalf("%s: no diagnostics with Diagnose", cfg.Name)
			}
			a.Diag = nil
			if a != b {
				t.Fatalf("%s step %d: diagnosing changed training:\n%+v\n%+v", cfg.Name, step+1, a, b)
			}
			if d.SymTotal < 1 || d.SymTotal > cfg.K || d.NProg < 1 || d.NProg > B ||
				d.Skip < 0 || d.Skip > 1 || d.Ent < 0 || d.Ent > math.Log(float64(cfg.K))+1e-9 ||
				d.MI < -1e-9 || d.MI > d.MIMax+1e-9 || d.MIMax > math.Log2(float64(len(on.progs)))+1e-9 ||
				d.HardAcc < 0 || d.HardAcc > 1 {
				t.Errorf("%s step %d: out of range: %+v", cfg.Name, step+1, *d)
			}
			gn := math.Sqrt(d.GNEnc*d.GNEnc + d.GNHead*d.GNHead + d.GNExe*d.GNExe)
			if math.Abs(gn-a.GradNorm) > 1e-4*a.GradNorm || d.GNEnc == 0 || d.GNHead == 0 || d.GNExe == 0 {
				t.Errorf("%s step %d: part norms %v, %v, %v make %v, global %v", cfg.Name, step+1, d.GNEnc, d.GNHead, d.GNExe, gn, a.GradNorm)
			}
			on.M.B.DownloadInt(hx, on.x)
			on.M.B.DownloadInt(hy, on.y)
			out := make([]int32, L)
			for s := 0; s < B; s++ {
				p := on.progs[on.prog[s]]
				for j := 0; j < P; j++ {
					r := (s*P + j) * L
					p.Apply(out, hx[r:r+L])
					if !slices.Equal(out, hy[r:r+L]) {
						t.Fatalf("%s step %d: specification %d pair %d is not program %d (%s)", cfg.Name, step+1, s, j, on.prog[s], p)
					}
				}
			}
		}
	}
}

// TestTrainStepAllocsAfterDiagnose checks that a diagnosed step leaves the
// following undiagnosed steps allocation-free.
func TestTrainStepAllocsAfterDiagnose(t *testing.T) {
	tr := newTestTrainer(t, NewCPU(1), withFiLM(smallConfig()), 100, 0)
	for i := 0; i < 3; i++ {
		tr.Diagnose = i == 1
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	tr.Diagnose = false
	if n := testing.AllocsPerRun(3, func() { _, _ = tr.TrainStep() }); n != 0 {
		t.Errorf("TrainStep allocates %v times per step after a diagnosed step", n)
	}
}
