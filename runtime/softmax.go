package runtime

import "math"

// Row-wise softmax family. Every row is shifted by its maximum before
// exponentiating, so no exponent exceeds 0 and nothing overflows; sums of
// exponentials are accumulated in float64, which costs nothing next to
// math.Exp and keeps float32 rows accurate.

// rowMax returns the largest element of a non-empty row.
func rowMax[T Float](x []T) T {
	m := x[0]
	for _, v := range x[1:] {
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
		m := float64(rowMax(xr))
		var s float64
		for c, v := range xr {
			e := math.Exp(float64(v) - m)
			s += e
			or[c] = T(e)
		}
		inv := T(1 / s)
		for c := range or {
			or[c] *= inv
		}
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
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
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
		m := float64(rowMax(xr))
		// Stash the exponentials in gr; each logit is read before its
		// slot is overwritten, so aliasing is safe.
		var s float64
		for c, v := range xr {
			e := math.Exp(float64(v) - m)
			s += e
			gr[c] = T(e)
		}
		k := T(float64(scale) / s)
		for c := range gr {
			gr[c] *= k
		}
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
