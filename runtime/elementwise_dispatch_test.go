package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// Tests of the float32 entry points that may run on assembly kernels
// (elementwise_amd64.go) against their pure-Go loops, through the public
// API, so that the split between kernel (whole vectors of 8) and Go tail,
// in-place operands and several optimizer steps are covered. They run in
// every build: with -tags noasm or off amd64 both sides are the Go loops.
//
// With the default GOAMD64=v1 the results are bit-identical and the
// comparisons allow dispUlps. At GOAMD64=v3 the compiler fuses multiplies
// and adds in the Go loops, which the kernels never do, and a fused
// multiply-add that cancels can differ in many ulp of its result: then
// the comparisons only allow an error relative to the largest element of
// the array (dispFusedTol).

const (
	dispUlps     = 4
	dispFusedTol = 0x1p-18
)

//go:noinline
func dispMulAdd(a, b, c float32) float32 { return a*b + c }

// goFusesF32 reports whether this build fuses float32 a*b + c: (1+2⁻¹³)²
// rounds to 1+2⁻¹², so the unfused result below is 0 and the fused 2⁻²⁶.
var goFusesF32 = dispMulAdd(1+0x1p-13, 1+0x1p-13, -(1+0x1p-12)) != 0

// ewSpecials are mixed into the random inputs.
var ewSpecials = []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.NaN()), 0x1p-130, -0x1p-140, math.MaxFloat32, -math.MaxFloat32, 0x1p-126, 3e38}

// ewRand returns n values: mostly uniform in ±scale, with a special value
// in about every 16th element when specials.
func ewRand(r *rand.Rand, n int, scale float64, specials bool) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32((2*r.Float64() - 1) * scale)
		if specials && r.IntN(16) == 0 {
			s[i] = ewSpecials[r.IntN(len(ewSpecials))]
		}
	}
	return s
}

// ewSame reports whether a and b are the same float32, any NaN matching any
// NaN.
func ewSame(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// ewP returns the address of s's first element, also for an empty s.
func ewP(s []float32) *float32 { return unsafe.SliceData(s) }

// dispLens are the lengths the entry points are run with.
var dispLens = []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70, 127, 1001}

// dispFusedClose is the comparison when the Go loops may be fused: an
// unfused product may overflow where the fused one does not, so any
// non-finite value passes.
func dispFusedClose(got, want float32, scale float64) bool {
	g, w := float64(got), float64(want)
	if math.IsInf(g, 0) || math.IsInf(w, 0) || g != g || w != w {
		return true
	}
	return math.Abs(g-w) <= dispFusedTol*scale
}

// ulpDiff returns the distance in float32 steps between a and b: 0 for
// two NaNs, MaxInt64 for a NaN and a number.
func ulpDiff(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxInt64
	}
	ord := func(x float32) int64 {
		u := math.Float32bits(x)
		if u>>31 != 0 {
			return -int64(u &^ (1 << 31))
		}
		return int64(u)
	}
	d := ord(a) - ord(b)
	if d < 0 {
		d = -d
	}
	return d
}

// dispCheck fails unless got and want differ by at most dispUlps
// element-wise and returns the largest difference.
func dispCheck(t *testing.T, name string, got, want []float32) int64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	var worst int64
	var scale float64
	for _, w := range want {
		if !math.IsInf(float64(w), 0) && w == w {
			scale = max(scale, math.Abs(float64(w)))
		}
	}
	for i := range got {
		d := ulpDiff(got[i], want[i])
		if d > dispUlps && !(goFusesF32 && dispFusedClose(got[i], want[i], scale)) {
			t.Fatalf("%s: [%d] = %v, want %v (%d ulp)", name, i, got[i], want[i], d)
		}
		worst = max(worst, d)
	}
	return worst
}

