package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Shared helpers of the kernel tests (prefixed kt). Every kernel is checked
// against a plain reference loop, for float32 and float64, with its output
// passed as the middle of a buffer whose guard bands hold a NaN with a
// distinctive payload; the guards must survive every call.

var ktSizes = []int{1, 3, 7, 17, 33, 65}

const ktGuard = 8

const (
	ktSentinel32 = 0x7fc0beef
	ktSentinel64 = 0x7ff80000deadbeef
)

// ktEps is the unit roundoff of T.
func ktEps[T Float]() float64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 0x1p-24
	}
	return 0x1p-53
}

func ktSentinel[T Float]() T {
	var z T
	switch any(z).(type) {
	case float32:
		return T(math.Float32frombits(ktSentinel32))
	default:
		return T(math.Float64frombits(ktSentinel64))
	}
}

func ktIsSentinel[T Float](v T) bool {
	switch x := any(v).(type) {
	case float32:
		return math.Float32bits(x) == ktSentinel32
	case float64:
		return math.Float64bits(x) == ktSentinel64
	}
	return false
}

// ktBuf returns a buffer of n+2*ktGuard elements whose guards hold the
// sentinel, and its middle n elements with capacity n, filled with a
// garbage value so that elements a kernel fails to write are noticed.
func ktBuf[T Float](n int) (full, mid []T) {
	full = make([]T, n+2*ktGuard)
	for i := range full {
		full[i] = ktSentinel[T]()
	}
	mid = full[ktGuard : ktGuard+n : ktGuard+n]
	for i := range mid {
		mid[i] = -12345
	}
	return full, mid
}

// ktGuardsOK fails if a guard element of a ktBuf buffer was written.
func ktGuardsOK[T Float](t *testing.T, name string, full []T) {
	t.Helper()
	if i := ktGuardViolation(full); i >= 0 {
		t.Fatalf("%s: guard element %d (output [%d]) overwritten with %v", name, i, i-ktGuard, full[i])
	}
}

// ktGuardViolation returns the index of the first guard element of a ktBuf
// buffer that no longer holds the sentinel, or -1.
func ktGuardViolation[T Float](full []T) int {
	n := len(full) - 2*ktGuard
	for i, v := range full {
		if (i < ktGuard || i >= ktGuard+n) && !ktIsSentinel(v) {
			return i
		}
	}
	return -1
}

// ktRand returns n values uniform in [-scale, scale), with len == cap.
func ktRand[T Float](r *rand.Rand, n int, scale float64) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = T((2*r.Float64() - 1) * scale)
	}
	return s
}

// ktClose fails unless |got-want| <= rtol*(1+|want|) element-wise (NaN
// matches NaN).
func ktClose[T Float](t *testing.T, name string, got []T, want []float64, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(w) && math.IsNaN(g) {
			continue
		}
		if g == w { // includes equal infinities
			continue
		}
		if !(math.Abs(g-w) <= rtol*(1+math.Abs(w))) {
			t.Fatalf("%s: [%d] = %v, want %v", name, i, g, w)
		}
	}
}

