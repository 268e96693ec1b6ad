// A persistent pool of worker goroutines behind the CPU backend's parallel
// loops. Goroutines start once, in newPool; a loop hands each worker one
// contiguous range of items through a channel and waits for all of them.

package model

import "runtime"

// rangeJob is the body of one parallel loop: run handles items [lo, hi) on
// worker w (0 ≤ w < workers; w indexes per-worker scratch). The CPU backend
// keeps one job struct per op and dispatches a pointer to it, so a loop
// allocates nothing.
type rangeJob interface {
	run(w, lo, hi int)
}

// poolTask is what a helper goroutine receives: a job and its range.
type poolTask struct {
	job       rangeJob
	w, lo, hi int
}

// pool runs range jobs on the calling goroutine (worker 0) plus workers−1
// helper goroutines.
type pool struct {
	workers int
	tasks   []chan poolTask // tasks[i] feeds helper i+1
	done    chan struct{}   // one receive per finished helper task
}

// newPool starts workers−1 helper goroutines (none when workers == 1).
func newPool(workers int) *pool {
	if workers < 1 {
		panic("model: pool needs at least one worker")
	}
	p := &pool{workers: workers}
	if workers > 1 {
		p.tasks = make([]chan poolTask, workers-1)
		p.done = make(chan struct{}, workers-1)
		for i := range p.tasks {
			p.tasks[i] = make(chan poolTask, 1)
			go p.loop(p.tasks[i])
		}
	}
	return p
}

// loop is a helper goroutine: it runs tasks until its channel is closed.
func (p *pool) loop(tasks <-chan poolTask) {
	for t := range tasks {
		t.job.run(t.w, t.lo, t.hi)
		p.done <- struct{}{}
	}
}

// close stops the helper goroutines. The pool must not be used afterwards.
func (p *pool) close() {
	for _, ch := range p.tasks {
		close(ch)
	}
	p.tasks = nil
}

// parallelFor runs job over [0, n), split into at most p.workers contiguous
// ranges of at least grain items (the last may be shorter). The caller runs
// the first range itself and returns when every range is done. Which worker
// runs which range never changes what a job computes for an item, so results
// do not depend on the number of workers.
func (p *pool) parallelFor(n, grain int, job rangeJob) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	parts := min(p.workers, (n+grain-1)/grain)
	if parts <= 1 {
		job.run(0, 0, n)
		return
	}
	chunk := (n + parts - 1) / parts
	sent := 0
	for w := 1; w < parts; w++ {
		lo := w * chunk
		if lo >= n {
			break
		}
		p.tasks[w-1] <- poolTask{job: job, w: w, lo: lo, hi: min(lo+chunk, n)}
		sent++
	}
	// Wait for the helpers even if the caller's range panics, so that no
	// stale completion is left in p.done for the next loop.
	defer p.wait(sent)
	job.run(0, 0, min(chunk, n))
}

// wait receives n completions.
func (p *pool) wait(n int) {
	for ; n > 0; n-- {
		<-p.done
	}
}

// defaultWorkers is the worker count for NewCPU(0).
func defaultWorkers() int { return runtime.GOMAXPROCS(0) }
