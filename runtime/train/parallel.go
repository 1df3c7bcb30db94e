package train

import (
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"github.com/backpropgen/backpropgen/runtime"
)

// ParallelConfig says how Parallel splits a batch.
type ParallelConfig struct {
	// Shards is the number of parts every batch is split into, each
	// computed by a replica of the model. The result depends on it (a
	// batch norm's statistics are per shard, as in PyTorch's DDP; every
	// shard draws dropout masks of its own) but not on Workers: with the
	// same Shards, 1, 2 or 16 workers give bit-identical parameters.
	// Default: Workers.
	Shards int
	// Workers is the number of goroutines computing shards (default
	// GOMAXPROCS), at most Shards.
	Workers int
	// Batch is the number of rows of a step (default: Shards × the model's
	// batch). A shard of more rows than the model's batch runs as several
	// backward passes into its gradients (gradient accumulation).
	Batch int
	// Comm, when set, spreads the shards over processes (MPI ranks, see
	// runtime/mpi): rank r computes shards r·L to r·L+L-1 of every batch
	// (L = Shards / Size, with Workers goroutines of its own) and one
	// all-reduce per step sums the ranks' gradients. Every rank runs the
	// same Fit over the same data and settings; rank 0 broadcasts the
	// initial parameters, logs, and writes the checkpoints and files.
	Comm Comm
}

// Comm is what Parallel needs of a communicator between processes: its
// place and size, and in-place sums and broadcasts over all of them, each
// called by every rank in the same order (collectives). runtime/mpi's
// Comm is one, over MPI.
type Comm interface {
	Rank() int
	Size() int
	SumFloat32(buf []float32) error
	SumFloat64(buf []float64) error
	BroadcastFloat32(buf []float32, root int) error
	BroadcastFloat64(buf []float64, root int) error
}

// Parallel is a model trained data-parallel in one process: every batch
// is split into shards, each replica of the model (which share its
// parameters) computes its shard's gradients in a pool of goroutines, and
// their mean, weighted by the shards' rows, is summed in a fixed tree
// order into the model's gradients. It satisfies Model, so Fit trains it
// as it trains the model; checkpoints are the model's.
//
//	p, err := train.NewParallel(m, func() train.Model[float32] { return m.NewReplica() },
//		train.ParallelConfig{Shards: 4, Workers: 2})
//	defer p.Close()
//	res, err := train.Fit(ctx, p, data, cfg)
type Parallel[T runtime.Float] struct {
	main   Model[T]
	reps   []Model[T] // reps[0] is main
	repIO  []runtime.IO[T]
	io     runtime.IO[T] // the step's rows: Fill writes here
	out    []T           // the step's outputs, gathered from the shards
	shards int           // in all ranks
	per    int           // the model's batch: rows a replica takes at once

	// Across processes: this rank computes shards first to first+len(reps)-1.
	comm    Comm
	rank    int
	ranks   int
	first   int
	status  []float64 // the step's loss sum and every rank's failure flag, summed over the ranks
	initErr error     // a broadcast in Init failed
	gather  bool      // out holds only this rank's rows of the last step

	// The step in progress, read by the workers.
	n      int
	lo, hi []int     // the shards' rows
	scale  []float64 // what each replica's gradients are multiplied by in the sum
	loss   []float64
	errs   []error
	eval   bool
	seed   uint64 // the model's dropout counters at the step's start
	step   uint64
	random []counted // nil, or every replica's counters

	// The pool: worker w > 0 waits for phase to pass its last, spinning a
	// while (a wake-up through the scheduler costs tens of microseconds,
	// as much as a small model's step) and then parking on wake[w].
	workers  int
	task     task                    // the phase's work
	opt      runtime.RangeStepper[T] // the optimizer of a step phase
	phase    atomic.Uint64           // incremented to start a phase
	pending  atomic.Int64            // workers not done with the phase
	sleeping []atomic.Bool
	wake     []chan struct{}
	stop     atomic.Bool
	states   [][]runtime.Tensor[T] // each replica's state tensors
}

// task is what a phase of the pool does.
type task int