func ktF64[T Float](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func ktRun(t *testing.T, f32, f64 func(*testing.T)) {
	t.Run("float32", f32)
	t.Run("float64", f64)
}

// ---- element-wise ----

func ktUnaryRef(op UnaryOp, v float64) float64 {
	switch op {
	case Relu:
		return math.Max(v, 0)
	case Sigmoid:
		return 1 / (1 + math.Exp(-v))
	case Tanh:
		return math.Tanh(v)
	case Exp:
		return math.Exp(v)
	case Log:
		return math.Log(v)
	case Neg:
		return -v
	case Sqrt:
		return math.Sqrt(v)
	}
	panic("op")
}

func ktUnaryGradRef(op UnaryOp, y, dy float64) float64 {
	switch op {
	case Relu:
		if y > 0 {
			return dy
		}
		return 0
	case Sigmoid:
		return dy * y * (1 - y)
	case Tanh:
		return dy * (1 - y*y)
	case Exp:
		return dy * y
	case Sqrt:
		return dy * 0.5 / y
	}
	panic("op")
}

func ktTestUnary[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tol := 4 * ktEps[T]()
	for op := Relu; op <= Sqrt; op++ {
		for _, n := range ktSizes {
			x := ktRand[T](r, n+2, 3) // longer than out: only len(out) is used
			if op == Log || op == Sqrt {
				for i := range x {
					x[i] = T(math.Abs(float64(x[i])) + 0.01)
				}
			}
			want := make([]float64, n)
			for i := range want {
				want[i] = float64(T(ktUnaryRef(op, float64(x[i]))))
			}
			name := fmt.Sprintf("Unary(%v, n=%d)", op, n)
			full, out := ktBuf[T](n)
			Unary(op, out, x)
			ktGuardsOK(t, name, full)
			ktClose(t, name, out, want, tol)

			// In place.
			y := append([]T(nil), x[:n]...)
			Unary(op, y, y)
			ktClose(t, name+" in place", y, want, tol)

			switch op {
			case Log, Neg:
				continue
			}
			dy := ktRand[T](r, n, 2)
			gw := make([]float64, n)
			for i := range gw {
				gw[i] = ktUnaryGradRef(op, float64(out[i]), float64(dy[i]))
			}
			gname := fmt.Sprintf("UnaryGrad(%v, n=%d)", op, n)
			gfull, dx := ktBuf[T](n)
			UnaryGrad(op, dx, out, dy)
			ktGuardsOK(t, gname, gfull)
			ktClose(t, gname, dx, gw, 4*tol)
			UnaryGrad(op, dy, out, dy) // dx aliasing dy
			ktClose(t, gname+" in place", dy, gw, 4*tol)
		}
	}
}

func TestUnary(t *testing.T) { ktRun(t, ktTestUnary[float32], ktTestUnary[float64]) }

func ktTestSigmoidExtremes[T Float](t *testing.T) {
	x := []T{-1e4, -1000, -100, -88, 0, 88, 100, 1000, 1e4, T(math.Inf(1)), T(math.Inf(-1))}
	out := make([]T, len(x))
	Unary(Sigmoid, out, x)
	for i, v := range out {
		if math.IsNaN(float64(v)) || v < 0 || v > 1 {
			t.Fatalf("Sigmoid(%v) = %v", x[i], v)
		}
	}
	if out[0] != 0 || out[len(out)-3] != 1 || out[4] != 0.5 {
		t.Fatalf("Sigmoid saturation: %v", out)
	}
}

func TestSigmoidExtremes(t *testing.T) {
	ktRun(t, ktTestSigmoidExtremes[float32], ktTestSigmoidExtremes[float64])
}

func TestUnaryGradPanicsWithoutOutputForm(t *testing.T) {
	for _, op := range []UnaryOp{Log, Neg, UnaryOp(99)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("UnaryGrad(%v) did not panic", op)
				}
			}()
			UnaryGrad(op, make([]float32, 2), make([]float32, 2), make([]float32, 2))
		}()
	}
}

func TestOpStrings(t *testing.T) {
	if Sigmoid.String() != "Sigmoid" || Sqrt.String() != "Sqrt" || Div.String() != "Div" ||
		UnaryOp(200).String() != "UnaryOp(200)" || BinaryOp(9).String() != "BinaryOp(9)" {
		t.Fatal("op String() mismatch")
	}
}

func ktBinRef(op BinaryOp, a, b float64) float64 {
	switch op {
	case Add:
		return a + b
	case Sub:
		return a - b
	case Mul:
		return a * b
	case Div:
		return a / b
	}
	panic("op")
}

// ktNonZero pushes values away from 0 so Div stays well conditioned.
func ktNonZero[T Float](x []T) []T {
	for i, v := range x {
		if v >= 0 {
			x[i] = v + 0.5
		} else {
			x[i] = v - 0.5
		}
	}
	return x
}

func ktTestBinary[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tol := 2 * ktEps[T]()
	for op := Add; op <= Div; op++ {
		for _, n := range ktSizes {
			a := ktRand[T](r, n+1, 2)
			b := ktNonZero(ktRand[T](r, n+3, 2))
			want := make([]float64, n)
			for i := range want {
				want[i] = float64(T(ktBinRef(op, float64(a[i]), float64(b[i]))))
			}
			name := fmt.Sprintf("Binary(%v, n=%d)", op, n)
			full, out := ktBuf[T](n)
			Binary(op, out, a, b)
			ktGuardsOK(t, name, full)
			ktClose(t, name, out, want, tol)
			ac := append([]T(nil), a[:n]...)
			Binary(op, ac, ac, b)
			ktClose(t, name+" out=a", ac, want, tol)
			bc := append([]T(nil), b[:n]...)
			Binary(op, bc, a, bc)
			ktClose(t, name+" out=b", bc, want, tol)

			s := T(-1.75)
			for _, left := range []bool{false, true} {
				for i := range want {
					if left {
						want[i] = float64(T(ktBinRef(op, float64(s), float64(b[i]))))
					} else {
						want[i] = float64(T(ktBinRef(op, float64(b[i]), float64(s))))
					}
				}
				name := fmt.Sprintf("BinaryScalar(%v, left=%v, n=%d)", op, left, n)
				full, out := ktBuf[T](n)
				BinaryScalar(op, out, b, s, left)
				ktGuardsOK(t, name, full)
				ktClose(t, name, out, want, tol)
			}
		}
		for _, rows := range ktSizes {
			for _, cols := range ktSizes {
				a := ktRand[T](r, rows*cols, 2)
				row := ktNonZero(ktRand[T](r, cols, 2))
				for _, left := range []bool{false, true} {
					want := make([]float64, rows*cols)
					for i := range want {
						x, y := float64(a[i]), float64(row[i%cols])
						if left {
							x, y = y, x
						}
						want[i] = float64(T(ktBinRef(op, x, y)))
					}
					if left && op == Div {
						// a may be near 0; compare only the guard and a sample.
						ktNonZero(a)
						for i := range want {
							want[i] = float64(T(ktBinRef(op, float64(row[i%cols]), float64(a[i]))))
						}
					}
					name := fmt.Sprintf("BinaryRows(%v, left=%v, %dx%d)", op, left, rows, cols)
					full, out := ktBuf[T](rows * cols)
					BinaryRows(op, out, a, row, rows, cols, left)
					ktGuardsOK(t, name, full)
					ktClose(t, name, out, want, tol)
				}
			}
		}
	}
}

