// The training data producer: a goroutine that samples the trainer's batches
// ahead of it into a few reused host buffers, so that the goroutine that owns
// the backend (on CUDA, the OS-locked thread of the context) only uploads
// them. The batches, their order and the checkpointed data state are those
// of sampling inline.

package model

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// prefetchDepth is the number of host batch buffers, so the producer runs at
// most this many batches ahead of the trainer (triple buffering).
const prefetchDepth = 3

// hostBatch is one sampled batch in host memory.
type hostBatch struct {
	x, y  []int32  // (B·m, L) inputs and outputs
	prog  []int32  // (B) index into the programs of each specification
	after rand.PCG // the data stream's state after drawing this batch
	err   error    // non-nil: sampling failed, x and y are not a batch, the producer has stopped
}

// producer samples batches on its own goroutine. It never touches a Backend,
// and it holds no reference to its Trainer, so that an abandoned trainer can
// be collected and its producer stopped by a cleanup.
type producer struct {
	free   chan *hostBatch // buffers the trainer has uploaded
	full   chan *hostBatch // sampled batches, in stream order
	done   chan struct{}   // closed by stop
	exited chan struct{}   // closed when the goroutine has returned
	once   sync.Once
}

// startProducer starts a producer that draws B·m pairs per batch from progs
// into bufs, continuing the data stream from state.
func startProducer(state rand.PCG, progs []Program, B, m int, bufs []*hostBatch) *producer {
	p := &producer{
		free:   make(chan *hostBatch, len(bufs)),
		full:   make(chan *hostBatch, len(bufs)),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for _, hb := range bufs {
		p.free <- hb
	}
	go p.run(state, progs, B, m)
	return p
}

func (p *producer) run(pcg rand.PCG, progs []Program, B, m int) {
	defer close(p.exited)
	rng := rand.New(&pcg)
	for {
		var hb *hostBatch
		select {
		case hb = <-p.free:
		case <-p.done:
			return
		}
		hb.err = sampleHost(rng, progs, B, m, hb)
		hb.after = pcg
		select {
		case p.full <- hb:
		case <-p.done:
			return
		}
		if hb.err != nil {
			return
		}
	}
}

// sampleHost draws one batch into hb, turning a panic into an error: a panic
// on the producer's goroutine would end the process past every recover of
// the caller.
func sampleHost(rng *rand.Rand, progs []Program, B, m int, hb *hostBatch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data producer: %v", r)
		}
	}()
	SampleBatch(rng, progs, B, m, hb.x, hb.y, hb.prog)
	return nil
}

// stop asks the goroutine to return; it may still be finishing a batch.
func (p *producer) stop() {
	p.once.Do(func() { close(p.done) })
}