const (
	computeShards task = iota // every shard's loss and gradients
	sumGradients              // the shards' gradients into the model's
	stepOptimizer             // the optimizer's update, block by block
)

// lateWake, set by a test, delays run between starting a phase and waking
// the sleeping workers, as a preempted caller would.
var lateWake func()

// poolSpin is how long a worker polls for the next phase before parking.
const poolSpin = 200 * time.Microsecond

// counted is a model with dropout: its masks are keyed by its counters.
type counted interface {
	Counters() (seed, step uint64)
	SetCounters(seed, step uint64)
}

// accumulating is what gradient accumulation needs of a model: the
// passes apart (every generated model has them).
type accumulating[T runtime.Float] interface {
	ZeroGrad()
	Forward(n int) (T, error)
	Backward(n int) error
}

// NewParallel returns m trained data-parallel with replicas from
// newReplica (a generated model's NewReplica). Close it when done.
func NewParallel[T runtime.Float](m Model[T], newReplica func() Model[T], cfg ParallelConfig) (*Parallel[T], error) {
	if cfg.Workers < 0 || cfg.Shards < 0 || cfg.Batch < 0 {
		return nil, fmt.Errorf("train: parallel: negative Shards (%d), Workers (%d) or Batch (%d)", cfg.Shards, cfg.Workers, cfg.Batch)
	}
	ranks := 1
	if cfg.Comm != nil {
		ranks = max(1, cfg.Comm.Size())
	}
	if cfg.Workers == 0 {
		cfg.Workers = goruntime.GOMAXPROCS(0)
		if cfg.Shards > 0 {
			cfg.Workers = max(1, min(cfg.Workers, cfg.Shards/ranks))
		}
	}
	if cfg.Shards == 0 {
		cfg.Shards = cfg.Workers * ranks
	}
	if cfg.Workers > cfg.Shards {
		return nil, fmt.Errorf("train: parallel: %d workers for %d shards: a worker needs a shard; use at most %d workers or more shards", cfg.Workers, cfg.Shards, cfg.Shards)
	}
	mio := m.IO()
	if cfg.Batch == 0 {
		cfg.Batch = cfg.Shards * mio.Batch
	}
	if cfg.Batch < cfg.Shards {
		return nil, fmt.Errorf("train: parallel: a batch of %d rows cannot fill %d shards", cfg.Batch, cfg.Shards)
	}
	p := &Parallel[T]{main: m, shards: cfg.Shards, workers: cfg.Workers, per: mio.Batch, ranks: 1}
	local := cfg.Shards
	if c := cfg.Comm; c != nil {
		p.comm, p.rank, p.ranks = c, c.Rank(), c.Size()
		if p.ranks < 1 || p.rank < 0 || p.rank >= p.ranks {
			return nil, fmt.Errorf("train: parallel: rank %d of %d", p.rank, p.ranks)
		}
		if cfg.Shards%p.ranks != 0 {
			return nil, fmt.Errorf("train: parallel: %d shards over %d ranks: use a multiple of %d shards", cfg.Shards, p.ranks, p.ranks)
		}
		local = cfg.Shards / p.ranks
		p.first = p.rank * local
		if cfg.Workers > local {
			return nil, fmt.Errorf("train: parallel: %d workers for the %d shards of a rank: a worker needs a shard; use at most %d workers or more shards", cfg.Workers, local, local)
		}
		p.status = make([]float64, 1+p.ranks)
	}
	p.reps = []Model[T]{m}
	for range local - 1 {
		r := newReplica()
		rio := r.IO()
		if &rio.Params[0] != &mio.Params[0] {
			return nil, errors.New("train: parallel: a replica does not share the model's parameters: make replicas with the model's NewReplica")
		}
		if &rio.Grads[0] == &mio.Grads[0] {
			return nil, errors.New("train: parallel: a replica shares the model's gradients: make replicas with the model's NewReplica")
		}
		p.reps = append(p.reps, r)
	}
	for _, r := range p.reps {
		p.repIO = append(p.repIO, r.IO())
		// Tensors lists the parameters, then the state: keep the state.
		ts, params := r.Tensors(), 0
		for len(ts) > 0 && params < len(mio.Params) {
			params += len(ts[0].Data)
			ts = ts[1:]
		}
		p.states = append(p.states, ts)
		if c, ok := r.(counted); ok {
			p.random = append(p.random, c)
		}
		if _, ok := r.(accumulating[T]); !ok && cfg.Batch > cfg.Shards*mio.Batch {
			return nil, fmt.Errorf("train: parallel: a batch of %d rows needs gradient accumulation (more than %d shards of %d), which %s does not offer (ZeroGrad, Forward, Backward)", cfg.Batch, cfg.Shards, mio.Batch, mio.Model)
		}
	}
	if len(p.random) != len(p.reps) {
		p.random = nil
	}
	p.io = runtime.IO[T]{Model: mio.Model, Batch: cfg.Batch, Params: mio.Params, Grads: mio.Grads, OutputRow: mio.OutputRow}
	for _, f := range mio.Inputs {
		p.io.Inputs = append(p.io.Inputs, runtime.Feed[T]{Name: f.Name, Row: f.Row, Data: make([]T, cfg.Batch*f.Row)})
	}
	for _, f := range mio.Labels {
		p.io.Labels = append(p.io.Labels, runtime.LabelFeed{Name: f.Name, Row: f.Row, Classes: f.Classes, Data: make([]int32, cfg.Batch*f.Row)})
	}
	p.out = make([]T, cfg.Batch*mio.OutputRow)
	p.lo, p.hi = make([]int, p.shards), make([]int, p.shards)
	p.scale, p.loss, p.errs = make([]float64, p.shards), make([]float64, p.shards), make([]error, p.shards)
	if p.status == nil {
		p.status = make([]float64, 1)
	}
	runtime.Reserve(p.workers) // the GEMM's work buffers for as many products at once
	p.wake = make([]chan struct{}, p.workers)
	p.sleeping = make([]atomic.Bool, p.workers)
	for w := 1; w < p.workers; w++ {
		p.wake[w] = make(chan struct{}, 1)
		go p.worker(w)
	}
	return p, nil
}

