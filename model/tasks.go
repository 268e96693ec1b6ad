// Package model: tasks.go defines the synthetic sequence-transformation task
// suite: sequences, primitive programs, the shift-l / shift-p / comp-i splits,
// and the allocation-free batch sampler used by the training loop.
package model

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
)

// SeqLen is the length L of every input and output sequence.
const SeqLen = 20

// NumValues is the vocabulary size V: every sequence element is in 0..NumValues-1.
const NumValues = 10

// Split names a train/OOD program split of the task suite.
type Split string

// The three splits of the task suite.
const (
	// SplitShiftL trains on rotl 1..5 and tests OOD on rotl 6..10 (longer shifts).
	SplitShiftL Split = "shift-l"
	// SplitShiftP trains on rotl 4..8 and tests OOD on rotl 1..3 (shorter shifts).
	SplitShiftP Split = "shift-p"
	// SplitCompI trains on the 8 named primitives and tests OOD on their
	// non-trivial pairwise compositions.
	SplitCompI Split = "comp-i"
)

var taskSplits = []Split{SplitShiftL, SplitShiftP, SplitCompI}

// ParseSplit converts a split name into a Split; the error lists the valid names.
func ParseSplit(s string) (Split, error) {
	for _, sp := range taskSplits {
		if s == string(sp) {
			return sp, nil
		}
	}
	return "", fmt.Errorf("unknown split %q (valid: %s, %s, %s)", s, SplitShiftL, SplitShiftP, SplitCompI)
}

// Part names which programs and which fresh tasks a data set is drawn from.
type Part string

// The three parts of a split. PartTrain and PartID both use the split's train
// programs (ID tasks are fresh tasks of the same programs); PartOOD uses the
// split's held-out programs.
const (
	PartTrain Part = "train"
	PartID    Part = "id"
	PartOOD   Part = "ood"
)

var taskParts = []Part{PartTrain, PartID, PartOOD}

