package runtime

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ptSetThreads sets the thread count for the rest of the test and restores
// the previous one (BACKPROPGEN_THREADS may have set it) at cleanup.
func ptSetThreads(tb testing.TB, k int) {
	tb.Helper()
	prev := Threads()
	tb.Cleanup(func() { SetThreads(prev) })
	SetThreads(k)
}

// ptProcs raises GOMAXPROCS to at least n for the rest of the test: Gemm
// does not split when it is 1 (go test -cpu 1).
func ptProcs(tb testing.TB, n int) {
	if prev := goruntime.GOMAXPROCS(0); prev < n {
		goruntime.GOMAXPROCS(n)
		tb.Cleanup(func() { goruntime.GOMAXPROCS(prev) })
	}
}

// ptMinWork sets gemmParMinWork for the rest of the test.
func ptMinWork(tb testing.TB, w int) {
	prev := gemmParMinWork
	tb.Cleanup(func() { gemmParMinWork = prev })
	gemmParMinWork = w
}

type ptShape struct {
	tA, tB, acc bool
	m, n, k     int
}

func (s ptShape) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,acc=%v,%dx%dx%d", s.tA, s.tB, s.acc, s.m, s.n, s.k)
}

// ptMLPShapes are the products of the 784-128-64-10 MLP at batch 32 and
// of the wide 1024-1024-1024-10 MLP at batch 256, and 256³.
var ptMLPShapes = []ptShape{
	{false, false, false, 32, 128, 784}, // forward X·W
	{false, false, false, 32, 64, 128},
	{false, true, false, 32, 784, 128}, // dX = dY·Wᵀ
	{false, true, false, 32, 128, 64},
	{true, false, true, 784, 128, 32}, // dW += Xᵀ·dY
	{true, false, true, 128, 64, 32},
	{false, false, false, 256, 256, 256},
	{false, false, false, 256, 1024, 1024}, // wide MLP forward
	{false, false, false, 256, 10, 1024},
	{false, true, false, 256, 1024, 1024}, // wide MLP dX
	{false, true, false, 256, 1024, 10},
	{true, false, true, 1024, 1024, 256}, // wide MLP dW
	{true, false, true, 1024, 10, 256},
}

// ptOddShapes returns every transpose and acc combination of shapes that
// straddle the tiles and split units of both the assembly and the pure-Go
// kernels.
func ptOddShapes(r *rand.Rand) []ptShape {
	dims := [][3]int{
		{1, 1, 1}, {2, 3, 5}, {7, 1, 300}, {1, 97, 33}, {13, 5, 7},
		{33, 65, 300}, {65, 33, 257}, {97, 131, 17}, {131, 97, 600},
		{6, 200, 40}, {200, 6, 40}, {37, 91, 513}, {192, 48, 31},
		// gemmDot's last k block is shorter, with chunks of more columns.
		{9, 100, 273}, {40, 70, 455},
	}
	for range 8 {
		dims = append(dims, [3]int{1 + r.IntN(150), 1 + r.IntN(150), 1 + r.IntN(600)})
	}
	var s []ptShape
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				for _, d := range dims {
					s = append(s, ptShape{tA, tB, acc, d[0], d[1], d[2]})
				}
			}
		}
	}
	return s
}

