//go:build !noasm

package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the fused AVX2/FMA kernels of GELU (f32Gelu, f32GeluGrad):
// agreement with the Go loops and guard bands.

// TestF32GeluKernels: f32Gelu and f32GeluGrad give, bit for bit, what the
// chunked Go loops give on the same CPU (their float32 operations in the
// same order around f32Tanh's tanh), write exactly the whole vectors of
// their output, and run in place.
func TestF32GeluKernels(t *testing.T) {
	skipNoF32FMA(t)
	r := rand.New(rand.NewPCG(61, 62))
	for _, n := range ewLens {
		k := n &^ 7
		x := ewRand(r, n, 8, true)
		dy := ewRand(r, n, 2, true)
		wantY, wantD := make([]float32, k), make([]float32, k)
		geluTanhLoop(wantY, x[:k])
		geluTanhGradLoop(wantD, x[:k], dy[:k])

		full, out := ktBuf[float32](n)
		xf, xm := ewGuarded(x, dy)
		f32Gelu(n, ewP(out), ewP(xm[0]))
		name := fmt.Sprintf("f32Gelu(n=%d)", n)
		ktGuardsOK(t, name, full)
		for j, f := range xf {
			ktGuardsOK(t, fmt.Sprintf("%s input %d", name, j), f)
		}
		geluCheck(t, name, out, wantY)

		full, out = ktBuf[float32](n)
		f32GeluGrad(n, ewP(out), ewP(xm[0]), ewP(xm[1]))
		name = fmt.Sprintf("f32GeluGrad(n=%d)", n)
		ktGuardsOK(t, name, full)
		for j, f := range xf {
			ktGuardsOK(t, fmt.Sprintf("%s input %d", name, j), f)
		}
		geluCheck(t, name, out, wantD)

		// In place: out = x for the forward, dx = dy for the gradient.
		in := append([]float32(nil), x...)
		f32Gelu(n, ewP(in), ewP(in))
		geluCheck(t, "in place "+name, in[:k], wantY)
		g := append([]float32(nil), dy...)
		f32GeluGrad(n, ewP(g), ewP(x), ewP(g))
		geluCheck(t, "in place "+name, g[:k], wantD)
	}
}

// geluCheck wants got's first len(want) elements to match want bit for
// bit (any NaN matching any NaN) and the rest to hold ktBuf's -12345.
func geluCheck(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i, v := range got {
		if i >= len(want) {
			if v != -12345 {
				t.Fatalf("%s: tail [%d] = %v written", name, i, v)
			}
			continue
		}
		if !ewSame(v, want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), Go loop %v (%#x)", name, i, v, math.Float32bits(v), want[i], math.Float32bits(want[i]))
		}
	}
}
