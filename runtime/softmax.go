package runtime

import "math"

// Row-wise softmax family. Every row is shifted by its maximum before
// exponentiating, so no exponent exceeds 0 and nothing overflows; sums of
// exponentials are accumulated in float64, which costs little next to
// e^x and keeps float32 rows accurate.
//
// The exponentials of float32 rows run on the amd64 vector kernels
// (f32ExpSum, f32SumExp: x·scale − shift rounded once to float32, then
// e^ to 1 ulp, so within 2^-24·(2 + |x·scale − shift|) relative of the
// exact value, see expShiftErr and TestExpShift); float64 rows, and float32 ones without
// the kernels, call math.Exp in float64, so the float64 results that the
// gradient checks and the PyTorch comparisons rely on are unchanged.

// expShift computes
//
//	for i := range out: out[i] = e^(x[i]·scale − shift)
//
// and returns Σ out[i], summed in float64. For float32 rows scale and
// shift are rounded to float32 first, as the kernels take them, so that
// every element of a row sees the same ones. len(x) ≥ len(out); out may
// alias x.
func expShift[T Float](out, x []T, scale, shift float64) float64 {
	x = fit(x, len(out), "expShift", "x")
	scale, shift = roundLike[T](scale), roundLike[T](shift)
	k, sum := expSumAsm(out, x, scale, shift)
	o := out[k:]
	for i, v := range x[k:] {
		o[i] = T(math.Exp(float64(v)*scale - shift))
		sum += float64(o[i])
	}
	return sum
}

// sumExpShift returns Σ e^(x[i]·scale − shift) as expShift computes it,
// without storing the exponentials.
func sumExpShift[T Float](x []T, scale, shift float64) float64 {
	scale, shift = roundLike[T](scale), roundLike[T](shift)
	k, sum := sumExpAsm(x, scale, shift)
	for _, v := range x[k:] {
		sum += float64(T(math.Exp(float64(v)*scale - shift)))
	}
	return sum
}

// roundLike returns v rounded to T's precision.
func roundLike[T Float](v float64) float64 { return float64(T(v)) }

// rowMax returns the largest element of a non-empty row.
func rowMax[T Float](x []T) T {
	k, m := rowMaxAsm(x, x[0])
	for _, v := range x[k:] {
		if v > m {
			m = v
		}
	}
	return m
}

// Softmax computes, for each of the rows rows of the rows×cols matrix x,
//
//	out[r,c] = exp(x[r,c] - max_c x[r,:]) / Σ_c' exp(x[r,c'] - max_c x[r,:])
//
// out may alias x.
func Softmax[T Float](out, x []T, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	x = fit(x, rows*cols, "Softmax", "x")
	out = fit(out, rows*cols, "Softmax", "out")
	for r := 0; r < rows; r++ {
		xr := x[r*cols : r*cols+cols]
		or := out[r*cols : r*cols+cols][:len(xr)]
		s := expShift(or, xr, 1, float64(rowMax(xr)))
		Scale(or, or, T(1/s))
	}
}

// SoftmaxGrad is the backward pass of Softmax given its output y:
//
//	for each row r: dot = Σ_c dy[r,c]*y[r,c]
//		dx[r,c] = y[r,c] * (dy[r,c] - dot)
//
// dx may alias dy or y.
func SoftmaxGrad[T Float](dx, y, dy []T, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	n := rows * cols
	dx = fit(dx, n, "SoftmaxGrad", "dx")
	y = fit(y, n, "SoftmaxGrad", "y")
	dy = fit(dy, n, "SoftmaxGrad", "dy")
	for r := 0; r < rows; r++ {
		yr := y[r*cols : r*cols+cols]
		gr := dy[r*cols : r*cols+cols][:len(yr)]
		xr := dx[r*cols : r*cols+cols][:len(yr)]
		var dot float64
		for c, v := range yr {
			dot += float64(gr[c]) * float64(v)
		}
		d := T(dot)
		for c, v := range yr {
			xr[c] = v * (gr[c] - d)
		}
	}
}

// LogSoftmax computes, for each row of the rows×cols matrix x,
//
//	out[r,c] = x[r,c] - max - log(Σ_c' exp(x[r,c'] - max)), max = max_c x[r,:]
//
// out may alias x.
func LogSoftmax[T Float](out, x []T, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	x = fit(x, rows*cols, "LogSoftmax", "x")
	out = fit(out, rows*cols, "LogSoftmax", "out")
	for r := 0; r < rows; r++ {
		xr := x[r*cols : r*cols+cols]
		or := out[r*cols : r*cols+cols][:len(xr)]
		lse := logSumExp(xr)
		for c, v := range xr {
			or[c] = T(float64(v) - lse)
		}
	}
}

