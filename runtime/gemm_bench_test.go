package runtime

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BenchmarkGemm compares Gemm with GemmNaive and gonum's pure-Go BLAS
// (float32, Sgemm) on the products of a 784-128-64-10 MLP at batch 32 and
// on a square 256³.
//
// Caveats for reading gonum's numbers: its Sgemm inner loops are SSE
// assembly (internal/asm/f32), and above 4 blocks of 64×64 in C (here
// dW1 784×128 and 256³) it splits the work over goroutines, so it may use
// every core in GOMAXPROCS. Gemm is always single-threaded; run with
// -cpu 1 for a like-for-like comparison.
//
// Every sub-benchmark reports GFLOP/s and, where the FMA throughput loop
// exists (amd64 with AVX2 and FMA, without the noasm tag), %peak: its
// share of one core's float32 peak, measured in the same run by the loop
// (sub-benchmark "peak", VFMADD231PS on 12 independent ymm registers, or
// zmm registers where AVX-512 exists and is faster).
//
// Gemm runs the AVX-512 kernels where the CPU has them; to compare with
// the AVX2 ones side by side, run the benchmark again with
// BACKPROPGEN_NOAVX512=1.
func BenchmarkGemm(b *testing.B) {
	peak := benchFMAPeak()
	b.Run("peak", func(b *testing.B) {
		if peak == 0 {
			b.Skip("no FMA throughput loop in this build or on this CPU")
		}
		const iters = 1 << 16
		wide := fmaPeakLoop(1, true) > 0 && benchFMAPeakOf(true) >= benchFMAPeakOf(false)
		var flops float64
		for b.Loop() {
			flops += fmaPeakLoop(iters, wide)
		}
		b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		b.ReportMetric(100*flops/b.Elapsed().Seconds()/1e9/peak, "%peak")
	})
	type shape struct {
		name        string
		tA, tB, acc bool
		m, n, k     int
	}
	shapes := []shape{
		// Forward: Y = X·W.
		{"fwd1_32x784x128", false, false, false, 32, 128, 784},
		{"fwd2_32x128x64", false, false, false, 32, 64, 128},
		{"fwd3_32x64x10", false, false, false, 32, 10, 64},
		// Backward data: dX = dY·Wᵀ (W stored k×n is n×k for this product).
		{"dX1_32x128x784T", false, true, false, 32, 784, 128},
		{"dX2_32x64x128T", false, true, false, 32, 128, 64},
		{"dX3_32x10x64T", false, true, false, 32, 64, 10},
		// Backward weights: dW += Xᵀ·dY.
		{"dW1_T784x32x128", true, false, true, 784, 128, 32},
		{"dW2_T128x32x64", true, false, true, 128, 64, 32},
		{"dW3_T64x32x10", true, false, true, 64, 10, 32},
		{"sq_256x256x256", false, false, false, 256, 256, 256},
		{"sq_1024x1024x1024", false, false, false, 1024, 1024, 1024},
		// The wide MLP's largest product at batch 256.
		{"wide_256x1024x1024", false, false, false, 256, 1024, 1024},
		{"wideDW_T1024x256x1024", true, false, true, 1024, 1024, 256},  // widemlp hidden-layer dW
		{"wideDX_256x1024x1024T", false, true, false, 256, 1024, 1024}, // and its dX
		// The seed CNN's first convolution at batch 32 (30×30 outputs,
		// 3×3×3 windows, 32 filters): forward and kernel gradient.
		{"conv1_28800x32x27", false, false, false, 28800, 32, 27},
		{"conv1dW_T27x28800x32", true, false, true, 27, 32, 28800},
		// The seed CNN's second convolution at batch 32 (13×13 outputs,
		// 3×3×32 windows, 64 filters) as im2col products: forward,
		// gradient of the columns, gradient of the kernel.
		{"conv2_5408x64x288", false, false, false, 5408, 64, 288},
		{"conv2dX_5408x288x64T", false, true, false, 5408, 288, 64},
		{"conv2dW_T288x5408x64", true, false, true, 288, 64, 5408},
		// generated/gpt's products at batch 8 (512 rows of 128 channels):
		// the MLP's up and down projections forward, the tied logits
		// (the token table transposed), a weight gradient, and one head's
		// attention scores and weighted sum.
		{"gptFc_512x512x128", false, false, false, 512, 512, 128},
		{"gptOut_512x128x512", false, false, false, 512, 128, 512},
		{"gptLogits_512x256x128T", false, true, false, 512, 256, 128},
		{"gptDW_T128x512x384", true, false, true, 128, 384, 512},
		// The rest of gpt's step: the attention's qkv and output
		// projections, the data gradients (·Wᵀ), the tied table's
		// gradient path, and the largest-m weight gradient (fc2's input,
		// rows 2 KiB apart).
		{"gptQkv_512x384x128", false, false, false, 512, 384, 128},
		{"gptProj_512x128x128", false, false, false, 512, 128, 128},
		{"gptDXqkv_512x128x384T", false, true, false, 512, 128, 384},
		{"gptDXfc1_512x128x512T", false, true, false, 512, 128, 512},
		{"gptDXfc2_512x512x128T", false, true, false, 512, 512, 128},
		{"gptDh_512x128x256", false, false, false, 512, 128, 256},
		{"gptDWfc2_T512x128x512", true, false, true, 512, 128, 512},
		{"gptScores_64x64x32T", false, true, false, 64, 64, 32},
		{"gptMix_64x32x64", false, false, false, 64, 32, 64},
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range shapes {
		a := ktRand[float32](r, s.m*s.k, 1)
		bm := ktRand[float32](r, s.k*s.n, 1)
		c := make([]float32, s.m*s.n)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		tA, tB, lda, ldb := blas.NoTrans, blas.NoTrans, s.k, s.n
		if s.tA {
			tA, lda = blas.Trans, s.m
		}
		if s.tB {
			tB, ldb = blas.Trans, s.k
		}
		var beta float32
		if s.acc {
			beta = 1
		}
		impls := []struct {
			name string
			f    func()
		}{
			{"ours", func() { Gemm(s.tA, s.tB, s.m, s.n, s.k, a, bm, c, s.acc) }},
			{"gonum", func() {
				gonum.Implementation{}.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, beta, c, s.n)
			}},
			{"naive", func() { GemmNaive(s.tA, s.tB, s.m, s.n, s.k, a, bm, c, s.acc) }},
		}
		for _, impl := range impls {
			b.Run(fmt.Sprintf("%s/impl=%s", s.name, impl.name), func(b *testing.B) {
				for b.Loop() {
					impl.f() // with acc, C grows like a random walk: no overflow
				}
				gflops := flops * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gflops, "GFLOP/s")
				if peak > 0 {
					b.ReportMetric(100*gflops/peak, "%peak")
				}
			})
		}
	}
}

// benchFMAPeak returns one core's float32 multiply-add peak in GFLOP/s:
// the faster of the ymm and zmm FMA loops, or 0 when no loop exists here.
func benchFMAPeak() float64 {
	return max(benchFMAPeakOf(false), benchFMAPeakOf(true))
}

// benchFMAPeakOf returns the best of several runs of about 10 ms each of
// the ymm (or, with wide, zmm) FMA throughput loop in GFLOP/s (the first
// also brings the core to its full clock), or 0 when the loop does not
// exist here.
func benchFMAPeakOf(wide bool) float64 {
	const iters = 1 << 16
	best := 0.0
	for range 8 {
		var flops float64
		start := time.Now()
		for time.Since(start) < 10*time.Millisecond {
			f := fmaPeakLoop(iters, wide)
			if f == 0 {
				return 0
			}
			flops += f
		}
		best = max(best, flops/time.Since(start).Seconds()/1e9)
	}
	return best
}
