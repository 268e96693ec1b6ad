// Speed of gradient search in the browser against the same search natively.
//
//	go test ./serve -run '^$' -bench SearchNative -benchtime 3x     # native, one thread
//	NLI_BROWSER_BENCH=1 go test ./serve -run TestBrowserBench -v -timeout 30m
//
// TestBrowserBench (not a timed test: it only reports) measures, in headless
// Chromium on this machine: (1) start-steps per second of one worker against
// the same search natively on one thread, and (2) the time the site's default
// search takes to solve shift-l OOD tasks (median over NLI_BENCH_TASKS tasks,
// default 20) with NLI_BENCH_WORKERS workers (default "2,1") and the model
// NLI_BENCH_MODEL (default: the site's).
// docs/BROWSER.md records the numbers.

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nli-go/nli/model"
)

// benchSearch is the fixed search both sides run for start-steps/s: one
// task, 8 starts, 20 steps, one hard check at the end (so no early exit
// before step 20 and no per-step check overhead).
var benchSearch = model.SearchConfig{Starts: 8, Steps: 20, CheckEvery: 20}

// benchTask is the task of the speed comparison (shift-l/ood/000000 of seed 1234).
func benchTask() model.Task { return model.GenTasks(model.SplitShiftL, model.PartOOD, 1, 4, 1234)[0] }

// nativeModel loads the shipped shift-l weights on a one-thread CPU backend.
func nativeModel(tb testing.TB) *model.Model {
	tb.Helper()
	wf, err := model.ReadWeightsFile("../weights/shift-l.nliw.sz")
	if err != nil {
		tb.Skipf("no shipped weights: %v", err)
	}
	m, err := model.LoadModel(model.NewCPU(1), wf, "shift-l")
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// nativeSearch runs sc on t natively and returns the wall time and result.
func nativeSearch(tb testing.TB, s *model.Searcher, t model.Task, sc model.SearchConfig, seed uint64) (time.Duration, model.Result) {
	tb.Helper()
	tbatch, err := model.NewTaskBatch([]model.Task{t})
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	r := s.Gradient(tbatch, sc, seed, nil)[0]
	return time.Since(t0), r
}

func withDefaults(m *model.Model, sc model.SearchConfig) model.SearchConfig {
	d := m.Cfg.Search
	d.Starts, d.Steps, d.CheckEvery = sc.Starts, sc.Steps, sc.CheckEvery
	return d
}

// BenchmarkSearchNative is the native side of the comparison: the same
// search as the browser's, on one thread.
func BenchmarkSearchNative(b *testing.B) {
	m := nativeModel(b)
	s := model.NewSearcher(m)
	sc := withDefaults(m, benchSearch)
	task := benchTask()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		d, _ := nativeSearch(b, s, task, sc, 0)
		total += d
	}
	b.ReportMetric(float64(b.N*sc.Starts*sc.Steps)/total.Seconds(), "start-steps/s")
}

func TestBrowserBench(t *testing.T) {
	if os.Getenv("NLI_BROWSER_BENCH") == "" {
		t.Skip("set NLI_BROWSER_BENCH=1 to run the browser benchmark")
	}
	nTasks := 20
	if v, err := strconv.Atoi(os.Getenv("NLI_BENCH_TASKS")); err == nil && v > 0 {
		nTasks = v
	}
	ctx, logs := startBrowser(t)
	s := startSite(t)
	openSite(t, ctx, s.url+"?workers=1&model=shift-l") // the model nativeModel loads
	first, _ := s.served()
	t.Logf("first visit: %d bytes", first)

	// (1) start-steps/s, one worker vs one native thread, same search.
	task := benchTask()
	tj, _ := json.Marshal(task)
	m := nativeModel(t)
	searcher := model.NewSearcher(m)
	sc := withDefaults(m, benchSearch)
	type res struct {
		Ms      float64 `json:"ms"`
		Steps   int     `json:"steps"`
		Program []int   `json:"program"`
	}
	js := fmt.Sprintf(`nliApp.engine().workers[0].call("search", [%s], {starts: %d, steps: %d, checkEvery: %d, seed: 0})`,
		tj, sc.Starts, sc.Steps, sc.CheckEvery)
	var browser, native []float64
	var bProg, nProg []int
	for i := 0; i < 3; i++ {
		r := within(t, ctx, 10*time.Minute, "browser search", chromedp.Evaluate[res](js, chromedp.EvalAwaitPromise))
		browser = append(browser, float64(r.Steps*sc.Starts)/(r.Ms/1000))
		bProg = r.Program
		d, nr := nativeSearch(t, searcher, task, sc, 0)
		native = append(native, float64(sc.Steps*sc.Starts)/d.Seconds())
		nProg = nr.Program
	}
	bm, nm := median(browser), median(native)
	t.Logf("start-steps/s (%d starts × %d steps, check at the end): browser one worker %.1f %v, native one thread %.1f %v; native/browser = %.2f×",
		sc.Starts, sc.Steps, bm, browser, nm, native, nm/bm)
	t.Logf("same program in browser and native for the same seed: %v (%v vs %v)", slices.Equal(bProg, nProg), bProg, nProg)

	// (2) time to solve with the site's default settings and workers.
	workerList := []int{2, 1}
	if v := os.Getenv("NLI_BENCH_WORKERS"); v != "" {
		workerList = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				workerList = append(workerList, n)
			}
		}
	}
	for _, workers := range workerList {
		page := s.url + "?workers=" + strconv.Itoa(workers)
		if id := os.Getenv("NLI_BENCH_MODEL"); id != "" {
			page += "&model=" + id
		}
		openSite(t, ctx, page)
		modelName := within(t, ctx, 5*time.Second, "model", chromedp.Evaluate[string](`nliApp.state.model.name`))
		starts := within(t, ctx, 5*time.Second, "default starts", chromedp.Evaluate[int](`Number(document.getElementById("opt-starts").value)`))
		steps := within(t, ctx, 5*time.Second, "default steps", chromedp.Evaluate[int](`Number(document.getElementById("opt-steps").value)`))
		tasks := model.GenTasks(model.SplitShiftL, model.PartOOD, nTasks, 4, 7)
		var times []float64
		solved, right := 0, 0
		for _, task := range tasks {
			tj, _ := json.Marshal(task)
			type sres struct {
				WallMs   float64 `json:"wallMs"`
				SolvedAt int     `json:"solvedAt"`
				Correct  bool    `json:"correct"`
			}
			r := within(t, ctx, 10*time.Minute, "browser solve", chromedp.Evaluate[sres](
				fmt.Sprintf(`nliApp.engine().search(%s, {starts: %d, steps: %d, seed: 0}, () => {})`, tj, starts, steps), chromedp.EvalAwaitPromise))
			secs := r.WallMs / 1000
			if r.SolvedAt < 0 {
				secs = 1e9 // unsolved counts as never
			} else {
				solved++
			}
			if r.Correct {
				right++
			}
			times = append(times, secs)
			t.Logf("  %s (%s): %.2f s, solved at step %d, correct %v", task.ID, task.Program, r.WallMs/1000, r.SolvedAt, r.Correct)
		}
		t.Logf("%s, site defaults (%d starts, ≤ %d steps, %d worker(s)): median time to solve %.2f s over %d shift-l OOD tasks (seed 7); solved %d, right %d",
			modelName, starts, steps, workers, median(times), nTasks, solved, right)
	}
	if errs := logs.list(); len(errs) > 0 {
		t.Errorf("console errors:\n%v", errs)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
