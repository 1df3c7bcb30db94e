package runtime

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Tests aimed at the tile edges of the float32 assembly kernels (tiles of
// 6×16, 12×32 and 3×4, vectors of 8 and 16, k blocks of 256 and 512, row
// blocks of 96), run once per kernel family the CPU has.
// Without the kernels (noasm, float64, other CPUs) they test the pure-Go
// code on the same shapes.

// gemmEdgeSizes straddle every tile and vector width.
var gemmEdgeSizes = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 24, 25, 31, 32, 33, 65}

func TestGemmKernelEdges(t *testing.T) { forEachSgemmFamily(t, testGemmKernelEdges) }

func testGemmKernelEdges(t *testing.T) {
	ks := []int{1, 2, 7, 8, 9, 16, 17, 33}
	if testing.Short() {
		ks = []int{1, 9, 17}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				// Every m×n of the edge sizes with a few k.
				for _, m := range gemmEdgeSizes {
					for _, n := range gemmEdgeSizes {
						for _, k := range ks {
							ktGemmCase[float32](t, r, tA, tB, acc, m, n, k)
						}
					}
				}
				// Every k of the edge sizes with a few m×n.
				for _, k := range gemmEdgeSizes {
					for _, mn := range [][2]int{{1, 1}, {5, 9}, {6, 16}, {7, 17}, {13, 31}, {4, 3}, {3, 4}, {2, 5}} {
						ktGemmCase[float32](t, r, tA, tB, acc, mn[0], mn[1], k)
					}
				}
			}
		}
	}
	// A few float64 cases of the same kind for the pure-Go path.
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, k := range []int{1, 8, 17} {
				ktGemmCase[float64](t, r, tA, tB, true, 7, 17, k)
			}
		}
	}
}

func TestGemmMLPShapes(t *testing.T) { forEachSgemmFamily(t, testGemmMLPShapes) }

func testGemmMLPShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	shapes := [][3]int{ // m, n, k
		{32, 128, 784}, {32, 64, 128}, {32, 10, 64}, // forward
		{32, 784, 128}, {32, 128, 64}, {32, 64, 10}, // dX
		{784, 128, 32}, {128, 64, 32}, {64, 10, 32}, // dW
		{256, 256, 256},
		// Several row blocks of 96, k blocks of 256 and 512, odd sizes.
		{197, 37, 600}, {97, 45, 1100}, {193, 23, 513}, {100, 3, 257},
		// NT with rows and k around the former dot kernels' limits (m 128
		// and 512, k 32 and 512).
		{129, 33, 64}, {300, 70, 511}, {130, 19, 512}, {128, 40, 31}, {513, 20, 512},
	}
	if testing.Short() {
		shapes = shapes[:10]
	}
	for _, s := range shapes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					ktGemmCase[float32](t, r, tA, tB, acc, s[0], s[1], s[2])
				}
			}
		}
	}
}

// gemmF32 is a type defined on float32: Gemm reinterprets its slices.
type gemmF32 float32

func TestGemmDefinedType(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const m, n, k = 13, 21, 40
	conv := func(x []float32) []gemmF32 {
		y := make([]gemmF32, len(x))
		for i, v := range x {
			y[i] = gemmF32(v)
		}
		return y
	}
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			a := conv(ktRand[float32](r, m*k, 1))
			b := conv(ktRand[float32](r, k*n, 1))
			c := conv(ktRand[float32](r, m*n, 1))
			want := append([]gemmF32(nil), c...)
			Gemm(tA, tB, m, n, k, a, b, c, true)
			GemmNaive(tA, tB, m, n, k, a, b, want, true)
			for i := range c {
				if d := math.Abs(float64(c[i] - want[i])); d > ktGemmTol[float32](k) {
					t.Fatalf("tA=%v tB=%v: c[%d] = %v, want %v", tA, tB, i, c[i], want[i])
				}
			}
		}
	}
}

// TestGemmSpecialValues checks that infinities and NaNs in the operands
// propagate as in the reference loop: masked tails must not mix in
// elements outside the matrices or of other rows.
func TestGemmSpecialValues(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			const m, n, k = 7, 11, 13
			a := make([]float32, m*k)
			b := make([]float32, k*n)
			for i := range a {
				a[i] = 1
			}
			for i := range b {
				b[i] = 1
			}
			// opA(2, 12) = Inf: row 2 of C becomes Inf, the rest k.
			if tA {
				a[12*m+2] = inf
			} else {
				a[2*k+12] = inf
			}
			full, c := ktBuf[float32](m * n)
			Gemm(tA, tB, m, n, k, a, b, c, false)
			ktGuardsOK(t, "Gemm special values", full)
			for i := range m {
				for j := range n {
					want := float32(k)
					if i == 2 {
						want = inf
					}
					if got := c[i*n+j]; got != want {
						t.Fatalf("tA=%v tB=%v: C[%d,%d] = %v, want %v", tA, tB, i, j, got, want)
					}
				}
			}
		}
	}
}

func TestGemmPath(t *testing.T) {
	t.Logf("float32 Gemm on assembly kernels: %v", gemmAsmUsed())
}