// ParsePart converts a part name into a Part; the error lists the valid names.
func ParsePart(s string) (Part, error) {
	for _, p := range taskParts {
		if s == string(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown part %q (valid: %s, %s, %s)", s, PartTrain, PartID, PartOOD)
}

// Step is one primitive of a Program. Op is "rotl" (cyclic shift left by K,
// K in 0..SeqLen-1) or one of the named primitives (see NamedPrimitives), in
// which case K is 0.
type Step struct {
	Op string
	K  int
}

// opRotl is the parameterised rotation op.
const opRotl = "rotl"

// namedPrimitives is the fixed order of the 8 named primitives.
var namedPrimitives = [...]string{"rotl1", "rotr1", "inc", "dec", "rev", "swap", "neg", "addpos"}

// NamedPrimitives returns the 8 named primitives in their fixed order:
// rotl1, rotr1, inc, dec, rev, swap, neg, addpos. The slice is a fresh copy.
func NamedPrimitives() []string {
	out := make([]string, len(namedPrimitives))
	copy(out, namedPrimitives[:])
	return out
}

func isNamedPrimitive(op string) bool {
	for _, n := range namedPrimitives {
		if op == n {
			return true
		}
	}
	return false
}

// String renders a step as "rotl K" or as the primitive's name.
func (s Step) String() string {
	if s.Op == opRotl {
		return opRotl + " " + strconv.Itoa(s.K)
	}
	return s.Op
}

// Validate reports whether the step is a known op with a valid K.
func (s Step) Validate() error {
	switch {
	case s.Op == opRotl:
		if s.K < 0 || s.K >= SeqLen {
			return fmt.Errorf("rotl: k %d outside 0..%d", s.K, SeqLen-1)
		}
	case isNamedPrimitive(s.Op):
		if s.K != 0 {
			return fmt.Errorf("%s: takes no argument (k = %d)", s.Op, s.K)
		}
	default:
		return fmt.Errorf("unknown op %q (valid: rotl K, %s)", s.Op, strings.Join(namedPrimitives[:], ", "))
	}
	return nil
}

// Program is a hidden task program: its steps are applied left to right.
type Program []Step

// Validate reports the first invalid step of the program, if any. An empty
// program is invalid. Programs from ParseProgram and Programs are always valid.
func (p Program) Validate() error {
	if len(p) == 0 {
		return fmt.Errorf("empty program")
	}
	for i, s := range p {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	return nil
}

// String renders the program as its steps joined by "; ", e.g. "rotl 7" or
// "rev; inc". ParseProgram is its inverse.
func (p Program) String() string {
	parts := make([]string, len(p))
	for i, s := range p {
		parts[i] = s.String()
	}
	return strings.Join(parts, "; ")
}

// ParseProgram parses the output of Program.String: steps separated by ";",
// each either "rotl K" with K in 0..SeqLen-1 or a named primitive. Unknown ops,
// missing or extra arguments, and an empty program are errors.
func ParseProgram(s string) (Program, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("parse program %q: empty program", s)
	}
	segs := strings.Split(s, ";")
	p := make(Program, 0, len(segs))
	for i, seg := range segs {
		f := strings.Fields(seg)
		var st Step
		switch {
		case len(f) == 0:
			return nil, fmt.Errorf("parse program %q: step %d: empty step", s, i+1)
		case f[0] == opRotl:
			if len(f) != 2 {
				return nil, fmt.Errorf("parse program %q: step %d: rotl needs exactly one argument K", s, i+1)
			}
			k, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, fmt.Errorf("parse program %q: step %d: rotl argument %q is not an integer", s, i+1, f[1])
			}
			st = Step{Op: opRotl, K: k}
		default:
			if err := (Step{Op: f[0]}).Validate(); err != nil {
				return nil, fmt.Errorf("parse program %q: step %d: %w", s, i+1, err)
			}
			if len(f) != 1 {
				return nil, fmt.Errorf("parse program %q: step %d: %s takes no argument", s, i+1, f[0])
			}
			st = Step{Op: f[0]}
		}
		if err := st.Validate(); err != nil {
			return nil, fmt.Errorf("parse program %q: step %d: %w", s, i+1, err)
		}
		p = append(p, st)
	}
	return p, nil
}

// taskModValue reduces v into 0..NumValues-1.
func taskModValue(v int32) int32 {
	v %= NumValues
	if v < 0 {
		v += NumValues
	}
	return v
}

// applyStep writes step s applied to in into out (out and in are distinct).
func applyStep(out, in *[SeqLen]int32, s Step) {
	rot := -1
	switch s.Op {
	case opRotl:
		rot = s.K % SeqLen
		if rot < 0 {
			rot += SeqLen
		}
	case "rotl1":
		rot = 1
	case "rotr1":
		rot = SeqLen - 1
	case "inc":
		for i := range out {
			out[i] = taskModValue(in[i] + 1)
		}
	case "dec":
		for i := range out {
			out[i] = taskModValue(in[i] - 1)
		}
	case "rev":
		for i := range out {
			out[i] = in[SeqLen-1-i]
		}
	case "swap":
		for i := range out {
			out[i] = in[i^1]
		}
	case "neg":
		for i := range out {
			out[i] = taskModValue(NumValues - 1 - in[i])
		}
	case "addpos":
		for i := range out {
			out[i] = taskModValue(in[i] + int32(i))
		}
	default:
		panic("model: Program.Apply: unknown op " + strconv.Quote(s.Op) + " (validate programs with Program.Validate)")
	}
	if rot >= 0 {
		n := copy(out[:], in[rot:])
		copy(out[n:], in[:rot])
	}
}

// Apply writes p(src) into dst. Both must have length SeqLen; dst may alias
// src. Arithmetic primitives reduce their results mod NumValues. Apply does not
// allocate. It panics (a programmer error) on wrong lengths or on a step that
// fails Step.Validate; programs from ParseProgram and Programs never do.
func (p Program) Apply(dst, src []int32) {
	if len(dst) != SeqLen || len(src) != SeqLen {
		panic("model: Program.Apply: dst and src must have length SeqLen")
	}
	var a, b [SeqLen]int32
	copy(a[:], src)
	cur, nxt := &a, &b
	for _, s := range p {
		applyStep(nxt, cur, s)
		cur, nxt = nxt, cur
	}
	copy(dst, cur[:])
}

func rotlRange(lo, hi int) []Program {
	out := make([]Program, 0, hi-lo+1)
	for k := lo; k <= hi; k++ {
		out = append(out, Program{{Op: opRotl, K: k}})
	}
	return out
}

// compIProbeInputs is the number of random inputs used to decide whether a
// comp-i composition is trivial.
const compIProbeInputs = 64

var (
	compIOODOnce sync.Once
	compIOODList []Program
)

// computeCompIOOD enumerates ordered pairs (f, h), f != h, of the named
// primitives in itertools.permutations order (f outer, h inner), builds the
// program [h, f] (h applied first), and drops it if on compIProbeInputs inputs
// from a PCG seeded with 0 it equals the identity or a single named primitive.
func computeCompIOOD() []Program {
	rng := rand.New(rand.NewPCG(0, 0))
	inputs := make([][SeqLen]int32, compIProbeInputs)
	for n := range inputs {
		for i := range inputs[n] {
			inputs[n][i] = int32(rng.IntN(NumValues))
		}
	}
	// Outputs of the identity (index 0) and each named primitive on the probes.
	refs := make([][][SeqLen]int32, 0, len(namedPrimitives)+1)
	refs = append(refs, inputs)
	for _, name := range namedPrimitives {
		prog := Program{{Op: name}}
		outs := make([][SeqLen]int32, len(inputs))
		for n := range inputs {
			prog.Apply(outs[n][:], inputs[n][:])
		}
		refs = append(refs, outs)
	}
	var out []Program
	got := make([][SeqLen]int32, len(inputs))
	for _, f := range namedPrimitives {
		for _, h := range namedPrimitives {
			if f == h {
				continue
			}
			prog := Program{{Op: h}, {Op: f}}
			for n := range inputs {
				prog.Apply(got[n][:], inputs[n][:])
			}
			trivial := false
			for _, ref := range refs {
				same := true
				for n := range got {
					if got[n] != ref[n] {
						same = false
						break
					}
				}
				if same {
					trivial = true
					break
				}
			}
			if !trivial {
				out = append(out, prog)
			}
		}
	}
	return out
}

func clonePrograms(ps []Program) []Program {
	out := make([]Program, len(ps))
	for i, p := range ps {
		out[i] = append(Program(nil), p...)
	}
	return out
}

// Programs returns the programs of a split and part in their deterministic
// order: train and id parts give the train programs, ood the held-out ones.
// It returns nil for an unknown split or part. The result is a fresh copy.
func Programs(split Split, part Part) []Program {
	ood := false
	switch part {
	case PartTrain, PartID:
	case PartOOD:
		ood = true
	default:
		return nil
	}
	switch split {
	case SplitShiftL:
		if ood {
			return rotlRange(6, 10)
		}
		return rotlRange(1, 5)
	case SplitShiftP:
		if ood {
			return rotlRange(1, 3)
		}
		return rotlRange(4, 8)
	case SplitCompI:
		if ood {
			compIOODOnce.Do(func() { compIOODList = computeCompIOOD() })
			return clonePrograms(compIOODList)
		}
		out := make([]Program, len(namedPrimitives))
		for i, name := range namedPrimitives {
			out[i] = Program{{Op: name}}
		}
		return out
	}
	return nil
}

// SampleBatch fills x and y (each of length B*m*SeqLen, row-major
// [B][m][SeqLen]) with B specifications of m pairs: each specification draws
// one program uniformly from progs, then m uniform random inputs and their
// outputs. When progIdx is non-nil (length B) it receives the chosen program
// index of each specification. SampleBatch does not allocate. It panics (a
// programmer error) if progs is empty, B or m is negative, or a slice is too
// short.
func SampleBatch(rng *rand.Rand, progs []Program, B, m int, x, y []int32, progIdx []int32) {
	if len(progs) == 0 {
		panic("model: SampleBatch: no programs")
	}
	if B < 0 || m < 0 {
		panic("model: SampleBatch: negative B or m")
	}
	n := B * m * SeqLen
	if len(x) < n || len(y) < n {
		panic("model: SampleBatch: x or y shorter than B*m*SeqLen")
	}
	if progIdx != nil && len(progIdx) < B {
		panic("model: SampleBatch: progIdx shorter than B")
	}
	off := 0
	for b := 0; b < B; b++ {
		pi := rng.IntN(len(progs))
		if progIdx != nil {
			progIdx[b] = int32(pi)
		}
		p := progs[pi]
		for j := 0; j < m; j++ {
			xs := x[off : off+SeqLen : off+SeqLen]
			for i := range xs {
				xs[i] = int32(rng.IntN(NumValues))
			}
			p.Apply(y[off:off+SeqLen:off+SeqLen], xs)
			off += SeqLen
		}
	}
}
