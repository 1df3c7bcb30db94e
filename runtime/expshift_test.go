package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// expShiftErr bounds the error of a float32 e^u as the softmax rows
// compute it (expShift): u = x·scale − shift rounded once to float32
// (relative error 2^-24, which e^ turns into an error of |u|·2^-24
// relative), then e^ to 1 ulp (at most 2^-23 relative), so
//
//	|got − e^u| ≤ 2^-24·(2 + |u|)·e^u,
//
// plus 2^-149 for results in the subnormal range. Measured on random
// rows: at most 0.99 of the relative bound (|u| up to 200, e^u normal).
// float64 and the Go loops meet it easily (math.Exp, then one rounding).
func expShiftErr(u, e float64) float64 {
	return 0x1p-24*(2+math.Abs(u))*e + 0x1p-149
}

// TestExpShift runs expShift and sumExpShift (the exponentials of the
// softmax rows; amd64 kernels for float32, math.Exp otherwise) on rows of
// every length to 70 and some longer, between guard bands: float32 within
// expShiftErr of the float64 results, float64 exactly math.Exp's, sums in
// float64 within rounding of the sum of the exponentials, -1e30 and -Inf
// exponents 0 (not NaN).
func TestExpShift(t *testing.T) { forEachRowFamily(t, testExpShift) }

func testExpShift(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	lens := []int{}
	for n := 1; n <= 70; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 255, 256, 1001)
	for _, n := range lens {
		for _, c := range []struct{ span, scale float64 }{{1, 1}, {40, 1}, {150, 1}, {20, 0.17677669529663687}, {300, 0.5}} {
			x64 := make([]float64, n)
			x32 := make([]float32, n)
			for i := range x64 {
				x32[i] = float32((2*r.Float64() - 1) * c.span)
				if r.IntN(20) == 0 {
					x32[i] = -1e30
				}
				x64[i] = float64(x32[i])
			}
			shift := float64(rowMax(x32)) * c.scale
			name := fmt.Sprintf("expShift(n=%d, span %v, scale %v)", n, c.span, c.scale)

			full64, o64 := ktBuf[float64](n)
			s64 := expShift(o64, x64, c.scale, shift)
			ktGuardsOK(t, name+" float64", full64)
			var want float64
			for i, v := range x64 {
				e := math.Exp(v*c.scale - shift)
				if o64[i] != e {
					t.Fatalf("%s float64: [%d] = %v, math.Exp %v", name, i, o64[i], e)
				}
				want += e
			}
			if s64 != want || sumExpShift(x64, c.scale, shift) != want {
				t.Fatalf("%s float64: sum %v, sumExpShift %v, want %v", name, s64, sumExpShift(x64, c.scale, shift), want)
			}

			full32, o32 := ktBuf[float32](n)
			s32 := expShift(o32, x32, c.scale, shift)
			ktGuardsOK(t, name+" float32", full32)
			var got float64
			for i, v := range o32 {
				// The kernels take float32(shift) and float32(scale).
				u := x64[i]*float64(float32(c.scale)) - float64(float32(shift))
				if e := math.Exp(u); !(math.Abs(float64(v)-e) <= expShiftErr(u, e)) {
					t.Fatalf("%s float32: [%d] = e^%v = %v, want %v", name, i, u, v, e)
				}
				got += float64(v)
			}
			if math.Abs(s32-got) > float64(n)*0x1p-53*got {
				t.Fatalf("%s float32: sum %v, sum of the exponentials %v", name, s32, got)
			}
			if s := sumExpShift(x32, c.scale, shift); math.Abs(s-s32) > float64(n)*0x1p-53*s32 {
				t.Fatalf("%s float32: sumExpShift %v, expShift %v", name, s, s32)
			}
			// In place.
			in := append([]float32(nil), x32...)
			if s := expShift(in, in, c.scale, shift); s != s32 {
				t.Fatalf("%s float32 in place: sum %v, want %v", name, s, s32)
			}
			for i := range in {
				if in[i] != o32[i] {
					t.Fatalf("%s float32 in place: [%d] = %v, want %v", name, i, in[i], o32[i])
				}
			}
		}
	}
}

// TestFloat32Softmaxes: the float32 softmax family (Softmax,
// SoftmaxCrossEntropy and its gradient, causal and full Attention with
// AttentionGrad) close to the float64 results on the same inputs, on rows
// long enough for the vector kernels and with a ragged tail.
func TestFloat32Softmaxes(t *testing.T) { forEachRowFamily(t, testFloat32Softmaxes) }

