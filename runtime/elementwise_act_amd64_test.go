//go:build !noasm

package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the AVX2/FMA transcendental kernels (f32Exp, f32Sigmoid,
// f32Tanh) and of the fused recurrent-cell kernels. The activations are
// measured in ulp against the float64 functions rounded to float32 over a
// dense sweep of all float32 bit patterns; the cell kernels against Go
// references, bit for bit where they have no transcendental function.

// actMaxUlps bounds the error of the activation kernels. The sweep
// measures 1 ulp for e^x and tanh, 2 for the sigmoid (the error of e^-|x|
// passes through e/(1+e) for x < 0, plus the division's rounding).
var actMaxUlps = map[string]int64{"Exp": 1, "Sigmoid": 2, "Tanh": 1}

func skipNoF32FMA(t *testing.T) {
	if !haveF32FMA {
		t.Skip("CPU lacks AVX2 or FMA: the transcendental kernels are not used")
	}
}

type actKernel struct {
	name string
	run  func(n int, out, x *float32)
	ref  func(x float64) float64
}

var actKernels = []actKernel{
	{"Exp", f32Exp, math.Exp},
	{"Sigmoid", f32Sigmoid, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
	{"Tanh", f32Tanh, math.Tanh},
}

// actSpecials are checked exactly (sign of zero included).
var actSpecials = []struct {
	x                 float32
	exp, sig, tanh    float32
	expNaN, sigNaN, _ bool
}{
	{x: 0, exp: 1, sig: 0.5, tanh: 0},
	{x: float32(math.Copysign(0, -1)), exp: 1, sig: 0.5, tanh: float32(math.Copysign(0, -1))},
	{x: float32(math.Inf(1)), exp: float32(math.Inf(1)), sig: 1, tanh: 1},
	{x: float32(math.Inf(-1)), exp: 0, sig: 0, tanh: -1},
	{x: math.MaxFloat32, exp: float32(math.Inf(1)), sig: 1, tanh: 1},
	{x: -math.MaxFloat32, exp: 0, sig: 0, tanh: -1},
	{x: 89, exp: float32(math.Inf(1)), sig: 1, tanh: 1},
	{x: -104, exp: 0, sig: 0, tanh: -1},
	{x: 0x1p-149, exp: 1, sig: 0.5, tanh: 0x1p-149},
	{x: -0x1p-149, exp: 1, sig: 0.5, tanh: -0x1p-149},
	{x: 0x1p-126, exp: 1, sig: 0.5, tanh: 0x1p-126},
}

func TestF32ActivationSpecials(t *testing.T) {
	skipNoF32FMA(t)
	n := len(actSpecials) + 2
	x := make([]float32, (n+7)&^7)
	for i, s := range actSpecials {
		x[i] = s.x
	}
	nan := float32(math.NaN())
	x[len(actSpecials)] = nan
	x[len(actSpecials)+1] = -nan
	for _, k := range actKernels {
		out := make([]float32, len(x))
		k.run(len(x), ewP(out), ewP(x))
		for i, s := range actSpecials {
			want := map[string]float32{"Exp": s.exp, "Sigmoid": s.sig, "Tanh": s.tanh}[k.name]
			if math.Float32bits(out[i]) != math.Float32bits(want) {
				t.Errorf("f32%s(%v) = %v (%#x), want %v (%#x)", k.name, s.x, out[i], math.Float32bits(out[i]), want, math.Float32bits(want))
			}
		}
		for i := len(actSpecials); i < n; i++ {
			if out[i] == out[i] {
				t.Errorf("f32%s(%v) = %v, want NaN", k.name, x[i], out[i])
			}
		}
	}
}

// TestF32ActivationUlps sweeps every 97th float32 bit pattern (every 997th
// with -short), both signs, NaNs excluded, and compares each kernel with
// the float64 function rounded to float32.
func TestF32ActivationUlps(t *testing.T) {
	skipNoF32FMA(t)
	step := uint64(97)
	if testing.Short() {
		step = 997
	}
	const chunk = 1 << 16
	x := make([]float32, 0, chunk)
	out := make([]float32, chunk)
	type worst struct {
		ulps  int64
		x     float32
		got   float32
		count [4]int64 // results 0, 1, 2, ≥3 ulp off
	}
	w := make([]worst, len(actKernels))
	flush := func() {
		n := len(x) &^ 7
		for ki, k := range actKernels {
			k.run(n, ewP(out), ewP(x))
			for i, v := range x[:n] {
				want := float32(k.ref(float64(v)))
				d := ulpDiff(out[i], want)
				w[ki].count[min(d, 3)]++
				if d > w[ki].ulps {
					w[ki].ulps, w[ki].x, w[ki].got = d, v, out[i]
				}
			}
		}
		x = append(x[:0], x[n:]...)
	}
	for b := uint64(0); b < 1<<32; b += step {
		v := math.Float32frombits(uint32(b))
		if v != v {
			continue
		}
		x = append(x, v)
		if len(x) == chunk {
			flush()
		}
	}
	flush()
	for ki, k := range actKernels {
		r := w[ki]
		t.Logf("f32%s: max %d ulp at x=%v (got %v, want %v); results with 0/1/2/≥3 ulp error: %v",
			k.name, r.ulps, r.x, r.got, float32(k.ref(float64(r.x))), r.count)
		if r.ulps > actMaxUlps[k.name] {
			t.Errorf("f32%s: %d ulp at x=%v, want ≤ %d", k.name, r.ulps, r.x, actMaxUlps[k.name])
		}
	}
}

// TestF32ActivationGuards checks that the activation and cell kernels
// write exactly the whole vectors of their outputs: every array sits
// between guard bands, and the last n%8 elements keep their contents.
func TestF32ActivationGuards(t *testing.T) {
	skipNoF32FMA(t)
	r := rand.New(rand.NewPCG(51, 52))
	for _, n := range ewLens {
		x := ewRand(r, n, 10, true)
		for _, k := range actKernels {
			full, out := ktBuf[float32](n)
			xf, xm := ktBuf[float32](n)
			copy(xm, x)
			k.run(n, ewP(out), ewP(xm))
			name := fmt.Sprintf("f32%s(n=%d)", k.name, n)
			ktGuardsOK(t, name, full)
			ktGuardsOK(t, name+" x", xf)
			for i := range out {
				want := float32(-12345)
				if i < n&^7 {
					want = float32(k.ref(float64(x[i])))
					if d := ulpDiff(out[i], want); d > actMaxUlps[k.name] {
						t.Fatalf("%s: [%d] = %v, want %v (%d ulp)", name, i, out[i], want, d)
					}
					continue
				}
				if out[i] != want {
					t.Fatalf("%s: tail [%d] = %v written", name, i, out[i])
				}
			}
			// In place.
			copy(out, x)
			k.run(n, ewP(out), ewP(out))
			for i := range n &^ 7 {
				if want := float32(k.ref(float64(x[i]))); ulpDiff(out[i], want) > actMaxUlps[k.name] {
					t.Fatalf("%s in place: [%d] = %v, want %v", name, i, out[i], want)
				}
			}
		}
	}
}

// ewGuarded returns k guarded copies of the arrays in src (ktBuf buffers).
func ewGuarded(src ...[]float32) (full, mid [][]float32) {
	for _, s := range src {
		f, m := ktBuf[float32](len(s))
		copy(m, s)
		full, mid = append(full, f), append(mid, m)
	}
	return full, mid
}

// TestF32RNNRowKernels runs the SimpleRNN and LSTM row kernels on guarded
// rows of every width H up to 70 and some larger ones, against Go
// references: the backward kernels bit for bit (explicit float32
// conversions forbid fusing), the forward ones with the activation
// kernels' error bounds, propagated through the cell.
func TestF32RNNRowKernels(t *testing.T) {
	skipNoF32FMA(t)
	r := rand.New(rand.NewPCG(53, 54))
	for _, H := range ewLens {
		k := H &^ 7
		name := func(kn string) string { return fmt.Sprintf("%s(H=%d)", kn, H) }
		checkGuards := func(kn string, full [][]float32) {
			t.Helper()
			for j, f := range full {
				ktGuardsOK(t, fmt.Sprintf("%s array %d", name(kn), j), f)
			}
		}

		// f32RNNFwd: a, h = tanh(a + b + h + bh).
		{
			in := [][]float32{ewRand(r, H, 2, false), ewRand(r, H, 2, false), ewRand(r, H, 1, false), ewRand(r, H, 1, false)}
			full, m := ewGuarded(in...)
			f32RNNFwd(H, ewP(m[0]), ewP(m[1]), ewP(m[2]), ewP(m[3]))
			checkGuards("f32RNNFwd", full)
			for j := 0; j < H; j++ {
				want := []float32{in[0][j], in[1][j]}
				if j < k {
					s := in[0][j] + in[2][j] + in[1][j] + in[3][j]
					v := float32(math.Tanh(float64(s)))
					want = []float32{v, v}
				}
				for q := range want {
					if d := ulpDiff(m[q][j], want[q]); d > actMaxUlps["Tanh"] {
						t.Fatalf("%s: array %d [%d] = %v, want %v", name("f32RNNFwd"), q, j, m[q][j], want[q])
					}
				}
			}
		}

		// f32RNNBwd: gh = gx = dh * (1 - h*h), bit for bit.
		{
			in := [][]float32{ewRand(r, H, 2, true), ewRand(r, H, 1, true), ewRand(r, H, 1, false), ewRand(r, H, 1, false)}
			full, m := ewGuarded(in...)
			f32RNNBwd(H, ewP(m[0]), ewP(m[1]), ewP(m[2]), ewP(m[3]))
			checkGuards("f32RNNBwd", full)
			for j := 0; j < H; j++ {
				want := []float32{in[0][j], in[1][j], in[2][j], in[3][j]}
				if j < k {
					h := in[1][j]
					v := in[0][j] * float32(1-float32(h*h))
					want[2], want[3] = v, v
				}
				for q := range want {
					if !ewSame(m[q][j], want[q]) {
						t.Fatalf("%s: array %d [%d] = %v, want %v", name("f32RNNBwd"), q, j, m[q][j], want[q])
					}
				}
			}
		}

		// f32LSTMBwd, bit for bit. Arrays: dh, dc, a (4H), cp, tc, gh (4H), gx (4H).
		{
			a := ewRand(r, 4*H, 1, true)
			in := [][]float32{ewRand(r, H, 2, true), ewRand(r, H, 2, true), a, ewRand(r, H, 2, true),
				ewRand(r, H, 1, true), ewRand(r, 4*H, 1, false), ewRand(r, 4*H, 1, false)}
			full, m := ewGuarded(in...)
			f32LSTMBwd(H, ewP(m[0]), ewP(m[1]), ewP(m[2]), ewP(m[3]), ewP(m[4]), ewP(m[5]), ewP(m[6]))
			checkGuards("f32LSTMBwd", full)
			want := make([][]float32, len(in))
			for q, s := range in {
				want[q] = append([]float32(nil), s...)
			}
			for j := 0; j < k; j++ {
				d, dc := in[0][j], in[1][j]
				i, f, g, o, tv := a[j], a[H+j], a[2*H+j], a[3*H+j], in[4][j]
				c := dc + float32(float32(d*o)*float32(1-float32(tv*tv)))
				want[1][j] = c * f
				vi := float32(float32(float32(c*g)*i) * float32(1-i))
				vf := float32(float32(float32(c*in[3][j])*f) * float32(1-f))
				vg := float32(float32(c*i) * float32(1-float32(g*g)))
				vo := float32(float32(float32(d*tv)*o) * float32(1-o))
				for q, v := range []float32{vi, vf, vg, vo} {
					want[5][q*H+j], want[6][q*H+j] = v, v
				}
			}
			for q := range want {
				for j, w := range want[q] {
					if !ewSame(m[q][j], w) {
						t.Fatalf("%s: array %d [%d] = %v, want %v", name("f32LSTMBwd"), q, j, m[q][j], w)
					}
				}
			}
		}

		// f32LSTMFwd against the same cell in float64 from the same
		// (rounded) pre-activations. Arrays: a, hu, b, bh (4H), cp, c, tc, h, y.
		{
			in := [][]float32{ewRand(r, 4*H, 3, false), ewRand(r, 4*H, 2, false), ewRand(r, 4*H, 1, false), ewRand(r, 4*H, 1, false),
				ewRand(r, H, 3, false), ewRand(r, H, 1, false), ewRand(r, H, 1, false), ewRand(r, H, 1, false), ewRand(r, H, 1, false)}
			full, m := ewGuarded(in...)
			f32LSTMFwd(H, ewP(m[0]), ewP(m[1]), ewP(m[2]), ewP(m[3]), ewP(m[4]), ewP(m[5]), ewP(m[6]), ewP(m[7]), ewP(m[8]))
			checkGuards("f32LSTMFwd", full)
			want := make([][]float64, len(in))
			for q, s := range in {
				want[q] = make([]float64, len(s))
				for j, v := range s {
					want[q][j] = float64(v)
				}
			}
			sig := func(v float32) float64 { return 1 / (1 + math.Exp(-float64(v))) }
			for j := 0; j < k; j++ {
				var pre [4]float32
				for q := range pre {
					x := q*H + j
					pre[q] = in[0][x] + in[2][x] + in[1][x] + in[3][x]
				}
				i, f, g, o := sig(pre[0]), sig(pre[1]), math.Tanh(float64(pre[2])), sig(pre[3])
				c := f*float64(in[4][j]) + i*g
				tc := math.Tanh(c)
				want[0][j], want[0][H+j], want[0][2*H+j], want[0][3*H+j] = i, f, g, o
				want[5][j], want[6][j], want[7][j], want[8][j] = c, tc, o*tc, o*tc
			}
			// The gates are within the activations' ulp bounds; c, tanh c and
			// h add the roundings of the cell update.
			for q := range want {
				for j, w := range want[q] {
					g := float64(m[q][j])
					if j%H >= k || q == 1 || q == 2 || q == 3 || q == 4 {
						if g != w {
							t.Fatalf("%s: array %d [%d] = %v written, want %v", name("f32LSTMFwd"), q, j, g, w)
						}
						continue
					}
					if math.Abs(g-w) > 8*0x1p-24*(math.Abs(w)+1) {
						t.Fatalf("%s: array %d [%d] = %v, want %v", name("f32LSTMFwd"), q, j, g, w)
					}
				}
			}
		}
	}
}

// TestF32SumRows2Kernel checks f32SumRows2 bit for bit against two Go
// column sums, and that it writes only the whole vectors of a and b.
func TestF32SumRows2Kernel(t *testing.T) {
	skipNoF32Asm(t)
	r := rand.New(rand.NewPCG(55, 56))
	for _, cols := range ewLens {
		for _, rows := range []int{1, 2, 3, 7, 32} {
			in := ewRand(r, rows*cols, 2, rows > 2)
			initA, initB := ewRand(r, cols, 1, false), ewRand(r, cols, 1, false)
			fa, a := ktBuf[float32](cols)
			fb, b := ktBuf[float32](cols)
			copy(a, initA)
			copy(b, initB)
			f32SumRows2(cols, rows, ewP(a), ewP(b), ewP(in))
			wa := append([]float32(nil), initA...)
			wb := append([]float32(nil), initB...)
			for c := 0; c < cols&^7; c++ {
				for i := 0; i < rows; i++ {
					wa[c] += in[i*cols+c]
					wb[c] += in[i*cols+c]
				}
			}
			name := fmt.Sprintf("f32SumRows2(cols=%d, rows=%d)", cols, rows)
			ktGuardsOK(t, name+" a", fa)
			ktGuardsOK(t, name+" b", fb)
			for c := range wa {
				if !ewSame(a[c], wa[c]) || !ewSame(b[c], wb[c]) {
					t.Fatalf("%s: [%d] = %v, %v, want %v, %v", name, c, a[c], b[c], wa[c], wb[c])
				}
			}
		}
	}
}

// TestF32CopyRunsKernel copies strided rows of every length up to 70
// between guarded buffers, with the AVX kernel and, where the CPU has
// AVX-512, the opmask one.
func TestF32CopyRunsKernel(t *testing.T) {
	skipNoF32Asm(t)
	kernels := map[string]func(runs, n int, dst *float32, ds int, src *float32, ss int){"f32CopyRuns": f32CopyRuns}
	if copyRunsZ {
		kernels["f32CopyRunsZ"] = f32CopyRunsZ
	}
	for kname, kern := range kernels {
		testF32CopyRuns(t, kname, kern)
	}
}

func testF32CopyRuns(t *testing.T, kname string, kern func(runs, n int, dst *float32, ds int, src *float32, ss int)) {
	r := rand.New(rand.NewPCG(57, 58))
	for _, n := range ewLens[:72] {
		for _, runs := range []int{0, 1, 3, 30} {
			ds, ss := max(n+r.IntN(5), 1), n+r.IntN(9)
			src := ewRand(r, max(runs*ss, 1), 2, true)
			size := max(runs*ds, 1)
			full, dst := ktBuf[float32](size)
			kern(runs, n, ewP(dst), ds, ewP(src), ss)
			name := fmt.Sprintf("%s(runs=%d, n=%d, ds=%d, ss=%d)", kname, runs, n, ds, ss)
			ktGuardsOK(t, name, full)
			for i, v := range dst {
				want := float32(-12345)
				if rr, c := i/ds, i%ds; rr < runs && c < n {
					want = src[rr*ss+c]
				}
				if !ewSame(v, want) {
					t.Fatalf("%s: dst[%d] = %v, want %v", name, i, v, want)
				}
			}
		}
	}
}
