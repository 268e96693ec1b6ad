// Tests for tasks.go: primitives, program syntax, the splits (including the
// computed comp-i OOD list) and the allocation-free batch sampler.
package model

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// taskPiInput is a hand-written input with repeated and distinct values.
var taskPiInput = []int32{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4}

func TestPrimitivesHandWritten(t *testing.T) {
	cases := []struct {
		prog string
		want []int32
	}{
		{"rotl 3", []int32{1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 3, 1, 4}},
		{"rotl 0", taskPiInput},
		{"rotl 19", []int32{4, 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8}},
		{"rotl1", []int32{1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 3}},
		{"rotr1", []int32{4, 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8}},
		{"inc", []int32{4, 2, 5, 2, 6, 0, 3, 7, 6, 4, 6, 9, 0, 8, 0, 4, 3, 4, 9, 5}},
		{"dec", []int32{2, 0, 3, 0, 4, 8, 1, 5, 4, 2, 4, 7, 8, 6, 8, 2, 1, 2, 7, 3}},
		{"rev", []int32{4, 8, 3, 2, 3, 9, 7, 9, 8, 5, 3, 5, 6, 2, 9, 5, 1, 4, 1, 3}},
		{"swap", []int32{1, 3, 1, 4, 9, 5, 6, 2, 3, 5, 8, 5, 7, 9, 3, 9, 3, 2, 4, 8}},
		{"neg", []int32{6, 8, 5, 8, 4, 0, 7, 3, 4, 6, 4, 1, 0, 2, 0, 6, 7, 6, 1, 5}},
		{"addpos", []int32{3, 2, 6, 4, 9, 4, 8, 3, 3, 2, 5, 9, 1, 0, 3, 8, 8, 0, 6, 3}},
		// rev then inc: inc applied to the rev row above.
		{"rev; inc", []int32{5, 9, 4, 3, 4, 0, 8, 0, 9, 6, 4, 6, 7, 3, 0, 6, 2, 5, 2, 4}},
	}
	for _, c := range cases {
		t.Run(c.prog, func(t *testing.T) {
			p, err := ParseProgram(c.prog)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]int32, SeqLen)
			p.Apply(got, taskPiInput)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s(%v)\n got %v\nwant %v", c.prog, taskPiInput, got, c.want)
			}
		})
	}
}

// taskRefStep is a literal transcription of the primitive definitions.
func taskRefStep(op string, k int, x []int32) []int32 {
	y := make([]int32, SeqLen)
	mod := func(a, n int) int { return ((a % n) + n) % n }
	for i := 0; i < SeqLen; i++ {
		var v int
		switch op {
		case "rotl":
			v = int(x[mod(i+k, SeqLen)])
		case "rotl1":
			v = int(x[mod(i+1, SeqLen)])
		case "rotr1":
			v = int(x[mod(i-1, SeqLen)])
		case "inc":
			v = mod(int(x[i])+1, NumValues)
		case "dec":
			v = mod(int(x[i])-1, NumValues)
		case "rev":
			v = int(x[SeqLen-1-i])
		case "swap":
			v = int(x[i^1])
		case "neg":
			v = NumValues - 1 - int(x[i])
		case "addpos":
			v = mod(int(x[i])+i, NumValues)
		default:
			panic("taskRefStep: unknown op " + op)
		}
		y[i] = int32(v)
	}
	return y
}

func taskRefApply(p Program, x []int32) []int32 {
	y := slices.Clone(x)
	for _, s := range p {
		y = taskRefStep(s.Op, s.K, y)
	}
	return y
}

func taskRandSeq(rng *rand.Rand) []int32 {
	x := make([]int32, SeqLen)
	for i := range x {
		x[i] = int32(rng.IntN(NumValues))
	}
	return x
}

func TestPrimitivesMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var progs []Program
	for k := 0; k < SeqLen; k++ {
		progs = append(progs, Program{{Op: "rotl", K: k}})
	}
	for _, a := range NamedPrimitives() {
		progs = append(progs, Program{{Op: a}})
		for _, b := range NamedPrimitives() {
			progs = append(progs, Program{{Op: a}, {Op: b}})
		}
	}
	got := make([]int32, SeqLen)
	for _, p := range progs {
		for n := 0; n < 50; n++ {
			x := taskRandSeq(rng)
			p.Apply(got, x)
			if want := taskRefApply(p, x); !slices.Equal(got, want) {
				t.Fatalf("%s(%v): got %v want %v", p, x, got, want)
			}
		}
	}
}