// ptCheckBits computes s with 1 to 4 threads and fails unless all results
// are bit-identical (and close to GemmNaive, for a sanity check).
func ptCheckBits[T Float](t *testing.T, r *rand.Rand, s ptShape) {
	t.Helper()
	a := ktRand[T](r, s.m*s.k, 1)
	b := ktRand[T](r, s.k*s.n, 1)
	init := ktRand[T](r, s.m*s.n, 1)
	// ktBuf's guards work for float32 and float64, not defined types.
	var z T
	_, f32 := any(z).(float32)
	_, f64 := any(z).(float64)
	var want []T
	for threads := 1; threads <= 4; threads++ {
		SetThreads(threads)
		var full, c []T
		if f32 || f64 {
			full, c = ktBuf[T](s.m * s.n)
		} else {
			c = make([]T, s.m*s.n)
		}
		copy(c, init)
		Gemm(s.tA, s.tB, s.m, s.n, s.k, a, b, c, s.acc)
		if full != nil {
			ktGuardsOK(t, s.String(), full)
		}
		if threads == 1 {
			want = c
			if (f32 || f64) && s.m*s.n*s.k <= 1<<22 {
				ref := append([]T(nil), init...)
				GemmNaive(s.tA, s.tB, s.m, s.n, s.k, a, b, ref, s.acc)
				ktAbsClose(t, s.String(), c, ref, ktGemmTol[T](s.k))
			}
			continue
		}
		for i := range c {
			if c[i] != want[i] {
				t.Fatalf("%v[%T]: threads=%d: c[%d] = %v, threads=1 gave %v", s, c[0], threads, i, c[i], want[i])
			}
		}
	}
}

// TestGemmThreadsBitIdentical checks that Gemm gives the same bits with 1,
// 2, 3 and 4 threads: odd shapes split down to single units (threshold
// 0), and the MLP shapes at the default threshold.
func TestGemmThreadsBitIdentical(t *testing.T) {
	ptProcs(t, 2)
	ptSetThreads(t, 1)
	r := rand.New(rand.NewPCG(3, 4))
	t.Run("odd", func(t *testing.T) {
		ptMinWork(t, 0)
		for _, s := range ptOddShapes(r) {
			ptCheckBits[float32](t, r, s)
			ptCheckBits[float64](t, r, s)
		}
	})
	t.Run("mlp", func(t *testing.T) {
		for _, s := range ptMLPShapes {
			ptCheckBits[float32](t, r, s)
			if s.m*s.n*s.k <= 1<<24 || !testing.Short() {
				ptCheckBits[float64](t, r, s)
			}
		}
	})
	t.Run("definedFloat32", func(t *testing.T) {
		type f32 float32
		ptMinWork(t, 0)
		for _, s := range ptOddShapes(r)[:20] {
			ptCheckBits[f32](t, r, s)
		}
	})
}

// TestGemmThreadsSplits checks that the large MLP products do run on the
// pool, split by rows or columns as documented.
func TestGemmThreadsSplits(t *testing.T) {
	ptProcs(t, 2)
	ptSetThreads(t, 3)
	for _, s := range []struct {
		ptShape
		cols bool
	}{
		{ptShape{false, false, false, 32, 128, 784}, true},
		{ptShape{false, true, false, 32, 784, 128}, true},
		{ptShape{true, false, true, 784, 128, 32}, false},
		{ptShape{false, false, false, 256, 256, 256}, false},
		{ptShape{false, false, false, 256, 1024, 1024}, true},
		{ptShape{true, false, true, 1024, 1024, 256}, false},
	} {
		a := make([]float32, s.m*s.k)
		b := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		if cols, _, _, parts := gemmSplit[float32](3, 1, s.tA, s.tB, s.m, s.n, s.k); cols != s.cols || parts != 3 {
			t.Errorf("%v: split cols=%v in %d parts, want cols=%v in 3", s.ptShape, cols, parts, s.cols)
		}
		p := gemmPoolCur.Load()
		if !gemmParallel(s.tA, s.tB, s.m, s.n, s.k, a, b, c, s.acc) {
			t.Errorf("%v: not split", s.ptShape)
			continue
		}
		p.mu.Lock()
		task := p.task
		p.mu.Unlock()
		if task.a != nil || task.b != nil || task.c != nil {
			t.Errorf("%v: the pool keeps pointers to the matrices", s.ptShape)
		}
	}
	// Too small, one unit, or GOMAXPROCS 1: single-threaded.
	if gemmParallel(false, false, 8, 8, 8, make([]float32, 64), make([]float32, 64), make([]float32, 64), false) {
		t.Error("8³ was split")
	}
	big := make([]float32, 256*256)
	prev := goruntime.GOMAXPROCS(1)
	split := gemmParallel(false, false, 256, 256, 256, big, big, make([]float32, 256*256), false)
	goruntime.GOMAXPROCS(prev)
	if split {
		t.Error("256³ was split with GOMAXPROCS 1")
	}
	ptMinWork(t, 0)
	if gemmParallel(false, false, 1, 1, 9, make([]float32, 9), make([]float32, 9), make([]float32, 1), false) {
		t.Error("1×1 was split")
	}
}