func TestBinary(t *testing.T) { ktRun(t, ktTestBinary[float32], ktTestBinary[float64]) }

// ktShape returns a random rank-4 shape (leading 1s) with dims from dims.
func ktShape(r *rand.Rand) [4]int {
	dims := []int{1, 2, 3, 5, 7, 17}
	var s [4]int
	rank := 1 + r.IntN(4)
	for d := range s {
		s[d] = 1
		if d >= 4-rank {
			s[d] = dims[r.IntN(len(dims))]
		}
	}
	return s
}

// ktOperand returns strides of an operand broadcast over shape: each
// dimension is broadcast (stride 0) with probability 1/3, and the operand
// is stored with its last two dimensions swapped when swap is set. size is
// the operand's element count.
func ktOperand(r *rand.Rand, shape [4]int, swap bool) (stride [4]int, size int) {
	var own [4]int
	for d := range own {
		own[d] = shape[d]
		if r.IntN(3) == 0 {
			own[d] = 1
		}
	}
	order := []int{0, 1, 2, 3}
	if swap {
		order = []int{0, 1, 3, 2}
	}
	size = 1
	for q := 3; q >= 0; q-- {
		d := order[q]
		if own[d] != 1 {
			stride[d] = size
		}
		size *= own[d]
	}
	return stride, size
}

// ktEach calls f for every index of shape in row-major order with the
// linear index and the dot products of the index with s1 and s2.
func ktEach(shape, s1, s2 [4]int, f func(lin, o1, o2 int)) {
	lin := 0
	for i0 := 0; i0 < shape[0]; i0++ {
		for i1 := 0; i1 < shape[1]; i1++ {
			for i2 := 0; i2 < shape[2]; i2++ {
				for i3 := 0; i3 < shape[3]; i3++ {
					o1 := i0*s1[0] + i1*s1[1] + i2*s1[2] + i3*s1[3]
					o2 := i0*s2[0] + i1*s2[1] + i2*s2[2] + i3*s2[3]
					f(lin, o1, o2)
					lin++
				}
			}
		}
	}
}

func ktTestBinaryStrided[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tol := 2 * ktEps[T]()
	for it := 0; it < 400; it++ {
		op := BinaryOp(it % 4)
		shape := ktShape(r)
		as, an := ktOperand(r, shape, r.IntN(4) == 0)
		bs, bn := ktOperand(r, shape, r.IntN(4) == 0)
		a := ktRand[T](r, an, 2)
		b := ktNonZero(ktRand[T](r, bn, 2))
		n := shape[0] * shape[1] * shape[2] * shape[3]
		want := make([]float64, n)
		ktEach(shape, as, bs, func(lin, ao, bo int) {
			want[lin] = float64(T(ktBinRef(op, float64(a[ao]), float64(b[bo]))))
		})
		name := fmt.Sprintf("BinaryStrided(%v, shape %v, a %v, b %v)", op, shape, as, bs)
		full, out := ktBuf[T](n)
		BinaryStrided(op, out, a, b, shape, as, bs)
		ktGuardsOK(t, name, full)
		ktClose(t, name, out, want, tol)
	}
}

func TestBinaryStrided(t *testing.T) {
	ktRun(t, ktTestBinaryStrided[float32], ktTestBinaryStrided[float64])
}

func ktTestFillScaleAxpy[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	tol := 2 * ktEps[T]()
	for _, n := range ktSizes {
		for _, v := range []T{0, 2.5} {
			full, out := ktBuf[T](n)
			Fill(out, v)
			ktGuardsOK(t, "Fill", full)
			for i, g := range out {
				if g != v {
					t.Fatalf("Fill(%v): [%d] = %v", v, i, g)
				}
			}
		}
		x := ktRand[T](r, n+2, 2)
		s := T(-0.375)
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(s * x[i])
		}
		full, out := ktBuf[T](n)
		Scale(out, x, s)
		ktGuardsOK(t, "Scale", full)
		ktClose(t, fmt.Sprintf("Scale(n=%d)", n), out, want, 0)

		y0 := ktRand[T](r, n, 2)
		for i := range want {
			want[i] = float64(y0[i] + s*x[i])
		}
		full, y := ktBuf[T](n)
		copy(y, y0)
		Axpy(y, x, s)
		ktGuardsOK(t, "Axpy", full)
		ktClose(t, fmt.Sprintf("Axpy(n=%d)", n), y, want, tol)
	}
}

