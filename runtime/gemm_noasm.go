//go:build !amd64 || noasm

package runtime

// reserveGemm has nothing to allocate: the pure-Go GEMM packs on the stack.
func reserveGemm(k int) {}

// gemmAsm reports that no assembly kernels exist in this build: Gemm
// always runs the pure-Go gemmDot.
func gemmAsm[T Float](transA, transB bool, m, n, k int, a, b, c []T, acc bool, ilo, ihi, jlo, jhi int) bool {
	return false
}

// gemmAsmUnits reports that gemmAsm does not apply.
func gemmAsmUnits[T Float]() (mu, nu int, ok bool) {
	return 0, 0, false
}

// gemmAsmUsed reports whether float32 Gemm runs on assembly kernels.
func gemmAsmUsed() bool { return false }

// fmaPeakLoop would run the benchmarks' FMA throughput loop: without
// assembly there is none, and it returns 0.
func fmaPeakLoop(iters int, wide bool) float64 { return 0 }