// TestGemmThreadsZeroAllocs checks that a split Gemm allocates nothing,
// with 2 threads (spinning workers when GOMAXPROCS ≥ 2) and 4 (parked
// workers woken by tokens when GOMAXPROCS < 4).
func TestGemmThreadsZeroAllocs(t *testing.T) {
	ptProcs(t, 2)
	ptSetThreads(t, 1)
	shapes := []ptShape{
		{false, false, false, 256, 256, 256},
		{false, true, false, 32, 784, 128},
		{true, false, true, 784, 128, 32},
		{true, true, true, 96, 200, 64},
	}
	for _, threads := range []int{2, 4} {
		SetThreads(threads)
		for _, s := range shapes {
			a := make([]float32, s.m*s.k)
			b := make([]float32, s.k*s.n)
			c := make([]float32, s.m*s.n)
			if !gemmParallel(s.tA, s.tB, s.m, s.n, s.k, a, b, c, s.acc) {
				t.Fatalf("%v: not split", s)
			}
			if allocs := testing.AllocsPerRun(20, func() {
				Gemm(s.tA, s.tB, s.m, s.n, s.k, a, b, c, s.acc)
			}); allocs != 0 {
				t.Errorf("%v: %v allocations per call with %d threads", s, allocs, threads)
			}
		}
		a, b, c := make([]float64, 128*128), make([]float64, 128*128), make([]float64, 128*128)
		if allocs := testing.AllocsPerRun(5, func() {
			Gemm(false, true, 128, 128, 128, a, b, c, false)
		}); allocs != 0 {
			t.Errorf("float64: %v allocations per call with %d threads", allocs, threads)
		}
	}
}