func TestFillScaleAxpy(t *testing.T) {
	ktRun(t, ktTestFillScaleAxpy[float32], ktTestFillScaleAxpy[float64])
}

// ---- reductions ----

func ktTestReduceSum[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for it := 0; it < 400; it++ {
		shape := ktShape(r)
		// Reduce each dimension with probability 1/2; out is compact over
		// the kept ones.
		var outStride [4]int
		ext := 1
		for d := 3; d >= 0; d-- {
			if r.IntN(2) == 0 && shape[d] > 1 {
				continue
			}
			outStride[d] = ext
			ext *= shape[d]
		}
		n := shape[0] * shape[1] * shape[2] * shape[3]
		in := ktRand[T](r, n, 1)
		scale := T(0.5)
		for _, acc := range []bool{false, true} {
			full, out := ktBuf[T](ext)
			init := ktRand[T](r, ext, 1)
			copy(out, init)
			want := make([]float64, ext)
			if acc {
				copy(want, ktF64(init))
			}
			ktEach(shape, outStride, outStride, func(lin, o, _ int) {
				want[o] += float64(scale) * float64(in[lin])
			})
			name := fmt.Sprintf("ReduceSum(shape %v, outStride %v, acc %v)", shape, outStride, acc)
			ReduceSum(out, in, shape, outStride, scale, acc)
			ktGuardsOK(t, name, full)
			ktClose(t, name, out, want, float64(n/ext+2)*4*ktEps[T]())
		}
	}
}

func TestReduceSum(t *testing.T) { ktRun(t, ktTestReduceSum[float32], ktTestReduceSum[float64]) }

func ktTestSumRows[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, rows := range ktSizes {
		for _, cols := range ktSizes {
			in := ktRand[T](r, rows*cols, 1)
			for _, acc := range []bool{false, true} {
				full, out := ktBuf[T](cols)
				init := ktRand[T](r, cols, 1)
				copy(out, init)
				want := make([]float64, cols)
				for c := range want {
					if acc {
						want[c] = float64(init[c])
					}
					for q := 0; q < rows; q++ {
						want[c] += -2 * float64(in[q*cols+c])
					}
				}
				name := fmt.Sprintf("SumRows(%dx%d, acc %v)", rows, cols, acc)
				SumRows(out, in, rows, cols, -2, acc)
				ktGuardsOK(t, name, full)
				ktClose(t, name, out, want, float64(rows+2)*4*ktEps[T]())
			}
		}
	}
}

func TestSumRows(t *testing.T) { ktRun(t, ktTestSumRows[float32], ktTestSumRows[float64]) }

func ktTestSumAll[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range append([]int{0, 127, 128, 129, 1000, 4097}, ktSizes...) {
		x := ktRand[T](r, n, 1)
		var want float64
		for _, v := range x {
			want += float64(v)
		}
		got := SumAll(x)
		if math.Abs(float64(got)-want) > 64*ktEps[T]()*float64(n+1) {
			t.Fatalf("SumAll(n=%d) = %v, want %v", n, got, want)
		}
	}
	// Accuracy: a million copies of 0.1, where a running float32 sum
	// drifts by about 1%.
	x := make([]T, 1_000_000)
	Fill(x, 0.1)
	want := float64(len(x)) * float64(T(0.1))
	if got := float64(SumAll(x)); math.Abs(got-want)/want > 1e-5 {
		t.Fatalf("SumAll of 1e6 × 0.1 = %v, want %v", got, want)
	}
}

func TestSumAll(t *testing.T) { ktRun(t, ktTestSumAll[float32], ktTestSumAll[float64]) }

func ktTestBroadcastTo[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for it := 0; it < 400; it++ {
		shape := ktShape(r)
		is, in_n := ktOperand(r, shape, r.IntN(4) == 0)
		in := ktRand[T](r, in_n, 2)
		n := shape[0] * shape[1] * shape[2] * shape[3]
		scale := T(1.5)
		for _, acc := range []bool{false, true} {
			full, out := ktBuf[T](n)
			init := ktRand[T](r, n, 1)
			copy(out, init)
			want := make([]float64, n)
			ktEach(shape, is, is, func(lin, o, _ int) {
				v := float64(scale * in[o])
				if acc {
					v = float64(init[lin] + scale*in[o])
				}
				want[lin] = v
			})
			name := fmt.Sprintf("BroadcastTo(shape %v, inStride %v, acc %v)", shape, is, acc)
			BroadcastTo(out, in, shape, is, scale, acc)
			ktGuardsOK(t, name, full)
			ktClose(t, name, out, want, 2*ktEps[T]())
		}
	}
}