func TestProgramApplyAliasAndNoAlloc(t *testing.T) {
	p, err := ParseProgram("rev; rotl 7; addpos; swap")
	if err != nil {
		t.Fatal(err)
	}
	buf := slices.Clone(taskPiInput)
	p.Apply(buf, buf)
	if want := taskRefApply(p, taskPiInput); !slices.Equal(buf, want) {
		t.Errorf("aliased Apply: got %v want %v", buf, want)
	}
	dst := make([]int32, SeqLen)
	if n := testing.AllocsPerRun(100, func() { p.Apply(dst, taskPiInput) }); n != 0 {
		t.Errorf("Apply allocates %v times per run", n)
	}
}

func TestNamedPrimitives(t *testing.T) {
	want := []string{"rotl1", "rotr1", "inc", "dec", "rev", "swap", "neg", "addpos"}
	got := NamedPrimitives()
	if !slices.Equal(got, want) {
		t.Fatalf("NamedPrimitives() = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if NamedPrimitives()[0] != "rotl1" {
		t.Error("NamedPrimitives returns shared storage")
	}
}

func TestProgramStringParseRoundTrip(t *testing.T) {
	cases := []struct {
		prog Program
		str  string
	}{
		{Program{{Op: "rotl", K: 7}}, "rotl 7"},
		{Program{{Op: "rev"}, {Op: "inc"}}, "rev; inc"},
		{Program{{Op: "rotl", K: 0}, {Op: "addpos"}, {Op: "rotl", K: 19}}, "rotl 0; addpos; rotl 19"},
		{Program{{Op: "rotl1"}}, "rotl1"},
	}
	for _, c := range cases {
		if s := c.prog.String(); s != c.str {
			t.Errorf("String(%v) = %q, want %q", c.prog, s, c.str)
		}
		p, err := ParseProgram(c.str)
		if err != nil {
			t.Errorf("ParseProgram(%q): %v", c.str, err)
			continue
		}
		if !reflect.DeepEqual(p, c.prog) {
			t.Errorf("ParseProgram(%q) = %#v, want %#v", c.str, p, c.prog)
		}
	}
	// Extra whitespace is tolerated.
	if p, err := ParseProgram("  rev ;inc;  rotl   3 "); err != nil || p.String() != "rev; inc; rotl 3" {
		t.Errorf("ParseProgram with spaces = %v, %v", p, err)
	}
	// Every program of every split round-trips.
	for _, sp := range []Split{SplitShiftL, SplitShiftP, SplitCompI} {
		for _, pt := range []Part{PartTrain, PartOOD} {
			for _, p := range Programs(sp, pt) {
				q, err := ParseProgram(p.String())
				if err != nil || !reflect.DeepEqual(p, q) {
					t.Errorf("%s/%s: round trip of %q gave %v, %v", sp, pt, p, q, err)
				}
			}
		}
	}
}

func TestParseProgramErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "empty program"},
		{"   ", "empty program"},
		{"rotl", "exactly one argument"},
		{"rotl 1 2", "exactly one argument"},
		{"rotl 20", "k 20 outside 0..19"},
		{"rotl -1", "k -1 outside 0..19"},
		{"rotl x", `"x" is not an integer`},
		{"foo", `unknown op "foo"`},
		{"rev; bar", `step 2: unknown op "bar"`},
		{"inc 3", "takes no argument"},
		{"rev;;inc", "step 2: empty step"},
		{"rev;", "step 2: empty step"},
		{"ROTL 3", `unknown op "ROTL"`},
	}
	for _, c := range cases {
		p, err := ParseProgram(c.in)
		if err == nil {
			t.Errorf("ParseProgram(%q) = %v, want error", c.in, p)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseProgram(%q) error %q, want it to contain %q", c.in, err, c.want)
		}
	}
}

func TestProgramValidate(t *testing.T) {
	bad := []Program{nil, {{Op: "rotl", K: 20}}, {{Op: "inc", K: 1}}, {{Op: "nope"}}}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%#v) = nil, want error", p)
		}
	}
	if err := (Program{{Op: "rotl", K: 5}, {Op: "neg"}}).Validate(); err != nil {
		t.Errorf("Validate of a good program: %v", err)
	}
}

func TestParseSplitAndPart(t *testing.T) {
	for _, s := range []string{"shift-l", "shift-p", "comp-i"} {
		sp, err := ParseSplit(s)
		if err != nil || string(sp) != s {
			t.Errorf("ParseSplit(%q) = %q, %v", s, sp, err)
		}
	}
	_, err := ParseSplit("shift")
	if err == nil || !strings.Contains(err.Error(), "shift-l, shift-p, comp-i") || !strings.Contains(err.Error(), `"shift"`) {
		t.Errorf("ParseSplit(bad) error = %v, want the valid names listed", err)
	}
	for _, s := range []string{"train", "id", "ood"} {
		pt, err := ParsePart(s)
		if err != nil || string(pt) != s {
			t.Errorf("ParsePart(%q) = %q, %v", s, pt, err)
		}
	}
	_, err = ParsePart("test")
	if err == nil || !strings.Contains(err.Error(), "train, id, ood") {
		t.Errorf("ParsePart(bad) error = %v, want the valid names listed", err)
	}
}

