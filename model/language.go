// The learned language: what each symbol of a trained model does when run
// alone, recognised against the suite's primitives, how the inductor
// writes the training programs with those symbols, and how the split's
// OOD programs compose from them (and whether the interpreter runs those
// compositions right).

package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// SymbolEffect describes one symbol executed alone (the program [sym,
// SKIP, …, SKIP]) on random inputs.
type SymbolEffect struct {
	Symbol int     `json:"symbol"`
	Uses   int     `json:"uses"`   // occurrences in the inductor's programs for the probe tasks
	Effect string  `json:"effect"` // the best-matching primitive program, "identity", or "unrecognised"
	Match  float64 `json:"match"`  // fraction of probe inputs on which Effect is exact
	// PosMatch is the fraction of output positions (over all probe inputs)
	// that the best-matching candidate (Effect, or Closest) gets right: how
	// near an unrecognised symbol is to it.
	PosMatch float64 `json:"pos_match"`
	Input    []int32 `json:"example_input"`
	Output   []int32 `json:"example_output"`
	Closest  string  `json:"closest,omitempty"` // for unrecognised symbols: the nearest candidate
}

// ProgramUse is how the inductor writes one training program.
type ProgramUse struct {
	Program string  `json:"program"` // the task's hidden program
	Symbols []int   `json:"symbols"` // its most common induced program, SKIPs removed
	Share   float64 `json:"share"`   // fraction of its tasks that got exactly that program
	Tasks   int     `json:"tasks"`
}

// Composition is how an out-of-distribution program can be written in a
// learned language: the shortest sequence of used symbols whose recognised
// effects, composed, equal the program on the probe inputs, and how often
// the interpreter running that symbol program gets the program's output.
type Composition struct {
	Program string  `json:"program"` // an OOD program of the split
	Symbols []int   `json:"symbols"` // nil: no sequence of recognised symbols of at most T makes it
	Exact   float64 `json:"exact"`   // fraction of probe inputs the interpreter gets exactly right
}

// Language is a learned language summary.
type Language struct {
	Symbols  []SymbolEffect `json:"symbols"`
	Programs []ProgramUse   `json:"programs"`
	OOD      []Composition  `json:"ood"`
	Encoder  *EncoderProbe  `json:"encoder,omitempty"`
}

// EncoderProbe says how well the inductor's pooled encodings of the probe
// tasks tell their hidden programs apart: a nearest-centroid classifier
// (Euclidean, over the flattened (T, d) encoding) fit on the first half of
// the tasks and scored on the second. A program the inductor writes with
// the same symbols as another may still be told apart here (the head
// merges them) or not (the encoder already has).
type EncoderProbe struct {
	Accuracy float64      `json:"accuracy"`
	Programs []ProbeClass `json:"programs"`
}

// ProbeClass is one program's row of the encoder probe.
type ProbeClass struct {
	Program  string `json:"program"`
	Right    int    `json:"right"`
	Tasks    int    `json:"tasks"`              // scored tasks of this program
	Confused string `json:"confused,omitempty"` // the program it is most often taken for
	Times    int    `json:"times,omitempty"`
}

// encoderProbe computes the EncoderProbe of tasks ts (m pairs each).
func encoderProbe(s *Searcher, ts []Task, m int) (*EncoderProbe, error) {
	cfg := s.M.Cfg
	TD := cfg.T * cfg.D
	enc := make([]float32, 0, len(ts)*TD)
	chunk := s.Chunk(1, m)
	for lo := 0; lo < len(ts); lo += chunk {
		tb, err := NewTaskBatch(ts[lo:min(len(ts), lo+chunk)])
		if err != nil {
			return nil, err
		}
		s.tp.NoGrad = true
		s.tp.Reset()
		e := s.pooled(tb)
		h := make([]float32, e.Len())
		s.M.B.Download(h, e)
		enc = append(enc, h...)
	}
	var names []string
	cls := make([]int, len(ts))
	for i, t := range ts {
		c := slices.Index(names, t.Program)
		if c < 0 {
			c = len(names)
			names = append(names, t.Program)
		}
		cls[i] = c
	}
	half := len(ts) / 2
	cent := make([][]float64, len(names))
	cnt := make([]int, len(names))
	for c := range cent {
		cent[c] = make([]float64, TD)
	}
	for i := 0; i < half; i++ {
		cnt[cls[i]]++
		for k, v := range enc[i*TD : (i+1)*TD] {
			cent[cls[i]][k] += float64(v)
		}
	}
	for c := range cent {
		for k := range cent[c] {
			cent[c][k] /= float64(max(1, cnt[c]))
		}
	}
	conf := make([][]int, len(names))
	for c := range conf {
		conf[c] = make([]int, len(names))
	}
	right, total := 0, 0
	for i := half; i < len(ts); i++ {
		best, bd := -1, math.Inf(1)
		for c := range cent {
			if cnt[c] == 0 {
				continue
			}
			d := 0.0
			for k, v := range enc[i*TD : (i+1)*TD] {
				x := float64(v) - cent[c][k]
				d += x * x
			}
			if d < bd {
				best, bd = c, d
			}
		}
		if best < 0 {
			continue
		}
		conf[cls[i]][best]++
		total++
		if best == cls[i] {
			right++
		}
	}
	p := &EncoderProbe{Accuracy: float64(right) / float64(max(1, total))}
	for c, n := range names {
		row := ProbeClass{Program: n, Right: conf[c][c]}
		for o, k := range conf[c] {
			row.Tasks += k
			if o != c && k > row.Times {
				row.Confused, row.Times = names[o], k
			}
		}
		p.Programs = append(p.Programs, row)
	}
	return p, nil
}