func TestBroadcastTo(t *testing.T) { ktRun(t, ktTestBroadcastTo[float32], ktTestBroadcastTo[float64]) }

func ktTestTranspose[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, rows := range append(ktSizes, 32, 64, 100) {
		for _, cols := range append(ktSizes, 32, 64, 100) {
			in := ktRand[T](r, rows*cols, 1)
			want := make([]float64, rows*cols)
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					want[j*rows+i] = float64(in[i*cols+j])
				}
			}
			name := fmt.Sprintf("Transpose(%dx%d)", rows, cols)
			full, out := ktBuf[T](rows * cols)
			Transpose(out, in, rows, cols)
			ktGuardsOK(t, name, full)
			ktClose(t, name, out, want, 0)
		}
	}
}

func TestTranspose(t *testing.T) { ktRun(t, ktTestTranspose[float32], ktTestTranspose[float64]) }

// ---- softmax family ----

func ktSoftmaxRef(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	var s float64
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func ktTestSoftmax[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	tol := 8 * ktEps[T]()
	for _, rows := range ktSizes {
		for _, cols := range ktSizes {
			n := rows * cols
			x := ktRand[T](r, n, 5)
			dy := ktRand[T](r, n, 1)
			sm := make([]float64, n)
			lsm := make([]float64, n)
			for q := 0; q < rows; q++ {
				p := ktSoftmaxRef(ktF64(x[q*cols : q*cols+cols]))
				copy(sm[q*cols:], p)
				for c, v := range p {
					lsm[q*cols+c] = math.Log(v)
				}
			}
			tag := fmt.Sprintf("(%dx%d)", rows, cols)

			full, y := ktBuf[T](n)
			Softmax(y, x, rows, cols)
			ktGuardsOK(t, "Softmax"+tag, full)
			ktClose(t, "Softmax"+tag, y, sm, tol)
			xc := append([]T(nil), x...)
			Softmax(xc, xc, rows, cols)
			ktClose(t, "Softmax in place"+tag, xc, sm, tol)

			full, ly := ktBuf[T](n)
			LogSoftmax(ly, x, rows, cols)
			ktGuardsOK(t, "LogSoftmax"+tag, full)
			ktClose(t, "LogSoftmax"+tag, ly, lsm, 4*tol)
			xc = append(xc[:0], x...)
			LogSoftmax(xc, xc, rows, cols)
			ktClose(t, "LogSoftmax in place"+tag, xc, lsm, 4*tol)

			// Gradients from the kernels' own forward outputs.
			gw := make([]float64, n)
			lgw := make([]float64, n)
			for q := 0; q < rows; q++ {
				var dot, sum float64
				for c := 0; c < cols; c++ {
					i := q*cols + c
					dot += float64(dy[i]) * float64(y[i])
					sum += float64(dy[i])
				}
				for c := 0; c < cols; c++ {
					i := q*cols + c
					gw[i] = float64(y[i]) * (float64(dy[i]) - dot)
					lgw[i] = float64(dy[i]) - math.Exp(float64(ly[i]))*sum
				}
			}
			full, dx := ktBuf[T](n)
			SoftmaxGrad(dx, y, dy, rows, cols)
			ktGuardsOK(t, "SoftmaxGrad"+tag, full)
			ktClose(t, "SoftmaxGrad"+tag, dx, gw, float64(cols)*tol)
			dyc := append([]T(nil), dy...)
			SoftmaxGrad(dyc, y, dyc, rows, cols)
			ktClose(t, "SoftmaxGrad in place"+tag, dyc, gw, float64(cols)*tol)

			full, dx = ktBuf[T](n)
			LogSoftmaxGrad(dx, ly, dy, rows, cols)
			ktGuardsOK(t, "LogSoftmaxGrad"+tag, full)
			ktClose(t, "LogSoftmaxGrad"+tag, dx, lgw, float64(cols)*tol)
			dyc = append(dyc[:0], dy...)
			LogSoftmaxGrad(dyc, ly, dyc, rows, cols)
			ktClose(t, "LogSoftmaxGrad in place"+tag, dyc, lgw, float64(cols)*tol)
		}
	}
}

func TestSoftmax(t *testing.T) { ktRun(t, ktTestSoftmax[float32], ktTestSoftmax[float64]) }

func ktTestSoftmaxCrossEntropy[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	tol := 16 * ktEps[T]()
	for _, rows := range ktSizes {
		for _, cols := range ktSizes {
			n := rows * cols
			x := ktRand[T](r, n, 5)
			labels := make([]int32, rows)
			for i := range labels {
				labels[i] = int32(r.IntN(cols))
			}
			var loss float64
			gw := make([]float64, n)
			scale := T(0.7) / T(rows)
			for q := 0; q < rows; q++ {
				p := ktSoftmaxRef(ktF64(x[q*cols : q*cols+cols]))
				loss -= math.Log(p[labels[q]])
				for c, v := range p {
					if c == int(labels[q]) {
						v--
					}
					gw[q*cols+c] = float64(scale) * v
				}
			}
			loss /= float64(rows)
			tag := fmt.Sprintf("(%dx%d)", rows, cols)
			got := SoftmaxCrossEntropy(x, labels, rows, cols)
			if math.Abs(float64(got)-loss) > tol*(1+loss) {
				t.Fatalf("SoftmaxCrossEntropy%s = %v, want %v", tag, got, loss)
			}
			full, dx := ktBuf[T](n)
			SoftmaxCrossEntropyGrad(dx, x, labels, rows, cols, scale)
			ktGuardsOK(t, "SoftmaxCrossEntropyGrad"+tag, full)
			ktClose(t, "SoftmaxCrossEntropyGrad"+tag, dx, gw, tol)
			xc := append([]T(nil), x...)
			SoftmaxCrossEntropyGrad(xc, xc, labels, rows, cols, scale)
			ktClose(t, "SoftmaxCrossEntropyGrad in place"+tag, xc, gw, tol)
		}
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	ktRun(t, ktTestSoftmaxCrossEntropy[float32], ktTestSoftmaxCrossEntropy[float64])
}

func ktTestSoftmaxHugeLogits[T Float](t *testing.T) {
	// Logits of ±1e4: exp overflows without the max shift.
	const rows, cols = 3, 4
	x := []T{
		1e4, -1e4, 0, 1e4,
		-1e4, -1e4, -1e4, -1e4,
		1e4, 9990, -1e4, 0,
	}
	labels := []int32{1, 2, 1}
	loss := SoftmaxCrossEntropy(x, labels, rows, cols)
	// Row losses: 2e4+log 2, log 4, 10+log(1+e^-10).
	want := (2e4 + math.Ln2 + math.Log(4) + 10 + math.Log1p(math.Exp(-10))) / 3
	if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) || math.Abs(float64(loss)-want) > 1e-3*want {
		t.Fatalf("SoftmaxCrossEntropy with huge logits = %v, want %v", loss, want)
	}
	g := make([]T, rows*cols)
	SoftmaxCrossEntropyGrad(g, x, labels, rows, cols, 1)
	outs := [][]T{make([]T, rows*cols), make([]T, rows*cols), make([]T, rows*cols)}
	Softmax(outs[0], x, rows, cols)
	LogSoftmax(outs[1], x, rows, cols)
	LogSoftmaxGrad(outs[2], outs[1], g, rows, cols)
	for q := 0; q < rows; q++ {
		var s float64
		for c := 0; c < cols; c++ {
			s += float64(g[q*cols+c])
		}
		if math.Abs(s) > 1e-5 {
			t.Fatalf("row %d of the CE gradient sums to %v, want 0", q, s)
		}
	}
	for _, s := range append(outs, g) {
		for i, v := range s {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 1) {
				t.Fatalf("non-finite value %v at %d with huge logits", v, i)
			}
		}
	}
	if outs[0][0] != 0.5 || math.Abs(float64(outs[1][4])+math.Log(4)) > 1e-6 {
		t.Fatalf("Softmax/LogSoftmax with huge logits: %v %v", outs[0][:4], outs[1][4:8])
	}
}