// Shards is the number of shards of every step, over all ranks.
func (p *Parallel[T]) Shards() int { return p.shards }

// Workers is the number of goroutines computing this process's shards.
func (p *Parallel[T]) Workers() int { return p.workers }

// Close stops the workers.
func (p *Parallel[T]) Close() {
	if p.stop.Swap(true) {
		return
	}
	p.phase.Add(1)
	for w := 1; w < p.workers; w++ {
		if p.sleeping[w].CompareAndSwap(true, false) {
			p.wake[w] <- struct{}{}
		}
	}
	p.workers = 1
}

// worker runs worker w's part of every phase until Close.
func (p *Parallel[T]) worker(w int) {
	var seen uint64
	for {
		seen = p.await(w, seen)
		if p.stop.Load() {
			return
		}
		p.work(w, p.task)
		p.pending.Add(-1)
	}
}

// await returns the phase after seen, spinning for poolSpin, then parking.
// A wake-up can come late, for a phase this worker already ran (run sends
// one to every worker it finds asleep, and a fast worker may have finished
// the phase and gone to sleep before run got to it): it waits again then.
func (p *Parallel[T]) await(w int, seen uint64) uint64 {
	for {
		start := time.Now()
		for {
			for range 256 {
				if ph := p.phase.Load(); ph != seen {
					return ph
				}
			}
			if time.Since(start) > poolSpin {
				break
			}
		}
		p.sleeping[w].Store(true)
		if ph := p.phase.Load(); ph != seen { // started while we went to sleep
			if !p.sleeping[w].CompareAndSwap(true, false) {
				<-p.wake[w] // run already took the flag and sends
			}
			return ph
		}
		<-p.wake[w]
		if ph := p.phase.Load(); ph != seen {
			return ph
		}
	}
}

// IO describes the step's buffers: the rows of the whole batch, which the
// shards copy from, and the model's parameters and gradients.
func (p *Parallel[T]) IO() runtime.IO[T] { return p.io }

