package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ktGemmTol is the allowed |Gemm - GemmNaive| for operands in [-1, 1]:
// both sum k products in different orders.
func ktGemmTol[T Float](k int) float64 {
	return ktEps[T]() * 16 * float64(k+1)
}

func ktTestGemm[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 2, 3, 5, 6, 7, 17, 33, 65}
	ks := []int{0, 1, 2, 3, 7, 17, 33, 65, 257, 600}
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				for _, m := range sizes {
					for _, n := range sizes {
						for _, k := range ks {
							ktGemmCase[T](t, r, tA, tB, acc, m, n, k)
						}
					}
				}
				// Random shapes, including ones straddling the tile sizes.
				for range 20 {
					ktGemmCase[T](t, r, tA, tB, acc, 1+r.IntN(80), 1+r.IntN(80), r.IntN(300))
				}
			}
		}
	}
}

func ktGemmCase[T Float](t *testing.T, r *rand.Rand, tA, tB, acc bool, m, n, k int) {
	t.Helper()
	a := ktRand[T](r, m*k, 1)
	b := ktRand[T](r, k*n, 1)
	full, c := ktBuf[T](m * n)
	init := ktRand[T](r, m*n, 1)
	copy(c, init)
	want := append([]T(nil), init...)
	Gemm(tA, tB, m, n, k, a, b, c, acc)
	GemmNaive(tA, tB, m, n, k, a, b, want, acc)
	name := fmt.Sprintf("Gemm(tA=%v,tB=%v,acc=%v,m=%d,n=%d,k=%d)", tA, tB, acc, m, n, k)
	ktGuardsOK(t, name, full)
	ktAbsClose(t, name, c, want, ktGemmTol[T](k))
}

func TestGemm(t *testing.T) {
	t.Run("float32", ktTestGemm[float32])
	t.Run("float64", ktTestGemm[float64])
}

func TestGemmDegenerate(t *testing.T) {
	// m or n zero: nothing is touched, even with nil slices.
	Gemm[float32](false, false, 0, 5, 3, nil, make([]float32, 15), nil, false)
	Gemm[float32](true, true, 4, 0, 3, make([]float32, 12), nil, nil, true)
	// k zero: C zeroed, or kept when accumulating.
	for _, acc := range []bool{false, true} {
		full, c := ktBuf[float64](6)
		Fill(c, 7)
		Gemm(false, true, 2, 3, 0, nil, nil, c, acc)
		ktGuardsOK(t, "Gemm k=0", full)
		want := 0.0
		if acc {
			want = 7
		}
		for i, v := range c {
			if v != want {
				t.Fatalf("Gemm k=0 acc=%v: c[%d] = %v, want %v", acc, i, v, want)
			}
		}
	}
	// 1×1×1 by hand.
	c := []float32{10}
	Gemm(false, false, 1, 1, 1, []float32{3}, []float32{4}, c, true)
	if c[0] != 22 {
		t.Fatalf("1x1x1 acc: got %v, want 22", c[0])
	}
}

func TestGemmShortSlicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Gemm with a short C did not panic")
		}
	}()
	Gemm(false, false, 2, 2, 2, make([]float32, 4), make([]float32, 4), make([]float32, 3), false)
}

func TestGemmZeroAllocs(t *testing.T) {
	// A small product, and a large one that packs both operands (and,
	// with k = 512, packs A too) in buffers kept from call to call.
	for _, s := range [][3]int{{33, 65, 300}, {256, 600, 512}} {
		m, n, k := s[0], s[1], s[2]
		a := make([]float32, m*k)
		b := make([]float32, k*n)
		c := make([]float32, m*n)
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				allocs := testing.AllocsPerRun(5, func() {
					Gemm(tA, tB, m, n, k, a, b, c, true)
				})
				if allocs != 0 {
					t.Errorf("Gemm(tA=%v, tB=%v) %v allocates %v times per call", tA, tB, s, allocs)
				}
			}
		}
	}
	a64, b64, c64 := make([]float64, 7*5), make([]float64, 5*9), make([]float64, 7*9)
	if allocs := testing.AllocsPerRun(5, func() {
		Gemm(false, true, 7, 9, 5, a64, b64, c64, false)
	}); allocs != 0 {
		t.Errorf("Gemm[float64] allocates %v times per call", allocs)
	}
}

// ktAbsClose fails if any |got[i]-want[i]| > tol.
func ktAbsClose[T Float](t *testing.T, name string, got, want []T, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= tol) {
			t.Fatalf("%s: [%d] = %v, want %v (|diff| %g > %g)", name, i, got[i], want[i], d, tol)
		}
	}
}