func TestF32EntryPointsMatchGoLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, n := range dispLens {
		x := ewRand(r, n, 3, true)
		y := ewRand(r, n, 3, true)
		pos := make([]float32, n) // outputs of Sigmoid and Tanh, in (-1, 1)
		for i := range pos {
			pos[i] = float32(r.Float64())
		}
		fresh := func(src []float32) []float32 { return append([]float32(nil), src...) }
		check := func(name string, got, want []float32) {
			t.Helper()
			dispCheck(t, fmt.Sprintf("%s(n=%d)", name, n), got, want)
		}
		for _, op := range []UnaryOp{Relu, Sigmoid, Tanh, Exp, Log, Neg, Sqrt} {
			got, want := make([]float32, n), make([]float32, n)
			Unary(op, got, x)
			unaryLoop(op, want, x)
			check("Unary "+op.String(), got, want)
			got = fresh(x) // in place
			Unary(op, got, got)
			check("in-place Unary "+op.String(), got, want)
		}
		for _, op := range []UnaryOp{Relu, Sigmoid, Tanh, Exp, Sqrt} {
			got, want := make([]float32, n), make([]float32, n)
			UnaryGrad(op, got, pos, y)
			unaryGradLoop(op, want, pos, y)
			check("UnaryGrad "+op.String(), got, want)
			got = fresh(y)
			UnaryGrad(op, got, pos, got)
			check("in-place UnaryGrad "+op.String(), got, want)
		}
		for _, op := range []BinaryOp{Add, Sub, Mul, Div} {
			got, want := make([]float32, n), make([]float32, n)
			Binary(op, got, x, y)
			binaryLoop(op, want, x, y)
			check("Binary "+op.String(), got, want)
			got = fresh(y)
			Binary(op, got, x, got)
			check("in-place b Binary "+op.String(), got, want)
			for _, left := range []bool{false, true} {
				s := float32(r.NormFloat64())
				Binary(op, got, x, y) // garbage
				BinaryScalar(op, got, x, s, left)
				binaryScalarLoop(op, want, x, s, left)
				check(fmt.Sprintf("BinaryScalar %v left=%v", op, left), got, want)
			}
		}
		s := float32(r.NormFloat64())
		got, want := fresh(y), fresh(y)
		Axpy(got, x, s)
		for i := range want {
			want[i] += s * x[i]
		}
		check("Axpy", got, want)
		Scale(got, x, s)
		for i := range want {
			want[i] = s * x[i]
		}
		check("Scale", got, want)
		Fill(got, s)
		for i := range want {
			want[i] = s
		}
		check("Fill", got, want)
	}
}

func TestF32SumRowsAndBinaryRowsMatchGoLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, cols := range []int{1, 7, 8, 10, 17, 64, 100, 128, 200} {
		for _, rows := range []int{1, 3, 32} {
			in := ewRand(r, rows*cols, 2, false)
			b := ewRand(r, cols, 2, false)
			name := fmt.Sprintf("(rows=%d, cols=%d)", rows, cols)
			for _, acc := range []bool{false, true} {
				got, want := ewRand(r, cols, 1, false), make([]float32, cols)
				if acc {
					copy(want, got)
				}
				SumRows(got, in, rows, cols, 0.5, acc)
				for i := range rows {
					for c := range cols {
						want[c] += 0.5 * in[i*cols+c]
					}
				}
				dispCheck(t, fmt.Sprintf("SumRows%s acc=%v", name, acc), got, want)
			}
			for _, op := range []BinaryOp{Add, Sub, Mul, Div} {
				for _, left := range []bool{false, true} {
					got, want := make([]float32, rows*cols), make([]float32, rows*cols)
					BinaryRows(op, got, in, b, rows, cols, left)
					for i := range rows {
						if left {
							binaryLoop(op, want[i*cols:(i+1)*cols], b, in[i*cols:])
						} else {
							binaryLoop(op, want[i*cols:(i+1)*cols], in[i*cols:], b)
						}
					}
					bname := fmt.Sprintf("BinaryRows %v left=%v%s", op, left, name)
					dispCheck(t, bname, got, want)
					copy(got, in)
					BinaryRows(op, got, got, b, rows, cols, left)
					dispCheck(t, "in-place "+bname, got, want)
				}
			}
		}
	}
}