// Init initializes the model (and so the shared parameters) and copies its
// state to the replicas.
func (p *Parallel[T]) Init(seed uint64) {
	p.main.Init(seed)
	if err := p.fromRank0(); err != nil {
		// Init has no error to return; the next step's collective fails
		// and says so. Every rank initialized from the same seed anyway.
		p.initErr = err
	}
	p.syncState()
}

// Tensors are the model's.
func (p *Parallel[T]) Tensors() []runtime.Tensor[T] { return p.main.Tensors() }

// SaveCheckpoint writes the model's checkpoint (with a Comm, on rank 0
// only: the other ranks hold the same parameters and optimizer state).
func (p *Parallel[T]) SaveCheckpoint(path string, opt runtime.Optimizer[T], meta map[string]string) error {
	if p.rank != 0 {
		return nil
	}
	return p.main.SaveCheckpoint(path, opt, meta)
}

// LoadCheckpoint loads the model's checkpoint and copies its state to the
// replicas.
//
// With a Comm every rank reads the file (so it must be where every rank
// can read it), after all ranks have met, so that rank 0 has finished any
// save; then rank 0's parameters and state are broadcast.
func (p *Parallel[T]) LoadCheckpoint(path string, opt runtime.Optimizer[T]) (map[string]string, error) {
	if p.comm != nil {
		var met [1]float64
		if err := p.comm.SumFloat64(met[:]); err != nil {
			return nil, fmt.Errorf("%s: parallel: rank %d waiting for the others before loading %s: %w", p.io.Model, p.rank, path, err)
		}
	}
	meta, err := p.main.LoadCheckpoint(path, opt)
	if err != nil {
		return meta, err
	}
	if err := p.fromRank0(); err != nil {
		return meta, err
	}
	p.syncState()
	return meta, nil
}

// syncState copies the model's state (running statistics) to the replicas.
func (p *Parallel[T]) syncState() {
	for _, st := range p.states[1:] {
		for i, t := range st {
			copy(t.Data, p.states[0][i].Data)
		}
	}
}

// Output returns the outputs of the last step's or evaluation's n rows.
// With a Comm, after a step it gathers the other ranks' rows: every rank
// must call it then (Fit does, for the training accuracy).
func (p *Parallel[T]) Output(n int) []T {
	if n < 1 || n > p.io.Batch {
		return nil
	}
	out := p.out[:n*p.io.OutputRow]
	if p.gather {
		p.gather = false
		row := p.io.OutputRow
		clear(out[:p.lo[p.first]*row])
		clear(out[p.hi[p.first+len(p.reps)-1]*row:])
		if err := sumOver(p.comm, out); err != nil {
			clear(out) // no rank's rows rather than a mixture
		}
	}
	return out
}

// Gradients computes the loss of the first n rows (the mean over the
// shards, weighted by their rows) and its gradients in the model's Grads.
func (p *Parallel[T]) Gradients(n int) (T, error) {
	if p.initErr != nil {
		return 0, p.initErr
	}
	if err := p.split(n); err != nil {
		return 0, err
	}
	p.eval = false
	if p.random != nil {
		p.seed, p.step = p.random[0].Counters()
	}
	p.run(computeShards)
	lo, hi := p.first, p.first+len(p.reps)
	err := p.firstErr(lo, hi)
	p.status[0] = p.lossSum(lo, hi)
	if p.comm != nil {
		err = p.agree(err)
	}
	if err != nil {
		return 0, err
	}
	if p.random != nil {
		p.random[0].SetCounters(p.seed, p.step+1)
	}
	p.run(sumGradients)
	if p.comm != nil {
		if err := sumOver(p.comm, p.io.Grads); err != nil {
			return 0, fmt.Errorf("%s: parallel: summing the gradients over %d ranks: %w; parameters not updated", p.io.Model, p.ranks, err)
		}
		p.gather = true
	}
	return T(p.status[0] / float64(p.n)), nil
}