func TestSoftmaxHugeLogits(t *testing.T) {
	ktRun(t, ktTestSoftmaxHugeLogits[float32], ktTestSoftmaxHugeLogits[float64])
}

func TestCheckLabels(t *testing.T) {
	cases := []struct {
		labels  []int32
		classes int
		want    int
	}{
		{nil, 3, -1},
		{[]int32{0, 1, 2}, 3, -1},
		{[]int32{0, 3, 2}, 3, 1},
		{[]int32{0, 1, -1}, 3, 2},
		{[]int32{5}, 0, 0},
	}
	for _, c := range cases {
		if got := CheckLabels(c.labels, c.classes); got != c.want {
			t.Errorf("CheckLabels(%v, %d) = %d, want %d", c.labels, c.classes, got, c.want)
		}
	}
}

func ktTestArgmax[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, rows := range ktSizes {
		for _, cols := range ktSizes {
			x := ktRand[T](r, rows*cols, 1)
			if cols > 2 {
				x[cols-1] = x[1] // a tie: the lower index must win if it is the max
			}
			out := make([]int32, rows+2)
			out[rows], out[rows+1] = -7, -7
			Argmax(out[:rows:rows], x, rows, cols)
			for q := 0; q < rows; q++ {
				bi := 0
				for c := 1; c < cols; c++ {
					if x[q*cols+c] > x[q*cols+bi] {
						bi = c
					}
				}
				if out[q] != int32(bi) {
					t.Fatalf("Argmax(%dx%d) row %d = %d, want %d", rows, cols, q, out[q], bi)
				}
			}
			if out[rows] != -7 || out[rows+1] != -7 {
				t.Fatalf("Argmax wrote past its rows")
			}
		}
	}
}