// effectCandidates lists the programs a symbol's effect is matched against:
// the identity, every rotation and every named primitive.
func effectCandidates() []Program {
	c := []Program{{{Op: "rotl", K: 0}}}
	for k := 1; k < SeqLen; k++ {
		c = append(c, Program{{Op: "rotl", K: k}})
	}
	for _, n := range NamedPrimitives() {
		if n != "rotl1" && n != "rotr1" { // same functions as rotl 1 and rotl 19
			c = append(c, Program{{Op: n}})
		}
	}
	return c
}

// DescribeLanguage runs the inductor on `tasks` tasks of split's training
// programs (m pairs each) to count symbol uses, then runs every used symbol
// alone on `probes` random inputs and names its effect. all describes
// every symbol, used or not.
func DescribeLanguage(s *Searcher, split Split, tasks, m, probes int, seed uint64, all bool) (*Language, error) {
	if tasks <= 0 || probes <= 0 || m <= 0 {
		return nil, fmt.Errorf("language: tasks, pairs and probes must be positive")
	}
	cfg := s.M.Cfg
	ts := GenTasks(split, PartID, tasks, m, seed)
	if ts == nil {
		return nil, fmt.Errorf("language: no tasks for split %q", split)
	}
	var res []Result
	chunk := s.Chunk(1, m)
	for lo := 0; lo < len(ts); lo += chunk {
		tb, err := NewTaskBatch(ts[lo:min(len(ts), lo+chunk)])
		if err != nil {
			return nil, err
		}
		res = append(res, s.Induce(tb)...)
	}
	uses := make([]int, cfg.K)
	byProg := map[string]map[string]int{}
	var order []string
	for i, r := range res {
		var kept []string
		for _, v := range r.Program {
			if v != Skip {
				uses[v]++
				kept = append(kept, fmt.Sprint(v))
			}
		}
		p := ts[i].Program
		if byProg[p] == nil {
			byProg[p] = map[string]int{}
			order = append(order, p)
		}
		byProg[p][strings.Join(kept, " ")]++
	}
	lang := &Language{}
	for _, p := range order {
		best, n, total := "", -1, 0
		for k, c := range byProg[p] {
			total += c
			if c > n || c == n && k < best {
				best, n = k, c
			}
		}
		var syms []int
		for _, f := range strings.Fields(best) {
			var v int
			fmt.Sscan(f, &v)
			syms = append(syms, v)
		}
		lang.Programs = append(lang.Programs, ProgramUse{Program: p, Symbols: syms, Share: float64(n) / float64(total), Tasks: total})
	}

	var err error
	if lang.Encoder, err = encoderProbe(s, ts, m); err != nil {
		return nil, err
	}

	// Probe inputs, and every symbol run alone on them.
	rng := rand.New(rand.NewPCG(seed, 0x6c616e67))
	x := make([]int32, probes*SeqLen)
	for i := range x {
		x[i] = int32(rng.IntN(NumValues))
	}
	var syms []int
	for k := 1; k < cfg.K; k++ {
		if all || uses[k] > 0 {
			syms = append(syms, k)
		}
	}
	if len(syms) == 0 {
		return lang, nil
	}
	progs := make([][]int, 0, len(syms)*probes)
	xs := make([]int32, 0, len(syms)*probes*SeqLen)
	for _, k := range syms {
		p := make([]int, cfg.T)
		p[0] = k
		for j := 0; j < probes; j++ {
			progs = append(progs, p)
		}
		xs = append(xs, x...)
	}
	out := s.Run(progs, xs)
	cands := effectCandidates()
	var effects []Program // the best-matching candidate of each symbol of syms
	want := make([]int32, SeqLen)
	for si, k := range syms {
		o := out[si*probes*SeqLen : (si+1)*probes*SeqLen]
		// The best candidate: most exact outputs, then most right positions.
		bestC, bestN, bestP := 0, -1, -1
		for ci, c := range cands {
			n, np := 0, 0
			for j := 0; j < probes; j++ {
				c.Apply(want, x[j*SeqLen:(j+1)*SeqLen])
				got := o[j*SeqLen : (j+1)*SeqLen]
				if slices.Equal(want, got) {
					n++
				}
				for i, v := range want {
					if got[i] == v {
						np++
					}
				}
			}
			if n > bestN || n == bestN && np > bestP {
				bestC, bestN, bestP = ci, n, np
			}
		}
		effects = append(effects, cands[bestC])
		e := SymbolEffect{Symbol: k, Uses: uses[k], Match: float64(bestN) / float64(probes),
			PosMatch: float64(bestP) / float64(probes*SeqLen),
			Input:    append([]int32(nil), x[:SeqLen]...), Output: append([]int32(nil), o[:SeqLen]...)}
		name := cands[bestC].String()
		if name == "rotl 0" {
			name = "identity"
		}
		if e.Match >= 0.5 {
			e.Effect = name
		} else {
			e.Effect, e.Closest = "unrecognised", name
		}
		lang.Symbols = append(lang.Symbols, e)
	}
	var known []int
	var knownEff []Program
	for i, e := range lang.Symbols {
		if e.Effect != "unrecognised" && e.Effect != "identity" {
			known, knownEff = append(known, syms[i]), append(knownEff, effects[i])
		}
	}
	lang.OOD = composeOOD(s, split, known, knownEff, x, probes)
	sort.SliceStable(lang.Symbols, func(i, j int) bool { return lang.Symbols[i].Uses > lang.Symbols[j].Uses })
	return lang, nil
}

