//go:build !noasm

package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// Tests of the fused AVX2/FMA and AVX-512 kernels of GELU (f32Gelu,
// f32GeluGrad, f32GeluZ, f32GeluGradZ) and
// of the softmax rows' exponentials (f32ExpSum, f32SumExp): their own
// accuracy and guard bands. TestExpShift (expshift_test.go) checks the
// entry points in both builds.

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

		if cpu.X86.HasAVX512F {
			// The AVX-512 kernels on the whole vectors of 16: the same bits.
			kz := n &^ 15
			full, out := ktBuf[float32](n)
			f32GeluZ(n, ewP(out), ewP(xm[0]))
			ktGuardsOK(t, fmt.Sprintf("f32GeluZ(n=%d)", n), full)
			geluCheck(t, fmt.Sprintf("f32GeluZ(n=%d)", n), out, wantY[:kz])
			full, out = ktBuf[float32](n)
			f32GeluGradZ(n, ewP(out), ewP(xm[0]), ewP(xm[1]))
			ktGuardsOK(t, fmt.Sprintf("f32GeluGradZ(n=%d)", n), full)
			geluCheck(t, fmt.Sprintf("f32GeluGradZ(n=%d)", n), out, wantD[:kz])
			for j, f := range xf {
				ktGuardsOK(t, fmt.Sprintf("f32GeluZ kernels(n=%d) input %d", n, j), f)
			}
		}

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

// TestF32ExpSumKernels: f32ExpSum's exponentials within expShiftErr of
// e^(x·scale − shift), f32SumExp's sum equal to f32ExpSum's and both
// within float64 rounding of the sum of the stored exponentials; with
// scale 1 and shift 0 the exponentials are f32Exp's bit for bit; the
// tail and the guard bands untouched; -1e30 and -Inf give 0, NaN NaN.
func TestF32ExpSumKernels(t *testing.T) {
	skipNoF32FMA(t)
	r := rand.New(rand.NewPCG(63, 64))
	for _, n := range ewLens {
		k := n &^ 7
		for _, c := range []struct{ span, scale, shift float64 }{
			{1, 1, 0}, {30, 1, 0}, {120, 1, 0}, {20, 0.17677669529663687, 3.5}, {200, 0.5, -7}, {5, 3.3, 16},
		} {
			x := ewRand(r, n, c.span, false)
			sc, sh := float32(c.scale), float32(c.shift)
			full, out := ktBuf[float32](n)
			xf, xm := ewGuarded(x)
			sum := f32ExpSum(n, ewP(out), ewP(xm[0]), sc, sh)
			name := fmt.Sprintf("f32ExpSum(n=%d, span %v, scale %v, shift %v)", n, c.span, sc, sh)
			ktGuardsOK(t, name, full)
			ktGuardsOK(t, name+" x", xf[0])
			var want float64
			for i, v := range out {
				if i >= k {
					if v != -12345 {
						t.Fatalf("%s: tail [%d] = %v written", name, i, v)
					}
					continue
				}
				want += float64(v)
				u := float64(x[i])*float64(sc) - float64(sh)
				if e := math.Exp(u); e > math.MaxFloat32 {
					if !math.IsInf(float64(v), 1) {
						t.Fatalf("%s: [%d] = %v, e^%v overflows", name, i, v, u)
					}
				} else if !(math.Abs(float64(v)-e) <= expShiftErr(u, e)) {
					t.Fatalf("%s: [%d] = %v, e^%v = %v", name, i, v, u, e)
				}
			}
			if !(math.Abs(sum-want) <= float64(n)*0x1p-53*want) && sum != want {
				t.Fatalf("%s: sum %v, sum of the exponentials %v", name, sum, want)
			}
			if s := f32SumExp(n, ewP(x), sc, sh); s != sum {
				t.Fatalf("%s: f32SumExp %v, f32ExpSum %v", name, s, sum)
			}
			if c.scale == 1 && c.shift == 0 {
				e := make([]float32, n)
				f32Exp(n, ewP(e), ewP(x))
				for i := range k {
					if out[i] != e[i] {
						t.Fatalf("%s: [%d] = %v, f32Exp %v", name, i, out[i], e[i])
					}
				}
			}
		}
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	x := []float32{-1e30, float32(math.Inf(-1)), -math.MaxFloat32, -104, 0, -0, nan, 1e-30}
	out := make([]float32, len(x))
	sum := f32ExpSum(len(x), ewP(out), ewP(x), 1, 0)
	for i, want := range []float32{0, 0, 0, 0, 1, 1, nan, 1} {
		if !ewSame(out[i], want) {
			t.Errorf("f32ExpSum: e^%v = %v, want %v", x[i], out[i], want)
		}
	}
	if sum == sum {
		t.Errorf("f32ExpSum with a NaN: sum %v, want NaN", sum)
	}
	// A huge shift: every exponent very negative but 1e30's (0) and
	// +Inf's, no NaN.
	x = []float32{0, 1, 2, 3, -3, 1e30, -1e30, inf}
	sum = f32ExpSum(len(x), ewP(out), ewP(x), 1, 1e30)
	for i, want := range []float32{0, 0, 0, 0, 0, 1, 0, inf} {
		if out[i] != want {
			t.Errorf("f32ExpSum: e^(%v - 1e30) = %v, want %v", x[i], out[i], want)
		}
	}
	if !math.IsInf(sum, 1) {
		t.Errorf("f32ExpSum shifted by 1e30: sum %v, want +Inf", sum)
	}
}

// TestGeluDispatchZ: float32 Unary and UnaryGrad Gelu give the same bits
// with and without the AVX-512 kernels (haveF32Z), at every length.
func TestGeluDispatchZ(t *testing.T) {
	skipNoF32FMA(t)
	if !cpu.X86.HasAVX512F {
		t.Skip("CPU lacks AVX-512F")
	}
	defer func(v bool) { haveF32Z = v }(haveF32Z)
	r := rand.New(rand.NewPCG(65, 66))
	for _, n := range ewLens {
		x, dy := ewRand(r, n, 8, true), ewRand(r, n, 2, true)
		var y, d [2][]float32
		for i, z := range []bool{false, true} {
			haveF32Z = z
			y[i], d[i] = make([]float32, n), make([]float32, n)
			Unary(Gelu, y[i], x)
			UnaryGrad(Gelu, d[i], x, dy)
		}
		geluCheck(t, fmt.Sprintf("Unary Gelu (n=%d) with AVX-512", n), y[1], y[0])
		geluCheck(t, fmt.Sprintf("UnaryGrad Gelu (n=%d) with AVX-512", n), d[1], d[0])
	}
}