// wantCompIOOD is the size of the comp-i OOD list: the 8*7 = 56 ordered pairs
// less the 4 identities [rotl1, rotr1], [rotr1, rotl1], [inc, dec], [dec, inc].
const wantCompIOOD = 52

func TestProgramsSizes(t *testing.T) {
	cases := []struct {
		split      Split
		train, ood int
	}{
		{SplitShiftL, 5, 5},
		{SplitShiftP, 5, 3},
		{SplitCompI, 8, wantCompIOOD},
	}
	for _, c := range cases {
		tr, id, ood := Programs(c.split, PartTrain), Programs(c.split, PartID), Programs(c.split, PartOOD)
		if len(tr) != c.train || len(ood) != c.ood {
			t.Errorf("%s: %d train / %d ood programs, want %d / %d", c.split, len(tr), len(ood), c.train, c.ood)
		}
		if !reflect.DeepEqual(tr, id) {
			t.Errorf("%s: id programs differ from train programs", c.split)
		}
	}
	wantStr := map[Split][2]string{
		SplitShiftL: {"rotl 1|rotl 2|rotl 3|rotl 4|rotl 5", "rotl 6|rotl 7|rotl 8|rotl 9|rotl 10"},
		SplitShiftP: {"rotl 4|rotl 5|rotl 6|rotl 7|rotl 8", "rotl 1|rotl 2|rotl 3"},
		SplitCompI:  {"rotl1|rotr1|inc|dec|rev|swap|neg|addpos", ""},
	}
	join := func(ps []Program) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = p.String()
		}
		return strings.Join(s, "|")
	}
	for sp, w := range wantStr {
		if got := join(Programs(sp, PartTrain)); got != w[0] {
			t.Errorf("%s train = %s, want %s", sp, got, w[0])
		}
		if w[1] != "" {
			if got := join(Programs(sp, PartOOD)); got != w[1] {
				t.Errorf("%s ood = %s, want %s", sp, got, w[1])
			}
		}
	}
	if Programs("nope", PartTrain) != nil || Programs(SplitShiftL, "nope") != nil {
		t.Error("Programs of an unknown split or part should be nil")
	}
}

func TestProgramsReturnsCopy(t *testing.T) {
	a := Programs(SplitCompI, PartOOD)
	a[0][0].Op = "mutated"
	a[1] = nil
	b := Programs(SplitCompI, PartOOD)
	if b[0][0].Op == "mutated" || b[1] == nil {
		t.Error("Programs returns shared storage")
	}
}

// sameProgramFunction reports whether p and q agree on all inputs.
func sameProgramFunction(p, q Program, inputs [][]int32) bool {
	a, b := make([]int32, SeqLen), make([]int32, SeqLen)
	for _, x := range inputs {
		p.Apply(a, x)
		q.Apply(b, x)
		if !slices.Equal(a, b) {
			return false
		}
	}
	return true
}

func taskRandInputs(seed uint64, n int) [][]int32 {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([][]int32, n)
	for i := range out {
		out[i] = taskRandSeq(rng)
	}
	return out
}

func TestProgramsTrainOODDisjoint(t *testing.T) {
	inputs := taskRandInputs(12345, 128)
	for _, sp := range []Split{SplitShiftL, SplitShiftP, SplitCompI} {
		for _, tr := range Programs(sp, PartTrain) {
			for _, ood := range Programs(sp, PartOOD) {
				if sameProgramFunction(tr, ood, inputs) {
					t.Errorf("%s: train %q and ood %q are the same function", sp, tr, ood)
				}
			}
		}
	}
}