func testFloat32Softmaxes(t *testing.T) {
	r := rand.New(rand.NewPCG(73, 74))
	const rows, cols = 9, 37
	x64 := make([]float64, rows*cols)
	for i := range x64 {
		x64[i] = float64(float32(r.NormFloat64() * 4))
	}
	x32 := to32(x64)
	labels := make([]int32, rows)
	for i := range labels {
		labels[i] = int32(r.IntN(cols))
	}
	closeF32 := func(name string, got []float32, want []float64, tol float64) {
		t.Helper()
		for i, w := range want {
			if math.Abs(float64(got[i])-w) > tol*(1+math.Abs(w)) {
				t.Fatalf("%s[%d]: float32 %v, float64 %v", name, i, got[i], w)
			}
		}
	}
	s64, s32 := make([]float64, len(x64)), make([]float32, len(x32))
	Softmax(s64, x64, rows, cols)
	Softmax(s32, x32, rows, cols)
	closeF32("Softmax", s32, s64, 2e-6)
	l64 := SoftmaxCrossEntropy(x64, labels, rows, cols)
	l32 := SoftmaxCrossEntropy(x32, labels, rows, cols)
	closeF32("SoftmaxCrossEntropy", []float32{l32}, []float64{l64}, 2e-6)
	SoftmaxCrossEntropyGrad(s64, x64, labels, rows, cols, 0.25)
	SoftmaxCrossEntropyGrad(s32, x32, labels, rows, cols, 0.25)
	closeF32("SoftmaxCrossEntropyGrad", s32, s64, 2e-6)

	const n, steps, C, heads = 2, 21, 24, 2
	q64 := make([]float64, n*steps*3*C)
	w64 := make([]float64, n*steps*C)
	for i := range q64 {
		q64[i] = float64(float32(r.NormFloat64() * 2))
	}
	for i := range w64 {
		w64[i] = float64(float32(r.NormFloat64()))
	}
	q32, w32 := to32(q64), to32(w64)
	for _, causal := range []bool{true, false} {
		o64, a64 := make([]float64, len(w64)), make([]float64, AttentionSavedSize(n, steps, heads))
		o32, a32 := make([]float32, len(w64)), make([]float32, len(a64))
		Attention(o64, a64, q64, make([]float64, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, causal)
		Attention(o32, a32, q32, make([]float32, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, causal)
		closeF32(fmt.Sprintf("Attention (causal %v) probabilities", causal), a32, a64, 2e-6)
		closeF32(fmt.Sprintf("Attention (causal %v)", causal), o32, o64, 1e-5)
		d64, d32 := make([]float64, len(q64)), make([]float32, len(q64))
		AttentionGrad(d64, w64, q64, a64, make([]float64, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, causal, false)
		AttentionGrad(d32, w32, q32, a32, make([]float32, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, causal, false)
		closeF32(fmt.Sprintf("AttentionGrad (causal %v)", causal), d32, d64, 1e-5)
	}
}

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// TestSoftmaxRowAsm: the one-call softmax of an attention row, where the
// CPU has it, gives bit for bit what rowMax, expShift and Scale give, on
// rows of every length to 70 and some longer, with scores far below the
// row's largest (exponentials that underflow), between guard bands.
func TestSoftmaxRowAsm(t *testing.T) {
	r := rand.New(rand.NewPCG(75, 76))
	for _, n := range append(ewLensSoftmax(), 255, 256, 1001) {
		for _, span := range []float64{1, 30, 300} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32((2*r.Float64() - 1) * span)
			}
			const scale = 0.17677669529663687
			want := append([]float32(nil), x...)
			peak := float64(rowMax(want)) * scale
			sum := expShift(want, want, scale, peak)
			Scale(want, want, float32(1/sum))
			full, got := ktBuf[float32](n)
			copy(got, x)
			if !softmaxRowAsm(got, scale) {
				t.Skip("no one-call softmax row kernel on this CPU or build")
			}
			ktGuardsOK(t, fmt.Sprintf("n=%d span %v", n, span), full)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d span %v: [%d] = %v, rowMax+expShift+Scale %v", n, span, i, got[i], want[i])
				}
			}
		}
	}
}

func ewLensSoftmax() []int {
	var l []int
	for n := 1; n <= 70; n++ {
		l = append(l, n)
	}
	return l
}

// TestSoftmaxGradRowAsm: the one-call step through an attention row's
// softmax, where the CPU has it, against the same arithmetic with the
// mean summed exactly: within one rounding of the result plus the
// mean's rounding; between guard bands.
func TestSoftmaxGradRowAsm(t *testing.T) {
	r := rand.New(rand.NewPCG(77, 78))
	for _, n := range append(ewLensSoftmax(), 255, 256, 1001) {
		p, d := make([]float32, n), make([]float32, n)
		for i := range p {
			p[i] = float32(r.Float64())
			d[i] = float32(r.NormFloat64() * 3)
		}
		const scale = 0.17677669529663687
		var mean, mag float64
		for i := range p {
			mean += float64(p[i]) * float64(d[i])
			mag += math.Abs(float64(p[i]) * float64(d[i]))
		}
		full, got := ktBuf[float32](n)
		copy(got, d)
		if !softmaxGradRowAllAsm(got, p, scale) {
			t.Skip("no one-call softmax gradient row kernel on this CPU or build")
		}
		ktGuardsOK(t, fmt.Sprintf("n=%d", n), full)
		for i := range p {
			want := float64(p[i]) * (float64(d[i]) - mean) * scale
			tol := 0x1p-24*math.Abs(want) + float64(n)*0x1p-52*mag*float64(p[i])*scale
			if math.Abs(float64(got[i])-want) > tol {
				t.Fatalf("n=%d: [%d] = %v, want %v (tolerance %v)", n, i, got[i], want, tol)
			}
		}
	}
}

// TestExpShiftNaN: a NaN exponent gives a NaN exponential and a NaN sum,
// at every position of rows of every length to 40, with both kernel
// families (a clamp that dropped the NaN would give e^89 instead).
func TestExpShiftNaN(t *testing.T) { forEachRowFamily(t, testExpShiftNaN) }

func testExpShiftNaN(t *testing.T) {
	for n := 1; n <= 40; n++ {
		for at := range n {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%5) - 2
			}
			x[at] = float32(math.NaN())
			out := make([]float32, n)
			s := expShift(out, x, 0.5, 1)
			if !math.IsNaN(float64(out[at])) || !math.IsNaN(s) {
				t.Fatalf("n=%d, NaN at %d: e^ = %v, sum %v, want NaN", n, at, out[at], s)
			}
			if s := sumExpShift(x, 0.5, 1); !math.IsNaN(s) {
				t.Fatalf("n=%d, NaN at %d: sumExpShift %v, want NaN", n, at, s)
			}
		}
	}
}
