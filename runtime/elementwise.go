package runtime

import (
	"math"
	"strconv"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Element-wise kernels. Each one switches on its operator once and then
// runs a dedicated loop, so the loops carry no per-element dispatch, and
// reslices its inputs to the output length up front so the loops carry no
// bounds checks. Transcendental functions go through float64 (math has no
// float32 versions); the conversions are exact for float32 inputs.
//
// On amd64 the float32 loops without transcendental functions first run
// on assembly (elementwise_amd64.go) for the whole vectors of 8 elements,
// with bit-identical results; the Go loops below do the rest. So do
// float32 Exp, Sigmoid and Tanh where the CPU has AVX2 and FMA, on
// vectorized functions accurate to 1, 2 and 1 ulp of the float64 ones
// (internal/asmgen/activation.go), instead of going through float64, and
// float32 Gelu and its gradient, on fused kernels that compute what the
// chunked Go loops compute on the same CPU, bit for bit, in one pass.

// UnaryOp names an element-wise function of one tensor.
type UnaryOp = spec.UnaryOp

// Unary operators (spec's, which the generator names by their String).
const (
	Relu    = spec.Relu
	Sigmoid = spec.Sigmoid
	Tanh    = spec.Tanh
	Exp     = spec.Exp
	Log     = spec.Log
	Neg     = spec.Neg
	Sqrt    = spec.Sqrt
	Linear  = spec.Linear
	Gelu    = spec.Gelu
	GeluErf = spec.GeluErf
)

// Unary computes
//
//	for i := range out: out[i] = op(x[i])
//
// with Relu(v) = max(v, 0) (NaN stays NaN), Sigmoid(v) = 1/(1+e^-v),
// Tanh, Exp, Log, Neg(v) = -v, Sqrt, Gelu(v) = v/2·(1 + tanh(√(2/π)(v +
// 0.044715v³))) (GPT-2's and PyTorch's approximate="tanh", computed as
// v·σ(2√(2/π)(v + 0.044715v³))) and GeluErf(v)
// = v/2·(1 + erf(v/√2)) (PyTorch's nn.GELU()). len(x) must be at least len(out);
// out may alias x. Sigmoid saturates to exactly 0 or 1 for large |v|
// instead of producing NaN. float64 and, without the amd64 kernels,
// float32 compute Sigmoid, Tanh and Exp in float64 through math. Unary
// panics on an unknown op.
func Unary[T Float](op UnaryOp, out, x []T) {
	x = fit(x, len(out), "Unary", "x")
	k := unaryAsm(op, out, x)
	unaryLoop(op, out[k:], x[k:])
}

// unaryLoop is the Go loop of Unary; len(x) ≥ len(out).
func unaryLoop[T Float](op UnaryOp, out, x []T) {
	x = x[:len(out)]
	switch op {
	case Relu:
		for i, v := range x {
			if v < 0 {
				v = 0
			}
			out[i] = v
		}
	case Sigmoid:
		for i, v := range x {
			// e^-v overflows to +Inf for v < -709, giving 1/Inf = 0.
			out[i] = T(1 / (1 + math.Exp(-float64(v))))
		}
	case Tanh:
		for i, v := range x {
			out[i] = T(math.Tanh(float64(v)))
		}
	case Exp:
		for i, v := range x {
			out[i] = T(math.Exp(float64(v)))
		}
	case Log:
		for i, v := range x {
			out[i] = T(math.Log(float64(v)))
		}
	case Neg:
		for i, v := range x {
			out[i] = -v
		}
	case Sqrt:
		for i, v := range x {
			out[i] = T(math.Sqrt(float64(v)))
		}
	case Linear:
		copy(out, x)
	case Gelu:
		geluTanhLoop(out, x)
	case GeluErf:
		for i, v := range x {
			out[i] = T(geluErf(float64(v)))
		}
	default:
		panic("runtime.Unary: unknown op " + op.String())
	}
}

// UnaryGrad computes the input gradient of Unary from its output y:
//
//	for i := range dx: dx[i] = dy[i] * op'(x[i])
//
// where op' is expressed through y = op(x):
// Relu: y > 0 ? dy : 0; Sigmoid: dy*y*(1-y); Tanh: dy*(1-y*y); Exp: dy*y;
// Sqrt: dy*0.5/y. Gelu and GeluErf are not functions of their output: for
// them y is the input x. y and dy must be at least len(dx) long; dx may alias
// either. Log and Neg have no such form (generated code differentiates
// them with Binary and Scale), so UnaryGrad panics for them: calling it so
// is a generator bug.
func UnaryGrad[T Float](op UnaryOp, dx, y, dy []T) {
	y = fit(y, len(dx), "UnaryGrad", "y")
	dy = fit(dy, len(dx), "UnaryGrad", "dy")
	k := unaryGradAsm(op, dx, y, dy)
	unaryGradLoop(op, dx[k:], y[k:], dy[k:])
}

// unaryGradLoop is the Go loop of UnaryGrad; y and dy are at least
// len(dx) long.
func unaryGradLoop[T Float](op UnaryOp, dx, y, dy []T) {
	y = y[:len(dx)]
	dy = dy[:len(dx)]
	switch op {
	case Relu:
		for i, v := range y {
			g := dy[i]
			if !(v > 0) {
				g = 0
			}
			dx[i] = g
		}
	case Sigmoid:
		for i, v := range y {
			dx[i] = dy[i] * v * (1 - v)
		}
	case Tanh:
		for i, v := range y {
			dx[i] = dy[i] * (1 - v*v)
		}
	case Exp:
		for i, v := range y {
			dx[i] = dy[i] * v
		}
	case Sqrt:
		for i, v := range y {
			dx[i] = dy[i] * 0.5 / v
		}
	case Linear:
		copy(dx, dy)
	case Gelu: // y is x
		geluTanhGradLoop(dx, y, dy)
	case GeluErf: // y is x
		for i, v := range y {
			dx[i] = T(float64(dy[i]) * geluErfGrad(float64(v)))
		}
	default:
		panic("runtime.UnaryGrad: no gradient from output for op " + op.String())
	}
}

// geluC is √(2/π), the tanh approximation's scale, and gelu2C twice it.
const (
	geluC  = 0.7978845608028654
	gelu2C = 2 * geluC
)

// geluChunk is the number of elements the GELU loops take at a time: their
// sigmoid runs as Unary's vectorized Sigmoid over a chunk on the stack. (On
// amd64 with AVX2 and FMA, float32 GELU runs on f32Gelu and f32GeluGrad
// instead, which compute the same thing in one pass; these loops do the
// last len%8 elements there.)
const geluChunk = 256

// geluSigmoidOf writes s = σ(2u) into s for each v of x, u = √(2/π)(v +
// 0.044715v³), with Unary's Sigmoid (the vector kernel for float32 where
// the CPU has one). GELU's tanh approximation v/2·(1 + tanh u) is v·σ(2u)
// (1 + tanh u = 2σ(2u)): one exponential and one division, where tanh
// needed both and a polynomial for small |u|, and no cancellation near
// u = 0. σ saturates to 0 or 1 for large |u|, so GELU is -0 or v there.
func geluSigmoidOf[T Float](s, x []T) {
	x = x[:len(s)]
	for i, xi := range x {
		s[i] = gelu2C * (xi + 0.044715*xi*xi*xi)
	}
	Unary(Sigmoid, s, s)
}

// geluTanhLoop computes out = GELU(x) (the tanh approximation) = x·σ(2u)
// in T's arithmetic, a chunk at a time. out may alias x.
func geluTanhLoop[T Float](out, x []T) {
	var u [geluChunk]T
	for lo := 0; lo < len(out); lo += geluChunk {
		o := out[lo:min(lo+geluChunk, len(out))]
		v := x[lo:][:len(o)]
		sg := u[:len(o)]
		geluSigmoidOf(sg, v)
		for i, xi := range v {
			o[i] = xi * sg[i]
		}
	}
}

// geluTanhGradLoop computes dx = dy·GELU'(x) = dy·(s + x·s(1 - s)·2√(2/π)(1 +
// 3·0.044715v²)), s = σ(2u), the same way; dx may alias x or dy.
func geluTanhGradLoop[T Float](dx, x, dy []T) {
	var u [geluChunk]T
	for lo := 0; lo < len(dx); lo += geluChunk {
		d := dx[lo:min(lo+geluChunk, len(dx))]
		v := x[lo:][:len(d)]
		g := dy[lo:][:len(d)]
		sg := u[:len(d)]
		geluSigmoidOf(sg, v)
		for i, xi := range v {
			si := sg[i]
			d[i] = g[i] * (si + xi*si*(1-si)*gelu2C*(1+3*0.044715*xi*xi))
		}
	}
}

// geluErf is the exact GELU, v·Φ(v) = v/2·(1 + erf(v/√2)).
func geluErf(v float64) float64 { return 0.5 * v * (1 + math.Erf(v/math.Sqrt2)) }

// geluErfGrad is Φ(v) + v·φ(v), φ the standard normal density.
func geluErfGrad(v float64) float64 {
	return 0.5*(1+math.Erf(v/math.Sqrt2)) + v*math.Exp(-0.5*v*v)/math.Sqrt(2*math.Pi)
}

// BinaryOp names an element-wise function of two tensors.
type BinaryOp = spec.BinaryOp

// Binary operators (spec's).
const (
	Add = spec.Add
	Sub = spec.Sub
	Mul = spec.Mul
	Div = spec.Div
)

// Binary computes
//
//	for i := range out: out[i] = a[i] op b[i]
//
// a and b must be at least len(out) long; out may alias a or b. It panics
// on an unknown op.
func Binary[T Float](op BinaryOp, out, a, b []T) {
	a = fit(a, len(out), "Binary", "a")
	b = fit(b, len(out), "Binary", "b")
	k := binaryAsm(op, out, a, b)
	binaryLoop(op, out[k:], a[k:], b[k:])
}

// binaryLoop is the Go loop of Binary; a and b are at least len(out) long.
func binaryLoop[T Float](op BinaryOp, out, a, b []T) {
	a = a[:len(out)]
	b = b[:len(out)]
	switch op {
	case Add:
		for i, v := range a {
			out[i] = v + b[i]
		}
	case Sub:
		for i, v := range a {
			out[i] = v - b[i]
		}
	case Mul:
		for i, v := range a {
			out[i] = v * b[i]
		}
	case Div:
		for i, v := range a {
			out[i] = v / b[i]
		}
	default:
		panic("runtime.Binary: unknown op " + op.String())
	}
}

// BinaryScalar computes
//
//	for i := range out: out[i] = a[i] op s   // s op a[i] when scalarLeft
//
// a must be at least len(out) long; out may alias a. It panics on an
// unknown op.
func BinaryScalar[T Float](op BinaryOp, out, a []T, s T, scalarLeft bool) {
	a = fit(a, len(out), "BinaryScalar", "a")
	k := binaryScalarAsm(op, out, a, s, scalarLeft)
	binaryScalarLoop(op, out[k:], a[k:], s, scalarLeft)
}

// binaryScalarLoop is the Go loop of BinaryScalar; len(a) ≥ len(out).
func binaryScalarLoop[T Float](op BinaryOp, out, a []T, s T, scalarLeft bool) {
	a = a[:len(out)]
	switch op {
	case Add:
		for i, v := range a {
			out[i] = v + s
		}
	case Sub:
		if scalarLeft {
			for i, v := range a {
				out[i] = s - v
			}
		} else {
			for i, v := range a {
				out[i] = v - s
			}
		}
	case Mul:
		for i, v := range a {
			out[i] = v * s
		}
	case Div:
		if scalarLeft {
			for i, v := range a {
				out[i] = s / v
			}
		} else {
			for i, v := range a {
				out[i] = v / s
			}
		}
	default:
		panic("runtime.BinaryScalar: unknown op " + op.String())
	}
}

// BinaryRows broadcasts the row vector b (cols elements) over the
// rows×cols matrix a:
//
//	for r < rows, c < cols:
//		out[r*cols+c] = a[r*cols+c] op b[c]  // b[c] op a[r*cols+c] when rowLeft
//
// out may alias a. It panics on an unknown op.
func BinaryRows[T Float](op BinaryOp, out, a, b []T, rows, cols int, rowLeft bool) {
	if rows <= 0 || cols <= 0 {
		return
	}
	out = fit(out, rows*cols, "BinaryRows", "out")
	a = fit(a, rows*cols, "BinaryRows", "a")
	b = fit(b, cols, "BinaryRows", "b")
	if rowLeft && (op == Add || op == Mul) {
		rowLeft = false // commutative
	}
	// On amd64 the float32 column vectors of 8 of every row are done in
	// one assembly call; the rows' last cols%8 columns here.
	k := binaryRowsAsm(op, out, a, b, rows, cols, rowLeft)
	b = b[k:]
	for r := 0; r < rows; r++ {
		o := out[r*cols+k : r*cols+cols]
		x := a[r*cols+k : r*cols+cols]
		if rowLeft {
			binaryLoop(op, o, b, x)
		} else {
			binaryLoop(op, o, x, b)
		}
	}
}

// BinaryStrided is the general NumPy-broadcasting form of Binary for rank
// ≤ 4. shape is the output shape with leading dimensions padded with 1;
// aStride and bStride give the element strides of a and b per output
// dimension, 0 where that operand is broadcast. It computes
//
//	for every index i0<shape[0], i1, i2, i3 (out is compact row-major):
//		out[((i0*shape[1]+i1)*shape[2]+i2)*shape[3]+i3] =
//			a[Σ id*aStride[d]] op b[Σ id*bStride[d]]
//
// Dimensions of size 1 are dropped and adjacent dimensions that are
// contiguous in a, b and out are merged first, so the innermost loop is as
// long as possible and dispatches once per row. out may alias a or b only
// when that operand is not broadcast (stride pattern equal to out's).
func BinaryStrided[T Float](op BinaryOp, out, a, b []T, shape, aStride, bStride [4]int) {
	if op > Div {
		panic("runtime.BinaryStrided: unknown op " + op.String())
	}
	nd, sh, st := collapseDims(shape, [2][4]int{aStride, bStride})
	if nd < 0 {
		return
	}
	as, bs := st[0], st[1]
	out = fit(out, sh[0]*sh[1]*sh[2]*sh[3], "BinaryStrided", "out")
	// Capped copies make every row slice below check against len, not cap.
	a = a[:len(a):len(a)]
	b = b[:len(b):len(b)]
	n := sh[3]
	o := 0
	for i0 := 0; i0 < sh[0]; i0++ {
		for i1 := 0; i1 < sh[1]; i1++ {
			for i2 := 0; i2 < sh[2]; i2++ {
				ao := i0*as[0] + i1*as[1] + i2*as[2]
				bo := i0*bs[0] + i1*bs[1] + i2*bs[2]
				binaryRow(op, out[o:o+n], a, b, ao, bo, as[3], bs[3])
				o += n
			}
		}
	}
}

// binaryRow computes out[j] = a[ao+j*sa] op b[bo+j*sb] for j < len(out),
// picking the contiguous or scalar-broadcast loop when the strides allow.
func binaryRow[T Float](op BinaryOp, out, a, b []T, ao, bo, sa, sb int) {
	n := len(out)
	switch {
	case sa == 1 && sb == 1:
		Binary(op, out, a[ao:ao+n], b[bo:bo+n])
		return
	case sa == 1 && sb == 0:
		BinaryScalar(op, out, a[ao:ao+n], b[bo], false)
		return
	case sa == 0 && sb == 1:
		BinaryScalar(op, out, b[bo:bo+n], a[ao], true)
		return
	}
	// General strides: rare in generated code (transposed views).
	if n == 0 {
		return
	}
	// Touch the last elements once so out-of-range strides panic here.
	_ = a[ao+(n-1)*sa]
	_ = b[bo+(n-1)*sb]
	switch op {
	case Add:
		for j := range out {
			out[j] = a[ao+j*sa] + b[bo+j*sb]
		}
	case Sub:
		for j := range out {
			out[j] = a[ao+j*sa] - b[bo+j*sb]
		}
	case Mul:
		for j := range out {
			out[j] = a[ao+j*sa] * b[bo+j*sb]
		}
	case Div:
		for j := range out {
			out[j] = a[ao+j*sa] / b[bo+j*sb]
		}
	}
}

// collapseDims normalizes a rank-4 iteration space over which K operands
// have the given strides, with the output compact: size-1 dimensions are
// dropped and a dimension is merged into the next inner one when every
// operand steps through both as one (stride[d] == stride[d+1]*shape[d+1]).
// The result is right-aligned and padded with size-1, stride-0 dims. nd is
// the number of remaining dimensions, or -1 if the space is empty.
func collapseDims(shape [4]int, strides [2][4]int) (nd int, sh [4]int, st [2][4]int) {
	for _, s := range shape {
		if s <= 0 {
			return -1, sh, st
		}
	}
	// Build the list innermost first.
	var tsh [4]int
	var tst [2][4]int
	for d := 3; d >= 0; d-- {
		if shape[d] == 1 {
			continue
		}
		if nd > 0 {
			in := nd - 1
			merge := true
			for q := range strides {
				if strides[q][d] != tst[q][in]*tsh[in] {
					merge = false
					break
				}
			}
			if merge {
				tsh[in] *= shape[d]
				continue
			}
		}
		tsh[nd] = shape[d]
		for q := range strides {
			tst[q][nd] = strides[q][d]
		}
		nd++
	}
	for d := range sh {
		sh[d] = 1
	}
	for q := 0; q < nd; q++ {
		sh[3-q] = tsh[q]
		for p := range st {
			st[p][3-q] = tst[p][q]
		}
	}
	return nd, sh, st
}

// Fill computes
//
//	for i := range out: out[i] = v
func Fill[T Float](out []T, v T) {
	if v == 0 {
		clear(out) // compiles to a memclr
		return
	}
	out = out[fillAsm(out, v):]
	for i := range out {
		out[i] = v
	}
}

// Scale computes
//
//	for i := range out: out[i] = s * x[i]
//
// x must be at least len(out) long; out may alias x.
func Scale[T Float](out, x []T, s T) {
	x = fit(x, len(out), "Scale", "x")
	k := binaryScalarAsm(Mul, out, x, s, false) // s*v == v*s
	out, x = out[k:], x[k:]
	x = x[:len(out)]
	for i, v := range x {
		out[i] = s * v
	}
}

// Axpy computes
//
//	for i := range y: y[i] += alpha * x[i]
//
// x must be at least len(y) long.
func Axpy[T Float](y, x []T, alpha T) {
	x = fit(x, len(y), "Axpy", "x")
	k := axpyAsm(y, x, alpha)
	y, x = y[k:], x[k:]
	x = x[:len(y)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// fit returns s[:n:n] after checking len(s) >= n. A plain s[:n] checks n
// only against cap(s), so a short slice with spare capacity would let a
// kernel read or write past its length; capping the result also bounds
// every later reslice by n. fit is small enough to inline, which keeps
// len(result) == n visible to bounds-check elimination.
func fit[T any](s []T, n int, fn, arg string) []T {
	if len(s) < n {
		panicShort(fn, arg, len(s), n)
	}
	return s[:n:n]
}

func panicShort(fn, arg string, have, need int) {
	panic("runtime." + fn + ": len(" + arg + ") = " + strconv.Itoa(have) + ", need " + strconv.Itoa(need))
}
