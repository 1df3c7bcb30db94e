package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowMax: rowMax (vector kernel for float32 on amd64) is the first
// largest element, NaNs skipped unless first, over rows of every length to
// 70 and some longer.
func TestRowMax(t *testing.T) {
	r := rand.New(rand.NewPCG(87, 88))
	nan := float32(math.NaN())
	for n := 1; n <= 300; n += 1 + n/16 {
		x := ewRand(r, n, 10, true)
		for _, first := range []float32{x[0], nan, float32(math.Inf(-1)), float32(math.Inf(1))} {
			x[0] = first
			want := x[0]
			for _, v := range x[1:] {
				if v > want {
					want = v
				}
			}
			if got := rowMax(x); !ewSame(got, want) {
				t.Fatalf("rowMax(n=%d, first %v) = %v, want %v", n, first, got, want)
			}
			x64 := make([]float64, n)
			for i, v := range x {
				x64[i] = float64(v)
			}
			if got := rowMax(x64); float32(got) != want && !(got != got && want != want) {
				t.Fatalf("float64 rowMax(n=%d, first %v) = %v, want %v", n, first, got, want)
			}
		}
	}
}

// TestLayerNormFloat32: float32 LayerNorm and LayerNormGrad (vector
// kernels on amd64, Go loops otherwise) against the same computation in
// float64 from the same float32 inputs, for row widths around the vector
// widths and the GPT's 128, outputs between guard bands, with both row
// kernel families; acc adds; out may be x.
func TestLayerNormFloat32(t *testing.T) { forEachRowFamily(t, testLayerNormFloat32) }

func testLayerNormFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(89, 90))
	for _, C := range []int{1, 5, 8, 13, 16, 17, 31, 32, 33, 47, 64, 70, 128, 131, 256} {
		const rows = 7
		x := ewRand(r, rows*C, 4, false)
		for i := range x {
			x[i] += 2 // a mean away from 0
		}
		gamma, beta := ewRand(r, C, 2, false), ewRand(r, C, 1, false)
		dy := ewRand(r, rows*C, 1, false)
		f64 := func(s []float32) []float64 {
			d := make([]float64, len(s))
			for i, v := range s {
				d[i] = float64(v)
			}
			return d
		}
		y64, s64 := make([]float64, rows*C), make([]float64, LayerNormSavedSize(rows))
		LayerNorm(y64, s64, f64(x), f64(gamma), f64(beta), rows, C, 1e-5)
		fy, y := ktBuf[float32](rows * C)
		fs, saved := ktBuf[float32](LayerNormSavedSize(rows))
		LayerNorm(y, saved, x, gamma, beta, rows, C, 1e-5)
		name := fmt.Sprintf("LayerNorm(C=%d)", C)
		ktGuardsOK(t, name+" out", fy)
		ktGuardsOK(t, name+" saved", fs)
		close32(t, name+" out", y, y64, 2e-6)
		close32(t, name+" saved", saved, s64, 2e-6)
		in := append([]float32(nil), x...)
		LayerNorm(in, make([]float32, len(saved)), in, gamma, beta, rows, C, 1e-5)
		for i := range in {
			if in[i] != y[i] {
				t.Fatalf("%s in place: [%d] = %v, want %v", name, i, in[i], y[i])
			}
		}

		dx64, dg64, db64 := make([]float64, rows*C), make([]float64, C), make([]float64, C)
		LayerNormGrad(dx64, dg64, db64, f64(dy), f64(x), f64(gamma), s64, rows, C, false)
		fdx, dx := ktBuf[float32](rows * C)
		fdg, dg := ktBuf[float32](C)
		fdb, db := ktBuf[float32](C)
		LayerNormGrad(dx, dg, db, dy, x, gamma, saved, rows, C, false)
		name = fmt.Sprintf("LayerNormGrad(C=%d)", C)
		for i, f := range [][]float32{fdx, fdg, fdb} {
			ktGuardsOK(t, fmt.Sprintf("%s output %d", name, i), f)
		}
		close32(t, name+" dx", dx, dx64, 1e-5)
		close32(t, name+" dgamma", dg, dg64, 1e-5)
		close32(t, name+" dbeta", db, db64, 1e-5)
		LayerNormGrad(dx, dg, db, dy, x, gamma, saved, rows, C, true)
		for i := range dg64 {
			dg64[i], db64[i] = 2*dg64[i], 2*db64[i]
		}
		close32(t, name+" acc dgamma", dg, dg64, 1e-5)
		close32(t, name+" acc dbeta", db, db64, 1e-5)
		// dx aliasing dy.
		g := append([]float32(nil), dy...)
		LayerNormGrad(g, dg, db, g, x, gamma, saved, rows, C, false)
		for i := range g {
			if g[i] != dx[i] {
				t.Fatalf("%s with dx = dy: [%d] = %v, want %v", name, i, g[i], dx[i])
			}
		}
	}
}

// close32 wants |got − want| ≤ tol·(1 + |want|) element by element.
func close32(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i, w := range want {
		if math.Abs(float64(got[i])-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s[%d]: float32 %v, float64 %v", name, i, got[i], w)
		}
	}
}
