package runtime

import (
	"math"
	"strconv"
)

// Gradient clipping, the usual remedies for exploding gradients (in
// recurrent networks above all): call one of them on the flat gradient
// buffer between the backward pass and the optimizer step.

// ClipGradNorm scales grads in place so that their global L2 norm is at
// most maxNorm, like PyTorch's clip_grad_norm_: when norm > maxNorm every
// element is multiplied by maxNorm/(norm+1e-6); otherwise grads are left
// untouched. It returns the norm before clipping, computed in float64
// (without overflow even for float64 gradients near the largest float).
// A NaN norm leaves grads as they are and an infinite one scales them by
// 0, as PyTorch does; check the result to skip such a step. ClipGradNorm
// panics if maxNorm is negative or NaN, and never allocates.
func ClipGradNorm[T Float](grads []T, maxNorm float64) float64 {
	if !(maxNorm >= 0) {
		panic("runtime.ClipGradNorm: maxNorm must be ≥ 0, have " + strconv.FormatFloat(maxNorm, 'g', -1, 64))
	}
	norm := math.Sqrt(clipSumSq(grads, 1))
	if math.IsInf(norm, 1) {
		// Either an element is infinite or the squares overflowed
		// (float64 elements beyond ~1e154): redo the sum scaled by the
		// largest magnitude.
		var m float64
		for _, v := range grads {
			m = max(m, math.Abs(float64(v)))
		}
		if !math.IsInf(m, 1) {
			norm = m * math.Sqrt(clipSumSq(grads, 1/m))
		}
	}
	if norm > maxNorm {
		s := T(maxNorm / (norm + 1e-6))
		for i := range grads {
			grads[i] *= s
		}
	}
	return norm
}

// clipSumSq returns Σ (scale·g)² in float64 with four partial sums.
func clipSumSq[T Float](g []T, scale float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i < len(g)-3; i += 4 {
		a, b, c, d := scale*float64(g[i]), scale*float64(g[i+1]), scale*float64(g[i+2]), scale*float64(g[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for _, v := range g[i:] {
		a := scale * float64(v)
		s0 += a * a
	}
	return (s0 + s1) + (s2 + s3)
}

// ClipGradValue clamps every element of grads to [-clip, clip] in place
// (NaN stays NaN), like PyTorch's clip_grad_value_. It panics if clip is
// negative or NaN, and never allocates.
func ClipGradValue[T Float](grads []T, clip T) {
	if !(clip >= 0) {
		panic("runtime.ClipGradValue: clip must be ≥ 0, have " + strconv.FormatFloat(float64(clip), 'g', -1, 64))
	}
	for i, v := range grads {
		if v > clip {
			grads[i] = clip
		} else if v < -clip {
			grads[i] = -clip
		}
	}
}
