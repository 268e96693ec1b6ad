// The outputs of native curve besides its JSON: a markdown report (tables
// with rows = starts, columns = steps) and an SVG plot of accuracy against
// search steps (log scale), one line per starts value, written as plain text.

package main

import (
	"fmt"
	"html"
	"math"
	"path/filepath"
	"strings"
)

// curveMarkdown renders the report's tables; cells not yet done read "…".
func curveMarkdown(rep *curveReport) string {
	st := rep.Settings
	var b strings.Builder
	fmt.Fprintf(&b, "# Test-time compute curve: %s, %s\n\n", filepath.Base(rep.Weights.Path), st.Split)
	pv := rep.Weights.Provenance
	fmt.Fprintf(&b, "Weights `%s` (sha256 %.12s; trained on %s, %d steps, seed %d). %d tasks per test set "+
		"(seed %d), %d pairs each. Each cell is a separate gradient search (SPEC §4) with S starts and N steps, "+
		"its temperatures annealed over its N steps, as `native eval --starts S --search-steps N --seed %d` runs it: "+
		"σ %g, lr %g, τ_e %g → %g, τ_d %g → %g, hard check every %d steps, at most %d sequences a batch; device %s%s.\n",
		rep.Weights.Path, rep.Weights.SHA256, orDash(pv.Split), pv.Steps, pv.Seed, st.Tasks, st.Seed, st.Pairs, st.Seed,
		st.Search.Sigma, st.Search.LR, st.Search.TauE0, st.Search.TauE1, st.Search.TauD0, st.Search.TauD1,
		st.Search.CheckEvery, st.MaxSeqs, st.Device, map[bool]string{true: ", TF32"}[st.TF32])
	if !rep.Complete {
		fmt.Fprintf(&b, "\n**Partial**: cells marked … are not done yet (updated %s; continue with `--resume`).\n", rep.Updated)
	}
	for _, set := range rep.Sets {
		fmt.Fprintf(&b, "\n## %s (%d tasks)\n\n", set.Part, set.Tasks)
		fmt.Fprintf(&b, "Inductor alone: accuracy %s, spec solved %s.\n\n",
			cellValue(set, set.Inductor, 'a'), cellValue(set, set.Inductor, 's'))
		tables := []struct {
			title string
			what  byte
		}{
			{"Accuracy (prior: the best of S programs sampled from the inductor)", 'a'},
			{"Spec solved (the chosen program reproduces every specification pair)", 's'},
			{"Wall time, seconds", 'w'},
		}
		for _, t := range tables {
			fmt.Fprintf(&b, "%s:\n\n", t.title)
			b.WriteString("| S \\ N |")
			for _, N := range st.Steps {
				fmt.Fprintf(&b, " %d |", N)
			}
			b.WriteString(" prior |\n|---:|")
			b.WriteString(strings.Repeat("---:|", len(st.Steps)+1))
			b.WriteByte('\n')
			for i, S := range st.Starts {
				fmt.Fprintf(&b, "| %d |", S)
				for j := range st.Steps {
					fmt.Fprintf(&b, " %s |", cellValue(set, set.Gradient[i*len(st.Steps)+j], t.what))
				}
				fmt.Fprintf(&b, " %s |\n", cellValue(set, set.Prior[i], t.what))
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// cellValue formats accuracy ('a'), spec solved ('s') or wall time ('w').
func cellValue(set *curveSet, c *curveCell, what byte) string {
	if c.TasksDone < set.Tasks {
		return "…"
	}
	switch what {
	case 'a':
		return fmt.Sprintf("%.3f", c.Accuracy)
	case 's':
		return fmt.Sprintf("%.3f", c.SpecSolved)
	}
	return fmt.Sprintf("%.1f", c.WallS)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// curvePalette colours the starts values in order (cycled beyond its length).
var curvePalette = []string{"#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"}

// curveSVG plots one test set: accuracy (0..1) against search steps (log
// scale), one polyline per starts value (done cells only), the inductor as a
// dashed line, a legend on the right.
func curveSVG(rep *curveReport, set *curveSet) string {
	const (
		w, h                     = 600, 360
		left, right, top, bottom = 56, 470, 40, 310 // plot area
	)
	st := rep.Settings
	lo, hi := math.Log10(float64(st.Steps[0])), math.Log10(float64(st.Steps[len(st.Steps)-1]))
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5, hi+0.5
	} else {
		pad := 0.05 * (hi - lo)
		lo, hi = lo-pad, hi+pad
	}
	xOf := func(steps int) float64 {
		return left + (math.Log10(float64(steps))-lo)/(hi-lo)*(right-left)
	}
	yOf := func(acc float64) float64 { return bottom - acc*(bottom-top) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	title := fmt.Sprintf("%s · %s %s · %d tasks", filepath.Base(rep.Weights.Path), st.Split, set.Part, set.Tasks)
	fmt.Fprintf(&b, `<text x="%d" y="22" text-anchor="middle" font-size="13">%s</text>`+"\n", (left+right)/2, html.EscapeString(title))
	// Horizontal grid and y ticks.
	for k := 0; k <= 5; k++ {
		v := float64(k) / 5
		y := yOf(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, y, right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.1f</text>`+"\n", left-6, y+4, v)
	}
	// Axes, x ticks at the steps measured.
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" fill="none" stroke="black"/>`+"\n", left, top, bottom, right)
	for _, N := range st.Steps {
		x := xOf(N)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", x, bottom, x, bottom+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x, bottom+18, N)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">gradient search steps N (log scale)</text>`+"\n", (left+right)/2, bottom+38)
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">accuracy (%s)</text>`+"\n",
		(top+bottom)/2, (top+bottom)/2, html.EscapeString(set.Part))
	// Inductor reference.
	legendY := top + 6
	if set.Inductor.TasksDone >= set.Tasks {
		y := yOf(set.Inductor.Accuracy)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#777" stroke-dasharray="5 4"/>`+"\n", left, y, right, y)
	}
	// One line per starts value.
	for i, S := range st.Starts {
		col := curvePalette[i%len(curvePalette)]
		var pts []string
		for j, N := range st.Steps {
			c := set.Gradient[i*len(st.Steps)+j]
			if c.TasksDone < set.Tasks {
				continue
			}
			x, y := xOf(N), yOf(c.Accuracy)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`+"\n", x, y, col)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"/>`+"\n", strings.Join(pts, " "), col)
		y := legendY + 16*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.8"/>`+"\n", right+14, y, right+34, y, col)
		fmt.Fprintf(&b, `<text x="%d" y="%d">S = %d</text>`+"\n", right+40, y+4, S)
	}
	y := legendY + 16*len(st.Starts)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#777" stroke-dasharray="5 4"/>`+"\n", right+14, y, right+34, y)
	fmt.Fprintf(&b, `<text x="%d" y="%d">inductor</text>`+"\n", right+40, y+4)
	b.WriteString("</svg>\n")
	return b.String()
}