// agree tells every rank which ranks failed the step (the error of this
// rank's, or one naming the others) and sums the ranks' losses, in one
// all-reduce: no rank goes on to sum gradients that another did not make.
func (p *Parallel[T]) agree(err error) error {
	clear(p.status[1:])
	if err != nil {
		p.status[1+p.rank] = 1
	}
	if cerr := p.comm.SumFloat64(p.status); cerr != nil {
		return fmt.Errorf("%s: parallel: rank %d of %d: exchanging the step's status: %w; parameters not updated", p.io.Model, p.rank, p.ranks, cerr)
	}
	if err != nil {
		return fmt.Errorf("rank %d of %d: %w", p.rank, p.ranks, err)
	}
	var failed []int
	for r, f := range p.status[1:] {
		if f != 0 {
			failed = append(failed, r)
		}
	}
	if failed != nil {
		return fmt.Errorf("%s: parallel: rank %d of %d: ranks %v failed this step (their logs say why); parameters not updated", p.io.Model, p.rank, p.ranks, failed)
	}
	return nil
}

// Rank is this process's rank (0 without a Comm): Fit logs and writes
// files only on rank 0.
func (p *Parallel[T]) Rank() int { return p.rank }

// sumOver sums buf over the ranks of c, in place.
func sumOver[T runtime.Float](c Comm, buf []T) error {
	switch b := any(buf).(type) {
	case []float32:
		return c.SumFloat32(b)
	case []float64:
		return c.SumFloat64(b)
	}
	panic("unreachable")
}

// broadcastFrom0 gives every rank rank 0's buf.
func broadcastFrom0[T runtime.Float](c Comm, buf []T) error {
	switch b := any(buf).(type) {
	case []float32:
		return c.BroadcastFloat32(b, 0)
	case []float64:
		return c.BroadcastFloat64(b, 0)
	}
	panic("unreachable")
}

// fromRank0 gives every rank rank 0's parameters and state.
func (p *Parallel[T]) fromRank0() error {
	if p.comm == nil {
		return nil
	}
	if err := broadcastFrom0(p.comm, p.io.Params); err != nil {
		return fmt.Errorf("%s: parallel: broadcasting the parameters from rank 0: %w", p.io.Model, err)
	}
	for _, t := range p.states[0] {
		if err := broadcastFrom0(p.comm, t.Data); err != nil {
			return fmt.Errorf("%s: parallel: broadcasting %s from rank 0: %w", p.io.Model, t.Name, err)
		}
	}
	return nil
}

// Step applies opt's update to the parameters; Fit calls it instead of
// opt.Step. An optimizer that can step by ranges (runtime.RangeStepper:
// Adam, SGD) updates on every worker the blocks whose gradients it summed,
// while they are in its cache, with Step's result bit for bit.
func (p *Parallel[T]) Step(opt runtime.Optimizer[T]) {
	rs, ok := opt.(runtime.RangeStepper[T])
	if !ok || p.workers == 1 {
		opt.Step(p.io.Params, p.io.Grads)
		return
	}
	rs.BeginStep()
	p.opt = rs
	p.run(stepOptimizer)
	p.opt = nil
}

// Evaluate computes the loss of the first n rows in inference mode, each
// shard on a replica holding the model's state.
func (p *Parallel[T]) Evaluate(n int) (T, error) {
	if err := p.split(n); err != nil {
		return 0, err
	}
	if err := p.fromRank0(); err != nil { // rank 0's state, as shard 0's in one process
		return 0, err
	}
	p.syncState()
	p.eval = true
	p.gather = false
	p.run(computeShards)
	if err := p.firstErr(0, p.shards); err != nil {
		return 0, err
	}
	return T(p.lossSum(0, p.shards) / float64(p.n)), nil
}

// split divides n rows into the shards, as evenly as possible (the first
// n mod Shards get one more): a function of n and Shards only.
func (p *Parallel[T]) split(n int) error {
	if n < 1 || n > p.io.Batch {
		return fmt.Errorf("%s: parallel: %d rows: want 1 to %d (the parallel batch)", p.io.Model, n, p.io.Batch)
	}
	p.n = n
	base, extra, lo := n/p.shards, n%p.shards, 0
	for s := range p.shards {
		rows := base
		if s < extra {
			rows++
		}
		p.lo[s], p.hi[s] = lo, lo+rows
		lo += rows
	}
	return nil
}