func TestArgmax(t *testing.T) { ktRun(t, ktTestArgmax[float32], ktTestArgmax[float64]) }

// ---- allocations ----

func TestKernelsZeroAllocs(t *testing.T) {
	const rows, cols = 32, 10
	x := make([]float32, rows*cols)
	y := make([]float32, rows*cols)
	z := make([]float32, rows*cols)
	b := make([]float32, cols)
	labels := make([]int32, rows)
	am := make([]int32, rows)
	shape := [4]int{1, 2, rows / 2, cols}
	for i := range x {
		x[i] = float32(i%7) - 3
		y[i] = 1
	}
	kernels := map[string]func(){
		"Unary":       func() { Unary(Sigmoid, z, x) },
		"UnaryGrad":   func() { UnaryGrad(Tanh, z, y, x) },
		"Binary":      func() { Binary(Mul, z, x, y) },
		"BinaryRows":  func() { BinaryRows(Add, z, x, b, rows, cols, false) },
		"Strided":     func() { BinaryStrided(Sub, z, x, b, shape, [4]int{0, rows / 2 * cols, cols, 1}, [4]int{0, 0, 0, 1}) },
		"ReduceSum":   func() { ReduceSum(b, x, shape, [4]int{0, 0, 0, 1}, 1, false) },
		"SumRows":     func() { SumRows(b, x, rows, cols, 1, true) },
		"SumAll":      func() { _ = SumAll(x) },
		"BroadcastTo": func() { BroadcastTo(z, b, shape, [4]int{0, 0, 0, 1}, 1, true) },
		"Transpose":   func() { Transpose(z, x, rows, cols) },
		"Softmax":     func() { Softmax(z, x, rows, cols) },
		"LogSoftmax":  func() { LogSoftmax(z, x, rows, cols) },
		"SoftmaxGrad": func() { SoftmaxGrad(z, y, x, rows, cols) },
		"CE":          func() { _ = SoftmaxCrossEntropy(x, labels, rows, cols) },
		"CEGrad":      func() { SoftmaxCrossEntropyGrad(z, x, labels, rows, cols, 1.0/rows) },
		"Argmax":      func() { Argmax(am, x, rows, cols) },
	}
	for name, f := range kernels {
		if a := testing.AllocsPerRun(10, f); a != 0 {
			t.Errorf("%s allocates %v times per call", name, a)
		}
	}
}

// TestGuardHelpers checks that the guard bands notice writes on either
// side, so the guard assertions above are not vacuous.
func TestGuardHelpers(t *testing.T) {
	full, mid := ktBuf[float32](5)
	if cap(mid) != 5 || len(mid) != 5 {
		t.Fatal("ktBuf middle must have len == cap")
	}
	if ktGuardViolation(full) != -1 {
		t.Fatal("fresh buffer reports a guard violation")
	}
	for _, i := range []int{0, ktGuard - 1, ktGuard + 5, len(full) - 1} {
		old := full[i]
		full[i] = float32(math.NaN()) // an ordinary NaN is not the sentinel
		if got := ktGuardViolation(full); got != i {
			t.Errorf("overwriting guard element %d: violation reported at %d", i, got)
		}
		full[i] = old
	}
}