func TestCompIOOD(t *testing.T) {
	ood := Programs(SplitCompI, PartOOD)
	t.Logf("comp-i OOD programs: %d", len(ood))
	if len(ood) != wantCompIOOD {
		t.Errorf("comp-i OOD has %d programs, want %d", len(ood), wantCompIOOD)
	}
	has := make(map[string]bool, len(ood))
	for _, p := range ood {
		if len(p) != 2 || p[0].Op == p[1].Op {
			t.Errorf("bad comp-i program %q", p)
		}
		has[p.String()] = true
	}
	for _, s := range []string{"inc; dec", "dec; inc", "rotl1; rotr1", "rotr1; rotl1", "rev; rev", "rotl1; rotl1", "neg; neg", "swap; swap"} {
		if has[s] {
			t.Errorf("comp-i OOD contains trivial or duplicate program %q", s)
		}
	}
	// Non-commuting pairs are both present and are different functions.
	inputs := taskRandInputs(777, 256)
	for _, pair := range [][2]string{{"inc; neg", "neg; inc"}, {"rev; addpos", "addpos; rev"}, {"rotl1; addpos", "addpos; rotl1"}} {
		if !has[pair[0]] || !has[pair[1]] {
			t.Errorf("comp-i OOD lacks %q or %q", pair[0], pair[1])
			continue
		}
		p, _ := ParseProgram(pair[0])
		q, _ := ParseProgram(pair[1])
		if sameProgramFunction(p, q, inputs) {
			t.Errorf("%q and %q should differ", pair[0], pair[1])
		}
	}

	// Recompute the list independently: reference semantics, other inputs, and
	// the permutations order (f outer, h inner, program [h, f]).
	names := NamedPrimitives()
	refInputs := taskRandInputs(4242, 256)
	trivial := func(p Program) bool {
		cands := []Program{{{Op: "rotl", K: 0}}}
		for _, n := range names {
			cands = append(cands, Program{{Op: n}})
		}
		for _, c := range cands {
			same := true
			for _, x := range refInputs {
				if !slices.Equal(taskRefApply(p, x), taskRefApply(c, x)) {
					same = false
					break
				}
			}
			if same {
				return true
			}
		}
		return false
	}
	var want []string
	for _, f := range names {
		for _, h := range names {
			if f == h {
				continue
			}
			p := Program{{Op: h}, {Op: f}}
			if !trivial(p) {
				want = append(want, p.String())
			}
		}
	}
	got := make([]string, len(ood))
	for i, p := range ood {
		got[i] = p.String()
	}
	if !slices.Equal(got, want) {
		t.Errorf("comp-i OOD list\n got %v\nwant %v", got, want)
	}
	// First entries in permutations order: f = rotl1, h = rotr1 is dropped.
	if len(ood) > 1 && (got[0] != "inc; rotl1" || got[1] != "dec; rotl1") {
		t.Errorf("comp-i OOD starts %q, %q; want \"inc; rotl1\", \"dec; rotl1\"", got[0], got[1])
	}
}

func TestSampleBatch(t *testing.T) {
	const B, m = 16, 5
	for _, sp := range []Split{SplitShiftL, SplitCompI} {
		progs := Programs(sp, PartOOD)
		x := make([]int32, B*m*SeqLen)
		y := make([]int32, B*m*SeqLen)
		idx := make([]int32, B)
		rng := rand.New(rand.NewPCG(9, 9))
		seen := map[int32]bool{}
		for iter := 0; iter < 20; iter++ {
			SampleBatch(rng, progs, B, m, x, y, idx)
			for b := 0; b < B; b++ {
				if idx[b] < 0 || int(idx[b]) >= len(progs) {
					t.Fatalf("progIdx[%d] = %d out of range", b, idx[b])
				}
				seen[idx[b]] = true
				p := progs[idx[b]]
				for j := 0; j < m; j++ {
					o := (b*m + j) * SeqLen
					xs, ys := x[o:o+SeqLen], y[o:o+SeqLen]
					for _, v := range xs {
						if v < 0 || v >= NumValues {
							t.Fatalf("input value %d out of range", v)
						}
					}
					if want := taskRefApply(p, xs); !slices.Equal(ys, want) {
						t.Fatalf("%s: spec %d pair %d: y %v, want %s(x) = %v", sp, b, j, ys, p, want)
					}
				}
			}
		}
		if len(seen) != len(progs) {
			t.Errorf("%s: only %d of %d programs drawn in 320 specs", sp, len(seen), len(progs))
		}

		// Deterministic for a seed; progIdx may be nil.
		x2, y2 := make([]int32, len(x)), make([]int32, len(y))
		SampleBatch(rand.New(rand.NewPCG(3, 4)), progs, B, m, x, y, idx)
		SampleBatch(rand.New(rand.NewPCG(3, 4)), progs, B, m, x2, y2, nil)
		if !slices.Equal(x, x2) || !slices.Equal(y, y2) {
			t.Errorf("%s: SampleBatch not deterministic", sp)
		}

		if n := testing.AllocsPerRun(50, func() { SampleBatch(rng, progs, B, m, x, y, idx) }); n != 0 {
			t.Errorf("%s: SampleBatch allocates %v times per run", sp, n)
		}
		if n := testing.AllocsPerRun(50, func() { SampleBatch(rng, progs, B, m, x, y, nil) }); n != 0 {
			t.Errorf("%s: SampleBatch(progIdx=nil) allocates %v times per run", sp, n)
		}
	}
}

func BenchmarkSampleBatch(b *testing.B) {
	progs := Programs(SplitCompI, PartOOD)
	const B, m = 64, 8
	x := make([]int32, B*m*SeqLen)
	y := make([]int32, B*m*SeqLen)
	idx := make([]int32, B)
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		SampleBatch(rng, progs, B, m, x, y, idx)
	}
}