// firstErr is the error of the first of shards lo..hi-1 that failed.
func (p *Parallel[T]) firstErr(lo, hi int) error {
	for s := lo; s < hi; s++ {
		if err := p.errs[s]; err != nil {
			return fmt.Errorf("shard %d (rows %d to %d of the batch): %w", s, p.lo[s], p.hi[s]-1, err)
		}
	}
	return nil
}

// lossSum is the sum of the losses of the rows of shards lo..hi-1.
func (p *Parallel[T]) lossSum(lo, hi int) float64 {
	var sum float64
	for s := lo; s < hi; s++ {
		if p.hi[s] > p.lo[s] {
			sum += p.loss[s] * float64(p.hi[s]-p.lo[s])
		}
	}
	return sum
}

// run runs a phase of task t on every worker, the caller being worker 0.
func (p *Parallel[T]) run(t task) {
	p.task = t
	p.pending.Store(int64(p.workers - 1))
	p.phase.Add(1)
	if lateWake != nil {
		lateWake()
	}
	for w := 1; w < p.workers; w++ {
		if p.sleeping[w].CompareAndSwap(true, false) {
			p.wake[w] <- struct{}{}
		}
	}
	p.work(0, t)
	for i := 0; p.pending.Load() > 0; i++ {
		if i%256 == 255 {
			goruntime.Gosched()
		}
	}
}

// work is worker w's part of a phase: shards w, w+Workers, ... or blocks
// w, w+Workers, ... of the gradients and parameters.
func (p *Parallel[T]) work(w int, t task) {
	switch t {
	case sumGradients:
		p.sum(w)
	case stepOptimizer:
		for lo := w * sumBlock; lo < len(p.io.Params); lo += p.workers * sumBlock {
			p.opt.StepRange(p.io.Params, p.io.Grads, lo, min(lo+sumBlock, len(p.io.Params)))
		}
	default:
		if p.eval { // every shard, on the worker's replica
			for s := w; s < p.shards; s += p.workers {
				p.errs[s] = nil
				if p.hi[s] > p.lo[s] {
					p.loss[s], p.errs[s] = p.shard(s, w)
				}
			}
			return
		}
		for r := w; r < len(p.reps); r += p.workers {
			s := p.first + r
			p.errs[s] = nil
			if p.hi[s] > p.lo[s] {
				p.loss[s], p.errs[s] = p.shard(s, r)
			}
		}
	}
}

// shard computes shard s on replica ri: its rows copied to the replica,
// then its loss and gradients, in micro-batches of the model's batch when
// it has more rows; its outputs are copied back to the step's.
func (p *Parallel[T]) shard(s, ri int) (float64, error) {
	r, rio := p.reps[ri], p.repIO[ri]
	lo, hi := p.lo[s], p.hi[s]
	var sum float64
	var last int // the rows of the last micro-batch
	micro := 0
	for a := lo; a < hi; a += p.per {
		b := min(a+p.per, hi)
		k := b - a
		p.copyRows(rio, a, b)
		var loss T
		var err error
		switch {
		case p.eval:
			loss, err = r.Evaluate(k)
		case hi-lo <= p.per: // one pass: the generated step, checks included
			if p.random != nil && s > 0 {
				p.random[ri].SetCounters(shardSeed(p.seed, s, 0), p.step)
			}
			loss, err = r.Gradients(k)
		default:
			loss, err = p.accumulate(s, ri, micro, k, last)
		}
		if err != nil {
			return 0, err
		}
		copy(p.out[a*p.io.OutputRow:b*p.io.OutputRow], r.Output(k))
		sum += float64(loss) * float64(k)
		last = k
		micro++
	}
	if !p.eval && micro > 1 {
		if i := runtime.FirstNonFinite(rio.Grads); i >= 0 {
			return 0, fmt.Errorf("gradient element %d is %v after accumulating %d passes: lower the learning rate or clip gradients; parameters not updated", i, rio.Grads[i], micro)
		}
	}
	// The gradients hold Σ rows_j·g_j / last (see accumulate): the step's
	// mean takes them times last/n.
	p.scale[s] = float64(last) / float64(p.n)
	return sum / float64(hi-lo), nil
}