// TestGemmThreadsConcurrent runs Gemm from several goroutines at once
// while another one keeps changing the thread count: every result must
// equal the single-threaded one bit for bit (run with -race).
func TestGemmThreadsConcurrent(t *testing.T) {
	ptProcs(t, 2)
	ptSetThreads(t, 1)
	shapes := []ptShape{
		{false, false, false, 96, 128, 64},
		{false, true, true, 32, 160, 96},
		{true, false, true, 128, 64, 48},
		{true, true, false, 70, 90, 80},
	}
	ptMinWork(t, 1<<14)
	r := rand.New(rand.NewPCG(5, 6))
	type operands struct{ a, b, init, want []float32 }
	ops := make([]operands, len(shapes))
	for i, s := range shapes {
		o := operands{
			a:    ktRand[float32](r, s.m*s.k, 1),
			b:    ktRand[float32](r, s.k*s.n, 1),
			init: ktRand[float32](r, s.m*s.n, 1),
		}
		o.want = append([]float32(nil), o.init...)
		Gemm(s.tA, s.tB, s.m, s.n, s.k, o.a, o.b, o.want, s.acc)
		ops[i] = o
	}
	SetThreads(3)
	iters := 40
	if testing.Short() {
		iters = 10
	}
	stop := make(chan struct{})
	var changer sync.WaitGroup
	changer.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			SetThreads(1 + i%4)
			time.Sleep(200 * time.Microsecond)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			s, o := shapes[g%len(shapes)], ops[g%len(shapes)]
			c := make([]float32, s.m*s.n)
			for range iters {
				copy(c, o.init)
				Gemm(s.tA, s.tB, s.m, s.n, s.k, o.a, o.b, c, s.acc)
				for i := range c {
					if c[i] != o.want[i] {
						errs <- fmt.Sprintf("goroutine %d %v: c[%d] = %v, want %v", g, s, i, c[i], o.want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	changer.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// ptWorkers returns the number of pool worker goroutines, once it no
// longer differs from want or after a few seconds: workers of a replaced
// pool exit asynchronously.
func ptWorkers(want int) int {
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := strings.Count(string(buf[:goruntime.Stack(buf, true)]), ".(*gemmPool).work(")
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSetThreads checks Threads, the clamping of SetThreads and that
// replaced pools' workers exit.
func TestSetThreads(t *testing.T) {
	ptSetThreads(t, 1)
	for _, c := range []struct{ set, want int }{{0, 1}, {-5, 1}, {1, 1}, {4, 4}, {2, 2}, {3, 3}, {3, 3}, {1, 1}} {
		SetThreads(c.set)
		if got := Threads(); got != c.want {
			t.Errorf("SetThreads(%d): Threads() = %d, want %d", c.set, got, c.want)
		}
		if got := ptWorkers(c.want - 1); got != c.want-1 {
			t.Errorf("SetThreads(%d): %d workers, want %d", c.set, got, c.want-1)
		}
	}
	p := gemmPoolCur.Load()
	SetThreads(2)
	p2 := gemmPoolCur.Load()
	SetThreads(2)
	if p != nil || p2 == nil || gemmPoolCur.Load() != p2 {
		t.Error("SetThreads(1) keeps a pool, or SetThreads with the same count restarts it")
	}
}

// TestThreadsEnv runs this test binary again with BACKPROPGEN_THREADS set,
// checking that the package starts with that many threads.
func TestThreadsEnv(t *testing.T) {
	if want := os.Getenv("BACKPROPGEN_TEST_WANT_THREADS"); want != "" {
		if got := strconv.Itoa(Threads()); got != want {
			t.Fatalf("%s=%q: Threads() = %s, want %s", ThreadsEnv, os.Getenv(ThreadsEnv), got, want)
		}
		return
	}
	for _, c := range []struct{ env, want string }{{"3", "3"}, {"1", "1"}, {"0", "1"}, {"x", "1"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestThreadsEnv$", "-test.count=1")
		cmd.Env = append(os.Environ(), ThreadsEnv+"="+c.env, "BACKPROPGEN_TEST_WANT_THREADS="+c.want)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s=%s: %v\n%s", ThreadsEnv, c.env, err, out)
		}
	}
}

// BenchmarkGemmThreads times Gemm with 1 and 2 threads on square products
// and on the wide MLP's (1024-1024-1024-10, batch 256) and the small
// MLP's (784-128-64-10, batch 32) large products, in GFLOP/s. Run with
// -cpu 2 or more: with GOMAXPROCS 1 the workers cannot run in parallel.
func BenchmarkGemmThreads(b *testing.B) {
	shapes := []struct {
		name string
		ptShape
	}{
		{"sq64", ptShape{false, false, false, 64, 64, 64}},
		{"sq128", ptShape{false, false, false, 128, 128, 128}},
		{"sq256", ptShape{false, false, false, 256, 256, 256}},
		{"sq1024", ptShape{false, false, false, 1024, 1024, 1024}},
		{"wide_fwd_256x1024x1024", ptShape{false, false, false, 256, 1024, 1024}},
		{"wide_dX_256x1024x1024T", ptShape{false, true, false, 256, 1024, 1024}},
		{"wide_dW_T1024x1024x256", ptShape{true, false, true, 1024, 1024, 256}},
		{"mlp_fwd1_32x128x784", ptShape{false, false, false, 32, 128, 784}},
		{"mlp_dX1_32x784x128T", ptShape{false, true, false, 32, 784, 128}},
		{"mlp_dW1_T784x128x32", ptShape{true, false, true, 784, 128, 32}},
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range shapes {
		a := ktRand[float32](r, s.m*s.k, 1)
		bm := ktRand[float32](r, s.k*s.n, 1)
		c := make([]float32, s.m*s.n)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", s.name, threads), func(b *testing.B) {
				ptSetThreads(b, threads)
				for b.Loop() {
					Gemm(s.tA, s.tB, s.m, s.n, s.k, a, bm, c, s.acc)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