// composeLimit bounds the breadth-first search over symbol sequences (the
// number of distinct functions kept).
const composeLimit = 20000

// composeOOD writes each OOD program of split as the shortest sequence (at
// most T) of the given symbols whose effects compose to it on the probe
// inputs x, then runs that symbol program through the interpreter on x.
func composeOOD(s *Searcher, split Split, syms []int, eff []Program, x []int32, probes int) []Composition {
	cfg := s.M.Cfg
	targets := Programs(split, PartOOD)
	out := make([]Composition, len(targets))
	n := probes * SeqLen
	key := func(v []int32) string {
		b := make([]byte, len(v))
		for i, c := range v {
			b[i] = byte(c)
		}
		return string(b)
	}
	want := make([]string, len(targets))
	for i, t := range targets {
		out[i].Program = t.String()
		y := make([]int32, n)
		for j := 0; j < probes; j++ {
			t.Apply(y[j*SeqLen:(j+1)*SeqLen], x[j*SeqLen:(j+1)*SeqLen])
		}
		want[i] = key(y)
	}
	// Breadth-first over functions: each level applies one more symbol.
	type node struct {
		y    []int32
		path []int
	}
	seen := map[string]bool{key(x): true}
	level := []node{{y: x}}
	distinct := map[string]bool{}
	for _, w := range want {
		distinct[w] = true
	}
	found, left := map[string][]int{}, len(distinct) // programs with equal outputs share one entry
	for depth := 1; depth <= cfg.T && left > 0 && len(level) > 0; depth++ {
		var next []node
		for _, nd := range level {
			for si, sym := range syms {
				y := make([]int32, n)
				for j := 0; j < probes; j++ {
					eff[si].Apply(y[j*SeqLen:(j+1)*SeqLen], nd.y[j*SeqLen:(j+1)*SeqLen])
				}
				k := key(y)
				if seen[k] || len(seen) >= composeLimit {
					continue
				}
				seen[k] = true
				path := append(append([]int(nil), nd.path...), sym)
				if distinct[k] && found[k] == nil {
					found[k] = path
					left--
				}
				next = append(next, node{y, path})
			}
		}
		level = next
	}
	var progs [][]int
	var idx []int
	for i := range targets {
		p := found[want[i]]
		if p == nil {
			continue
		}
		out[i].Symbols = p
		prog := make([]int, cfg.T) // symbols first, then SKIPs
		copy(prog, p)
		for j := 0; j < probes; j++ {
			progs = append(progs, prog)
		}
		idx = append(idx, i)
	}
	if len(progs) == 0 {
		return out
	}
	xs := make([]int32, 0, len(progs)*SeqLen)
	for range idx {
		xs = append(xs, x...)
	}
	got := s.Run(progs, xs)
	yt := make([]int32, SeqLen)
	for c, i := range idx {
		ok := 0
		for j := 0; j < probes; j++ {
			targets[i].Apply(yt, x[j*SeqLen:(j+1)*SeqLen])
			if slices.Equal(yt, got[(c*probes+j)*SeqLen:(c*probes+j+1)*SeqLen]) {
				ok++
			}
		}
		out[i].Exact = float64(ok) / float64(probes)
	}
	return out
}
