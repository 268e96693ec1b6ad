// The learned language: what each symbol of a trained model does when run
// alone, recognised against the suite's primitives, and how the inductor
// writes the training programs with those symbols.

package model

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// SymbolEffect describes one symbol executed alone (the program [sym,
// SKIP, …, SKIP]) on random inputs.
type SymbolEffect struct {
	Symbol  int     `json:"symbol"`
	Uses    int     `json:"uses"`   // occurrences in the inductor's programs for the probe tasks
	Effect  string  `json:"effect"` // the best-matching primitive program, "identity", or "unrecognised"
	Match   float64 `json:"match"`  // fraction of probe inputs on which Effect is exact
	Input   []int32 `json:"example_input"`
	Output  []int32 `json:"example_output"`
	Closest string  `json:"closest,omitempty"` // for unrecognised symbols: the nearest candidate
}

// ProgramUse is how the inductor writes one training program.
type ProgramUse struct {
	Program string  `json:"program"` // the task's hidden program
	Symbols []int   `json:"symbols"` // its most common induced program, SKIPs removed
	Share   float64 `json:"share"`   // fraction of its tasks that got exactly that program
	Tasks   int     `json:"tasks"`
}

// Language is a learned language summary.
type Language struct {
	Symbols  []SymbolEffect `json:"symbols"`
	Programs []ProgramUse   `json:"programs"`
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
	want := make([]int32, SeqLen)
	for si, k := range syms {
		o := out[si*probes*SeqLen : (si+1)*probes*SeqLen]
		bestC, bestN := 0, -1
		for ci, c := range cands {
			n := 0
			for j := 0; j < probes; j++ {
				c.Apply(want, x[j*SeqLen:(j+1)*SeqLen])
				if slices.Equal(want, o[j*SeqLen:(j+1)*SeqLen]) {
					n++
				}
			}
			if n > bestN {
				bestC, bestN = ci, n
			}
		}
		e := SymbolEffect{Symbol: k, Uses: uses[k], Match: float64(bestN) / float64(probes),
			Input: append([]int32(nil), x[:SeqLen]...), Output: append([]int32(nil), o[:SeqLen]...)}
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
	sort.SliceStable(lang.Symbols, func(i, j int) bool { return lang.Symbols[i].Uses > lang.Symbols[j].Uses })
	return lang, nil
}