// logSumExp returns log Σ exp(x[i]) of a non-empty row, max-shifted.
func logSumExp[T Float](x []T) float64 {
	m := float64(rowMax(x))
	if math.IsInf(m, 0) {
		// All -Inf (or a +Inf present): the shift would make NaN from
		// Inf-Inf; the true value is m itself.
		return m
	}
	return m + math.Log(sumExpShift(x, 1, m))
}

// LogSoftmaxGrad is the backward pass of LogSoftmax given its output y:
//
//	for each row r: sum = Σ_c dy[r,c]
//		dx[r,c] = dy[r,c] - exp(y[r,c]) * sum
//
// dx may alias dy or y.
func LogSoftmaxGrad[T Float](dx, y, dy []T, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	n := rows * cols
	dx = fit(dx, n, "LogSoftmaxGrad", "dx")
	y = fit(y, n, "LogSoftmaxGrad", "y")
	dy = fit(dy, n, "LogSoftmaxGrad", "dy")
	for r := 0; r < rows; r++ {
		yr := y[r*cols : r*cols+cols]
		gr := dy[r*cols : r*cols+cols][:len(yr)]
		xr := dx[r*cols : r*cols+cols][:len(yr)]
		var s float64
		for _, g := range gr {
			s += float64(g)
		}
		for c, v := range yr {
			xr[c] = T(float64(gr[c]) - math.Exp(float64(v))*s)
		}
	}
}

// SoftmaxCrossEntropy returns the mean cross-entropy of the rows×cols
// logits against integer labels:
//
//	(1/rows) Σ_r [ log Σ_c exp(logits[r,c]) - logits[r,labels[r]] ]
//
// computed with a max-shifted log-sum-exp, so it stays finite for logits of
// any finite magnitude. labels must be in [0, cols) (callers validate them
// with CheckLabels); an out-of-range label panics. It returns 0 when rows
// or cols is 0.
func SoftmaxCrossEntropy[T Float](logits []T, labels []int32, rows, cols int) T {
	if rows <= 0 || cols <= 0 {
		return 0
	}
	logits = fit(logits, rows*cols, "SoftmaxCrossEntropy", "logits")
	labels = fit(labels, rows, "SoftmaxCrossEntropy", "labels")
	var loss float64
	for r, l := range labels {
		xr := logits[r*cols : r*cols+cols]
		loss += logSumExp(xr) - float64(xr[l])
	}
	return T(loss / float64(rows))
}

// SoftmaxCrossEntropyGrad is the gradient of SoftmaxCrossEntropy scaled by
// scale:
//
//	dlogits[r,c] = scale * (softmax(logits[r,:])[c] - (c == labels[r] ? 1 : 0))
//
// Generated code passes scale = dloss/rows, the mean's derivative. dlogits
// may alias logits. labels must be in [0, cols).
func SoftmaxCrossEntropyGrad[T Float](dlogits, logits []T, labels []int32, rows, cols int, scale T) {
	if rows <= 0 || cols <= 0 {
		return
	}
	logits = fit(logits, rows*cols, "SoftmaxCrossEntropyGrad", "logits")
	dlogits = fit(dlogits, rows*cols, "SoftmaxCrossEntropyGrad", "dlogits")
	labels = fit(labels, rows, "SoftmaxCrossEntropyGrad", "labels")
	for r, l := range labels {
		xr := logits[r*cols : r*cols+cols]
		gr := dlogits[r*cols : r*cols+cols][:len(xr)]
		// Stash the exponentials in gr; each logit is read before its
		// slot is overwritten, so aliasing is safe.
		s := expShift(gr, xr, 1, float64(rowMax(xr)))
		Scale(gr, gr, T(float64(scale)/s))
		gr[l] -= scale
	}
}

// CheckLabels returns the index of the first label outside [0, classes),
// or -1 if all are valid:
//
//	for i, l := range labels: if l < 0 || l >= classes { return i }
func CheckLabels(labels []int32, classes int) int {
	for i, l := range labels {
		if l < 0 || int(l) >= classes {
			return i
		}
	}
	return -1
}

// Argmax writes the column of each row's largest element:
//
//	for r < rows: out[r] = the smallest c maximizing x[r*cols+c]
//
// NaNs are never selected unless they come first in a row. cols must be at
// least 1.
func Argmax[T Float](out []int32, x []T, rows, cols int) {
	if rows <= 0 {
		return
	}
	out = fit(out, rows, "Argmax", "out")
	x = fit(x, rows*cols, "Argmax", "x")
	for r := range out {
		xr := x[r*cols : r*cols+cols]
		best, bi := xr[0], 0
		for c, v := range xr {
			if v > best {
				best, bi = v, c
			}
		}
		out[r] = int32(bi)
	}
}
