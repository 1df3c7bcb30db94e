package runtime

import (
	"os"
	goruntime "runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Multi-core Gemm.
//
// SetThreads(t) with t ≥ 2 starts a pool of t-1 worker goroutines; a Gemm
// call large enough to pay (gemmParMinWork) then splits C into blocks of
// whole rows, or of whole columns when C is wider than tall (gemmSplit),
// which the calling goroutine and the workers compute. The k dimension is
// never split, and block edges fall on multiples of the units of
// gemmUnits, so every element of C goes through exactly the operations of
// the single-threaded Gemm: results are bit-identical for any number of
// threads.
//
// Per call nothing is allocated and no closure is made: the arguments go
// into the pool's one task slot, and blocks are handed out by an atomic
// counter (the number of blocks and the next block's index in one word),
// which the caller and the workers advance until every block is taken.
// An atomic count of blocks not done, and a token in a channel of
// capacity 1 sent by whoever finishes the last block, tell the caller
// when the product is complete. The caller takes blocks like the workers,
// so a worker slow to start (a busy machine) costs parallelism, never a
// wait for a block nobody runs; there are gemmPartsPerThread blocks per
// thread to even out the load. Idle workers spin on the counter for
// gemmSpin after their last block, so that the next Gemm of a training
// step finds them running (waking a parked goroutine takes tens of
// microseconds), then park on a channel of wake-up tokens (struct{}
// values, in a buffer made once by SetThreads). Nobody spins when
// GOMAXPROCS is below the thread count: a spinning goroutine would then
// keep another one, maybe holding a block, from running.
//
// Concurrent calls: the task slot is guarded by a mutex that a Gemm call
// only tries to take (TryLock). A call that finds the pool busy with
// another goroutine's product runs single-threaded on its own goroutine
// instead of waiting, which gives the same bits. So Gemm stays safe to
// call from any number of goroutines, calls never wait for each other,
// and one at a time uses the pool.
//
// The pool's task slot holds pointers to the matrices during the call, so
// Gemm's slice arguments escape: an array on the caller's stack passed to
// Gemm is moved to the heap. Generated code passes heap buffers.

// gemmParMinWork is the smallest m·n·k that Gemm splits across threads.
// Measured with 2 threads on 2 AVX2 cores (best of 15 runs, against one
// thread at about 100 GFLOP/s): 32³ runs 0.6× as fast, 40³ about 1.1×,
// 48³ 1.25×, 64³ = 2^18 1.35-1.45×, 128³ 1.8×, 256³ 1.95×. A variable so
// that tests can split small shapes.
var gemmParMinWork = 1 << 18

// gemmPartsPerThread is the number of blocks per thread: more than one
// evens out threads that start late or run slower (2 measured a few
// percent faster than 1 or 3 on most shapes).
const gemmPartsPerThread = 2

// gemmSpin is how long an idle worker polls for blocks before parking,
// and the longest the caller polls for the workers' blocks to finish
// before blocking.
const gemmSpin = 100 * time.Microsecond

// gemmPool is a running pool of worker goroutines.
type gemmPool struct {
	threads  int
	wake     chan struct{} // wake-up tokens, capacity threads; closed to stop
	sleepers atomic.Int32  // workers parked or about to park on wake
	stop     atomic.Bool   // set by SetThreads: spinning workers return
	// next is parts<<32 | index of the next block to take; blocks
	// index ≥ parts do not exist.
	next    atomic.Uint64
	pending atomic.Int64  // blocks of the task not done yet
	done    chan struct{} // capacity 1: a token when pending reaches 0

	mu     sync.Mutex // held by the Gemm call that owns task
	closed bool       // set under mu when SetThreads replaced the pool
	task   gemmTask
}

// gemmTask is the Gemm call being split: its arguments with the slices as
// pointers (T's width tells float32 from float64; a type defined on
// float32 has float32's layout and arithmetic), and the split.
type gemmTask struct {
	f64                 bool
	transA, transB, acc bool
	m, n, k             int
	a, b, c             unsafe.Pointer
	cols                bool // split columns, else rows
	unit                int  // block edges are multiples of unit
	units               int  // ceil(dim / unit), dim = n if cols else m
	parts               int
}

var (
	gemmPoolCur atomic.Pointer[gemmPool] // nil when single-threaded
	gemmPoolSet sync.Mutex               // serializes SetThreads
)

// ThreadsEnv is the environment variable read once when the package is
// initialized: when it holds an integer t, the package starts with
// SetThreads(t). Other values are ignored.
const ThreadsEnv = "BACKPROPGEN_THREADS"

func init() {
	if s := os.Getenv(ThreadsEnv); s != "" {
		if t, err := strconv.Atoi(s); err == nil {
			SetThreads(t)
		}
	}
}

// SetThreads sets the number of threads Gemm may use to t, counting the
// calling goroutine. t ≤ 1, the default, makes Gemm single-threaded; t ≥ 2
// starts a persistent pool of t-1 worker goroutines, replacing (and
// stopping) any previous pool. Large products are then split into blocks
// of rows or of columns of C, never along k, so results are bit-identical
// to the single-threaded Gemm's, and Gemm stays allocation-free. A Gemm
// call that finds the pool busy with another goroutine's call runs
// single-threaded, and so does every call when GOMAXPROCS is 1. After a
// split product the workers poll for the next one for 100 µs before they
// park, using their cores meanwhile. Set t to at most GOMAXPROCS, and to
// at most the number of otherwise idle cores: a worker whose core is taken
// by another process delays the products it started.
//
// The environment variable BACKPROPGEN_THREADS (ThreadsEnv), read once at
// package initialization, sets the initial value, e.g.
//
//	BACKPROPGEN_THREADS=2 go test -bench TrainStep ./generated/widemlp/
//
// SetThreads may be called at any time from any goroutine; it waits for
// the Gemm call using the old pool, if any, to finish.
func SetThreads(t int) {
	gemmPoolSet.Lock()
	defer gemmPoolSet.Unlock()
	t = max(t, 1)
	old := gemmPoolCur.Load()
	if old == nil && t == 1 || old != nil && old.threads == t {
		return
	}
	var p *gemmPool
	if t > 1 {
		p = &gemmPool{threads: t, wake: make(chan struct{}, t), done: make(chan struct{}, 1)}
		for range t - 1 {
			go p.work()
		}
	}
	gemmPoolCur.Store(p)
	reserveGemm(t)
	if old != nil {
		old.mu.Lock()
		old.closed = true
		old.stop.Store(true)
		close(old.wake) // its workers return
		old.mu.Unlock()
	}
}

// Reserve allocates the work buffers of the GEMM drivers for as many
// products at a time as SetThreads allows (the packing buffers of large
// products, 608 KiB each on amd64, are otherwise allocated when first
// needed), so that the first training step allocates nothing either.
// Generated models call it in New, and SetThreads for its threads; call
// it with k to run k models' steps at once in as many goroutines.
func Reserve(k int) { reserveGemm(max(k, Threads())) }

// Threads returns the number of threads Gemm may use, as set by
// SetThreads: 1 when single-threaded.
func Threads() int {
	if p := gemmPoolCur.Load(); p != nil {
		return p.threads
	}
	return 1
}

// work is a worker goroutine: woken by a token, it computes blocks,
// spins for more, and parks again, until the pool is stopped.
func (p *gemmPool) work() {
	for {
		p.sleepers.Add(1)
		_, ok := <-p.wake
		p.sleepers.Add(-1)
		if !ok {
			return
		}
		for p.runBlocks() || p.spin() {
		}
		if p.stop.Load() {
			return
		}
	}
}

// runBlocks computes blocks of the task until none is left to take, and
// reports whether it computed any.
func (p *gemmPool) runBlocks() (ran bool) {
	for {
		w := p.next.Add(1)
		i, parts := int(uint32(w))-1, int(w>>32)
		if i >= parts {
			return ran
		}
		p.run(i)
		if p.pending.Add(-1) == 0 {
			p.done <- struct{}{} // never blocks: one token per task
		}
		ran = true
	}
}

// spin polls for a block to take for gemmSpin and reports whether one
// appeared. It does not spin when GOMAXPROCS is below the thread count.
func (p *gemmPool) spin() bool {
	if goruntime.GOMAXPROCS(0) < p.threads {
		return false
	}
	start := time.Now()
	for {
		for range 256 {
			if p.stop.Load() {
				return false
			}
			if w := p.next.Load(); uint32(w) < uint32(w>>32) {
				return true
			}
		}
		if time.Since(start) > gemmSpin {
			return false
		}
	}
}

// gemmParallel computes Gemm (with the slices fitted, m, n, k ≥ 1) on the
// pool and returns true, or returns false when the product should run
// single-threaded: no pool, too little work, GOMAXPROCS 1, too few
// units of rows or columns, or the pool busy with another call.
func gemmParallel[T Float](transA, transB bool, m, n, k int, a, b, c []T, acc bool) bool {
	p := gemmPoolCur.Load()
	if p == nil || float64(m)*float64(n)*float64(k) < float64(gemmParMinWork) {
		return false
	}
	procs := goruntime.GOMAXPROCS(0)
	if procs < 2 {
		return false
	}
	cols, unit, units, parts := gemmSplit[T](p.threads, gemmPartsPerThread, transA, transB, m, n, k)
	if parts < 2 || !p.mu.TryLock() {
		return false
	}
	if p.closed { // SetThreads replaced it since the Load
		p.mu.Unlock()
		return false
	}
	var z T
	p.task = gemmTask{
		f64:    unsafe.Sizeof(z) == 8,
		transA: transA, transB: transB, acc: acc,
		m: m, n: n, k: k,
		a:    unsafe.Pointer(unsafe.SliceData(a)),
		b:    unsafe.Pointer(unsafe.SliceData(b)),
		c:    unsafe.Pointer(unsafe.SliceData(c)),
		cols: cols, unit: unit, units: units, parts: parts,
	}
	p.pending.Store(int64(parts))
	p.next.Store(uint64(parts) << 32)
	for range min(int(p.sleepers.Load()), parts-1) {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.runBlocks()
	// Wait for the workers' blocks: spin, as waking a parked goroutine
	// takes long, then block. The token of the last block is taken
	// either way.
	if procs >= p.threads {
		start := time.Now()
		for p.pending.Load() != 0 && time.Since(start) < gemmSpin {
			for i := 0; i < 256 && p.pending.Load() != 0; i++ {
			}
		}
	}
	<-p.done
	p.task = gemmTask{} // keep no pointer to the caller's matrices
	p.mu.Unlock()
	return true
}

// gemmSplit chooses how to split C for threads: along columns (cols) or
// rows, in parts blocks (at most per per thread) of whole units of unit
// columns or rows, out of units in all. It splits the longer side of C,
// so that each block reads the smaller of op(A) and op(B) whole and a
// strip of the larger; if that side has fewer units than threads, the
// side with more.
func gemmSplit[T Float](threads, per int, transA, transB bool, m, n, k int) (cols bool, unit, units, parts int) {
	mu, nu := gemmUnits[T]()
	mUnits, nUnits := (m+mu-1)/mu, (n+nu-1)/nu
	cols = n > m
	if cols && nUnits < threads && mUnits > nUnits || !cols && mUnits < threads && nUnits > mUnits {
		cols = !cols
	}
	unit, units = mu, mUnits
	if cols {
		unit, units = nu, nUnits
	}
	return cols, unit, units, min(threads*per, units)
}

// run computes block i of the pool's task.
func (p *gemmPool) run(i int) {
	t := &p.task
	lo := i * t.units / t.parts * t.unit
	hi := (i + 1) * t.units / t.parts * t.unit
	ilo, ihi, jlo, jhi := 0, t.m, 0, t.n
	if t.cols {
		jlo, jhi = lo, min(hi, t.n)
	} else {
		ilo, ihi = lo, min(hi, t.m)
	}
	if t.f64 {
		gemmTaskRange[float64](t, ilo, ihi, jlo, jhi)
	} else {
		gemmTaskRange[float32](t, ilo, ihi, jlo, jhi)
	}
}

// gemmTaskRange runs gemmRange on the task's matrices as []T.
func gemmTaskRange[T Float](t *gemmTask, ilo, ihi, jlo, jhi int) {
	a := unsafe.Slice((*T)(t.a), t.m*t.k)
	b := unsafe.Slice((*T)(t.b), t.k*t.n)
	c := unsafe.Slice((*T)(t.c), t.m*t.n)
	gemmRange(t.transA, t.transB, t.m, t.n, t.k, a, b, c, t.acc, ilo, ihi, jlo, jhi)
}