// accumulate runs micro-batch j (of k rows, after one of prev rows) of
// shard s into its replica ri's gradients, which hold H_j = Σ_{i≤j} k_i·g_i/k_j
// after it: H_j = (k_{j-1}/k_j)·H_{j-1} + g_j, a scaling only when the
// sizes differ (the last, partial micro-batch).
func (p *Parallel[T]) accumulate(s, ri, j, k, prev int) (T, error) {
	r := p.reps[ri].(accumulating[T])
	grads := p.repIO[ri].Grads
	if j == 0 {
		r.ZeroGrad()
	} else if prev != k {
		runtime.Scale(grads, grads, T(float64(prev)/float64(k)))
	}
	if p.random != nil {
		p.random[ri].SetCounters(shardSeed(p.seed, s, j), p.step+1)
	}
	loss, err := r.Forward(k)
	if err != nil {
		return 0, err
	}
	if l := float64(loss); math.IsNaN(l) || math.IsInf(l, 0) {
		return loss, fmt.Errorf("loss is %v in micro-batch %d: training diverged; restore a checkpoint and lower the learning rate or clip gradients; parameters not updated", loss, j)
	}
	if err := r.Backward(k); err != nil {
		return 0, err
	}
	return T(loss), nil
}

// shardSeed is the dropout seed of micro-batch j of shard s: the model's
// own for the first of shard 0, distinct streams for the others.
func shardSeed(seed uint64, s, j int) uint64 {
	return seed ^ (uint64(s)<<32|uint64(j))*0x9e3779b97f4a7c15
}

// copyRows copies rows a..b-1 of the step's inputs and labels into the
// first rows of replica io.
func (p *Parallel[T]) copyRows(io runtime.IO[T], a, b int) {
	for i, f := range p.io.Inputs {
		copy(io.Inputs[i].Data, f.Data[a*f.Row:b*f.Row])
	}
	for i, f := range p.io.Labels {
		copy(io.Labels[i].Data, f.Data[a*f.Row:b*f.Row])
	}
}

// sumBlock is the span of the gradients a worker sums at a time: a
// multiple of every SIMD width, so that where a kernel's vector part ends
// does not depend on the number of workers.
const sumBlock = 1 << 14

// sum writes into the model's gradients Σ_s scale_s·g_s over this rank's
// shards with rows, for worker w's blocks: each shard scaled, then added
// pairwise in a fixed tree ((0+1)+(2+3))+..., the same for any number of
// workers. (With a Comm and a power-of-two number of shards per rank, a
// rank's tree is a subtree of the one-process tree.)
func (p *Parallel[T]) sum(w int) {
	size := len(p.io.Grads)
	local := len(p.reps)
	empty := func(r int) bool { return p.hi[p.first+r] == p.lo[p.first+r] }
	for lo := w * sumBlock; lo < size; lo += p.workers * sumBlock {
		hi := min(lo+sumBlock, size)
		if empty(0) { // a rank without rows (fewer rows than shards) adds 0
			clear(p.repIO[0].Grads[lo:hi])
			continue
		}
		for r := range local {
			if !empty(r) {
				g := p.repIO[r].Grads[lo:hi]
				runtime.Scale(g, g, T(p.scale[p.first+r]))
			}
		}
		for stride := 1; stride < local; stride *= 2 {
			for r := 0; r+stride < local; r += 2 * stride {
				t := r + stride
				if empty(t) {
					continue // an empty shard adds nothing
				}
				runtime.Axpy(p.repIO[r].Grads[lo:hi], p.repIO[t].Grads[lo:hi], 1)
			}
		}
	}
}

var _ Model[float32] = (*Parallel[float32])(nil)
