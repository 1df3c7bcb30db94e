package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// localComm is a Comm between goroutines, for testing Parallel's ranks
// without MPI: a sum adds the ranks' buffers in rank order, as MPI's
// reduction of two ranks does (a+b); its order for more is MPI's choice.
type localComm struct {
	rank int
	w    *localWorld
}

type localWorld struct {
	mu     sync.Mutex
	cond   *sync.Cond
	size   int
	bufs   []any
	arrive int
	gen    int
	fail   int // the rank that failed (left); -1 while all are there
}

func newLocalWorld(size int) []*localComm {
	w := &localWorld{size: size, bufs: make([]any, size), fail: -1}
	w.cond = sync.NewCond(&w.mu)
	cs := make([]*localComm, size)
	for r := range cs {
		cs[r] = &localComm{rank: r, w: w}
	}
	return cs
}

func (c *localComm) Rank() int { return c.rank }
func (c *localComm) Size() int { return c.w.size }

// leave makes the others' collectives fail, as a dead rank does under MPI.
func (c *localComm) leave() {
	c.w.mu.Lock()
	c.w.fail = c.rank
	c.w.cond.Broadcast()
	c.w.mu.Unlock()
}

// collective deposits buf, waits for every rank, runs combine on rank 0's
// turn (the buffers of all), and waits again before returning.
func (c *localComm) collective(buf any, combine func(bufs []any)) error {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for phase := range 2 {
		if w.fail >= 0 {
			return fmt.Errorf("rank %d left", w.fail)
		}
		if phase == 0 {
			w.bufs[c.rank] = buf
		}
		gen := w.gen
		w.arrive++
		if w.arrive == w.size {
			if phase == 0 {
				combine(w.bufs)
			}
			w.arrive = 0
			w.gen++
			w.cond.Broadcast()
			continue
		}
		for gen == w.gen && w.fail < 0 {
			w.cond.Wait()
		}
		if gen == w.gen { // woken by a rank that left, not by the last to arrive
			return fmt.Errorf("rank %d left", w.fail)
		}
	}
	return nil
}

func sumLocal[T float32 | float64](bufs []any) {
	first := bufs[0].([]T)
	sum := make([]T, len(first))
	for _, b := range bufs {
		for i, v := range b.([]T) {
			sum[i] += v
		}
	}
	for _, b := range bufs {
		copy(b.([]T), sum)
	}
}

func broadcastLocal[T float32 | float64](root int) func(bufs []any) {
	return func(bufs []any) {
		for _, b := range bufs {
			copy(b.([]T), bufs[root].([]T))
		}
	}
}

func (c *localComm) SumFloat32(b []float32) error { return c.collective(b, sumLocal[float32]) }
func (c *localComm) SumFloat64(b []float64) error { return c.collective(b, sumLocal[float64]) }
func (c *localComm) BroadcastFloat32(b []float32, root int) error {
	return c.collective(b, broadcastLocal[float32](root))
}
func (c *localComm) BroadcastFloat64(b []float64, root int) error {
	return c.collective(b, broadcastLocal[float64](root))
}

// fitRanks trains one model per rank, each a Parallel over comms[r], with
// Fit on every rank at once, and returns each rank's parameters and state
// and its error.
func fitRanks(t *testing.T, newModel func() (Model[float32], func() Model[float32]), shards, ranks, examples int, poison func(r int, d *Slices[float32])) ([][]float32, []error) {
	comms := newLocalWorld(ranks)
	out, errs := make([][]float32, ranks), make([]error, ranks)
	dir := t.TempDir()
	ckpt := func(r int) string { return filepath.Join(dir, fmt.Sprintf("rank%d.safetensors", r)) }
	var wg sync.WaitGroup
	for r := range ranks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, replica := newModel()
			p, err := NewParallel(m, replica, ParallelConfig{Shards: shards, Workers: 1, Comm: comms[r]})
			if err != nil {
				errs[r] = err
				comms[r].leave()
				return
			}
			defer p.Close()
			data := randomData(t, p.IO(), examples, 3)
			if poison != nil {
				poison(r, data)
			}
			cfg := Config[float32]{Epochs: 2, Schedule: Constant{LR: 1e-3}, Clip: 5, Seed: 1, Validation: randomData(t, p.IO(), 50, 4), Checkpoint: ckpt(r)}
			if _, errs[r] = Fit(context.Background(), p, data, cfg); errs[r] != nil {
				comms[r].leave()
			}
			out[r] = params(m)
		}()
	}
	wg.Wait()
	for r := range ranks {
		// Every rank names a file of its own here: only rank 0's is written.
		if _, err := os.Stat(ckpt(r)); (err == nil) != (r == 0) && errs[r] == nil {
			t.Errorf("rank %d: checkpoint %s: %v; want a file from rank 0 only", r, ckpt(r), err)
		}
	}
	return out, errs
}

// TestParallelRanks: 2 ranks of 2 shards each train exactly as 4 shards in
// one process (a rank's tree sum is half of the process's, and a sum of two
// is a+b in any order); 4 ranks of one shard agree with each other and come
// close to it (their sum's order is the communicator's).
func TestParallelRanks(t *testing.T) {
	for _, mc := range replicated {
		t.Run(mc.name, func(t *testing.T) {
			m, _ := mc.new()
			b := m.IO().Batch
			examples := 9*b + 5
			want := fitParallel(t, mc.new, ParallelConfig{Shards: 4, Workers: 1}, examples)
			got, errs := fitRanks(t, mc.new, 4, 2, examples, nil)
			for r := range got {
				if errs[r] != nil {
					t.Fatalf("2 ranks: rank %d: %v", r, errs[r])
				}
				if i := equalBits(got[r], want); i >= 0 {
					t.Errorf("2 ranks: rank %d: element %d is %v, %v in one process", r, i, got[r][i], want[i])
				}
			}
			got, errs = fitRanks(t, mc.new, 4, 4, examples, nil)
			for r := range got {
				if errs[r] != nil {
					t.Fatalf("4 ranks: rank %d: %v", r, errs[r])
				}
				if i := equalBits(got[r], got[0]); i >= 0 {
					t.Errorf("4 ranks: rank %d differs from rank 0 at element %d", r, i)
				}
			}
			var worst float64
			for i := range want {
				worst = max(worst, math.Abs(float64(got[0][i]-want[i])))
			}
			if worst > 1e-4 {
				t.Errorf("4 ranks: parameters differ from one process's by up to %g", worst)
			}
		})
	}
}

// TestParallelRankFails: a NaN in the rows of rank 1 stops every rank at
// the same step, before any update, each saying which rank failed.
func TestParallelRankFails(t *testing.T) {
	mc := replicated[0]
	m, _ := mc.new()
	b := m.IO().Batch
	_, errs := fitRanks(t, mc.new, 2, 2, 4*b, func(r int, d *Slices[float32]) {
		// Sequential would be simpler, but shuffled rows land anywhere:
		// poison every example, so the first step fails on both halves.
		if r == 1 {
			for i := range d.Inputs[0] {
				d.Inputs[0][i] = float32(math.NaN())
			}
		}
	})
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "rank 1 of 2") || !strings.Contains(errs[1].Error(), "is NaN") {
		t.Errorf("rank 1: %v", errs[1])
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "ranks [1] failed this step") {
		t.Errorf("rank 0: %v", errs[0])
	}
}