// TestShortSlicesPanic passes operands whose length is too short but whose
// capacity is not: kernels must panic instead of using the spare capacity.
func TestShortSlicesPanic(t *testing.T) {
	short := func() []float32 { return make([]float32, 64)[:5] } // need 6+
	ok := func() []float32 { return make([]float32, 64) }
	shape := [4]int{1, 1, 2, 3}
	cases := map[string]func(){
		"Gemm c":          func() { Gemm(false, false, 2, 3, 2, ok(), ok(), short(), false) },
		"Gemm a":          func() { Gemm(true, false, 3, 2, 2, short(), ok(), ok(), false) },
		"Unary x":         func() { Unary(Exp, ok()[:6], short()) },
		"UnaryGrad dy":    func() { UnaryGrad(Exp, ok()[:6], ok(), short()) },
		"Binary b":        func() { Binary(Add, ok()[:6], ok(), short()) },
		"BinaryScalar a":  func() { BinaryScalar(Add, ok()[:6], short(), 1, false) },
		"BinaryRows out":  func() { BinaryRows(Add, short(), ok(), ok(), 2, 3, false) },
		"BinaryStrided a": func() { BinaryStrided(Add, ok(), short(), ok(), shape, [4]int{0, 0, 3, 1}, [4]int{0, 0, 3, 1}) },
		"Scale x":         func() { Scale(ok()[:6], short(), 2) },
		"Axpy x":          func() { Axpy(ok()[:6], short(), 2) },
		"ReduceSum in":    func() { ReduceSum(ok(), short(), shape, [4]int{}, 1, false) },
		"SumRows in":      func() { SumRows(ok(), short(), 2, 3, 1, false) },
		"BroadcastTo in":  func() { BroadcastTo(ok(), short(), shape, [4]int{0, 0, 3, 1}, 1, false) },
		"Transpose out":   func() { Transpose(short(), ok(), 2, 3) },
		"Softmax out":     func() { Softmax(short(), ok(), 2, 3) },
		"LogSoftmax x":    func() { LogSoftmax(ok(), short(), 2, 3) },
		"SoftmaxGrad y":   func() { SoftmaxGrad(ok(), short(), ok(), 2, 3) },
		"CE logits":       func() { SoftmaxCrossEntropy(short(), []int32{0, 0}, 2, 3) },
		"CEGrad dlogits":  func() { SoftmaxCrossEntropyGrad(short(), ok(), []int32{0, 0}, 2, 3, 1) },
		"Argmax x":        func() { Argmax(make([]int32, 2), short(), 2, 3) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic on a short slice with spare capacity", name)
				}
			}()
			f()
		}()
	}
}

// TestGelu: both GELUs at known values (PyTorch's nn.GELU() and
// approximate="tanh" at 1 and -2), their gradients against central finite
// differences in float64, float32 close to float64, and no NaN at the
// extremes.
func TestGelu(t *testing.T) {
	for _, tc := range []struct {
		op   UnaryOp
		x    float64
		want float64
	}{
		{GeluErf, 1, 0.8413447460685429}, {GeluErf, -2, -0.04550026389635842},
		{Gelu, 1, 0.8411919906082768}, {Gelu, -2, -0.04540230591222},
	} {
		out := []float64{0}
		Unary(tc.op, out, []float64{tc.x})
		if math.Abs(out[0]-tc.want) > 1e-12 {
			t.Errorf("%v(%v) = %.16g, want %.16g", tc.op, tc.x, out[0], tc.want)
		}
	}
	xs := []float64{-1e30, -60, -8, -3, -1.5, -0.7, -1e-3, 0, 1e-3, 0.3, 1, 2.5, 6, 60, 1e30}
	for v := -6.0; v <= 6; v += 0.37 {
		xs = append(xs, v)
	}
	for _, op := range []UnaryOp{Gelu, GeluErf} {
		ones := make([]float64, len(xs))
		for i := range ones {
			ones[i] = 1
		}
		y, dx := make([]float64, len(xs)), make([]float64, len(xs))
		Unary(op, y, xs)
		UnaryGrad(op, dx, xs, ones)
		for i, x := range xs {
			if math.IsNaN(y[i]) || math.IsNaN(dx[i]) {
				t.Errorf("%v at %v: %v, gradient %v", op, x, y[i], dx[i])
			}
			if math.Abs(x) > 10 {
				continue
			}
			const h = 1e-6
			f := []float64{0, 0}
			Unary(op, f, []float64{x + h, x - h})
			fd := (f[0] - f[1]) / (2 * h)
			if math.Abs(fd-dx[i]) > 1e-7 {
				t.Errorf("%v'(%v) = %v, finite differences %v", op, x, dx[i], fd)
			}
		}
		x32, y32, d32, one32 := make([]float32, len(xs)), make([]float32, len(xs)), make([]float32, len(xs)), make([]float32, len(xs))
		for i, x := range xs {
			x32[i], one32[i] = float32(x), 1
		}
		Unary(op, y32, x32)
		UnaryGrad(op, d32, x32, one32)
		for i := range xs {
			yw, dw := make([]float64, 1), make([]float64, 1)
			Unary(op, yw, []float64{float64(x32[i])})
			UnaryGrad(op, dw, []float64{float64(x32[i])}, []float64{1})
			// float32 runs its tanh on the vector kernel (≤ 1 ulp) and the
			// rest in float32: a few ulp of the float64 result, and of
			// 1 for the gradient (1 - tanh² cancels).
			if math.Abs(float64(y32[i])-yw[0]) > 1e-6*(1+math.Abs(yw[0])) || math.Abs(float64(d32[i])-dw[0]) > 4e-6 {
				t.Errorf("float32 %v at %v: %v, %v; float64 %v, %v", op, x32[i], y32[i], d32[i], yw[0], dw[0])
			}
		}
	}
}