// TestAdamSGDF32MatchGoLoops runs the optimizers for several steps on a
// float32 parameter vector whose length is not a multiple of 8, against
// the Go element loops with the same coefficients.
func TestAdamSGDF32MatchGoLoops(t *testing.T) {
	const n, steps = 109386, 6
	r := rand.New(rand.NewPCG(35, 36))
	for _, wd := range []float32{0, 0.01} {
		opt, ref := NewAdam[float32](n, 1e-3), NewAdam[float32](n, 1e-3)
		opt.WeightDecay, ref.WeightDecay = wd, wd
		p := ewRand(r, n, 1, false)
		q := append([]float32(nil), p...)
		var worst int64
		for step := 1; step <= steps; step++ {
			g := ewRand(r, n, 1, false)
			for i := range g {
				g[i] *= float32(math.Pow(10, float64(r.IntN(7)-4))) // spread magnitudes
			}
			opt.Step(p, g)
			c := ref.nextCoef()
			adamLoop(q, g, ref.M, ref.V, &c)
			name := fmt.Sprintf("Adam wd=%v step %d", wd, step)
			worst = max(worst, dispCheck(t, name+" p", p, q),
				dispCheck(t, name+" m", opt.M, ref.M), dispCheck(t, name+" v", opt.V, ref.V))
		}
		t.Logf("Adam wd=%v: largest difference from the Go loop %d ulp (Go fuses a*b+c: %v)", wd, worst, goFusesF32)
	}
	for _, mom := range []struct {
		mu       float32
		nesterov bool
	}{{0, false}, {0.9, false}, {0.9, true}} {
		for _, wd := range []float32{0, 0.01} {
			opt := NewSGD[float32](n, 0.05, mom.mu, mom.nesterov)
			opt.WeightDecay = wd
			lr, mu := opt.LR, opt.Momentum
			p := ewRand(r, n, 1, false)
			q := append([]float32(nil), p...)
			b := make([]float32, n)
			for step := 1; step <= steps; step++ {
				g := ewRand(r, n, 1, false)
				opt.Step(p, g)
				for i := range q {
					gi := g[i] + wd*q[i]
					if mu == 0 {
						q[i] -= lr * gi
						continue
					}
					b[i] = mu*b[i] + gi
					if -momentFlush < b[i] && b[i] < momentFlush {
						b[i] = 0
					}
					if mom.nesterov {
						q[i] -= lr * (gi + mu*b[i])
					} else {
						q[i] -= lr * b[i]
					}
				}
				name := fmt.Sprintf("SGD mu=%v nesterov=%v wd=%v step %d", mu, mom.nesterov, wd, step)
				dispCheck(t, name+" p", p, q)
				if mu != 0 {
					dispCheck(t, name+" velocity", opt.Velocity, b)
				}
			}
		}
	}
}

func TestF32KernelsZeroAllocs(t *testing.T) {
	const rows, cols = 32, 131
	x := ewRand(rand.New(rand.NewPCG(1, 2)), rows*cols, 1, false)
	y := make([]float32, rows*cols)
	z := make([]float32, rows*cols)
	b := make([]float32, cols)
	adam := NewAdam[float32](len(x), 1e-3)
	adam.WeightDecay = 0.01
	sgd := NewSGD[float32](len(x), 1e-3, 0.9, true)
	kernels := map[string]func(){
		"Adam":         func() { adam.Step(z, x) },
		"SGD":          func() { sgd.Step(z, x) },
		"Unary":        func() { Unary(Relu, z, x) },
		"UnaryGrad":    func() { UnaryGrad(Relu, z, x, y) },
		"Binary":       func() { Binary(Add, z, x, y) },
		"BinaryScalar": func() { BinaryScalar(Div, z, x, 3, true) },
		"BinaryRows":   func() { BinaryRows(Add, z, x, b, rows, cols, false) },
		"SumRows":      func() { SumRows(b, x, rows, cols, 1, true) },
		"Axpy":         func() { Axpy(z, x, 0.5) },
		"Scale":        func() { Scale(z, x, 0.5) },
		"Fill":         func() { Fill(z, 0.5) },
	}
	for name, f := range kernels {
		if a := testing.AllocsPerRun(10, f); a != 0 {
			t.Errorf("%s allocates %v times per call", name, a)
		}
	}
	t.Logf("float32 element-wise kernels on assembly: %v", elementwiseAsmUsed())
}
