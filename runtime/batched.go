package runtime

// Kernels of the primitives attention is written with (ir/batched.go):
// products of stacks of matrices, axis permutations, the causal mask and
// the split of the last axis.

// BatchGemm computes, for each of the stacks matrices,
// C[s] = op(A[s])·op(B[s]) (+ C[s] when acc), with C[s] m×n and op(A[s])
// m×k: the matrices of each operand lie one after another.
func BatchGemm[T Float](transA, transB bool, stacks, m, n, k int, a, b, c []T, acc bool) {
	sa, sb, sc := m*k, k*n, m*n
	a = fit(a, stacks*sa, "BatchGemm", "a")
	b = fit(b, stacks*sb, "BatchGemm", "b")
	c = fit(c, stacks*sc, "BatchGemm", "c")
	for s := range stacks {
		Gemm(transA, transB, m, n, k, a[s*sa:(s+1)*sa], b[s*sb:(s+1)*sb], c[s*sc:(s+1)*sc], acc)
	}
}

// Permute writes out = x with its axes reordered: x has dims (right-
// aligned into four, leading 1s), and axis i of out is axis perm[i] of x.
// With acc it adds into out.
func Permute[T Float](out, x []T, dims, perm [4]int, acc bool) {
	total := dims[0] * dims[1] * dims[2] * dims[3]
	if total <= 0 {
		return
	}
	x = fit(x, total, "Permute", "x")
	out = fit(out, total, "Permute", "out")
	var stride [4]int // x's strides
	s := 1
	for i := 3; i >= 0; i-- {
		stride[i] = s
		s *= dims[i]
	}
	var od, os [4]int // out's dims and the x stride of each out axis
	for i, p := range perm {
		od[i], os[i] = dims[p], stride[p]
	}
	o := 0
	for i0 := range od[0] {
		for i1 := range od[1] {
			for i2 := range od[2] {
				base := i0*os[0] + i1*os[1] + i2*os[2]
				row := out[o : o+od[3]]
				_ = x[base+(od[3]-1)*os[3]] // a bad stride panics here, not mid-row
				if acc {
					for j := range row {
						row[j] += x[base+j*os[3]]
					}
				} else {
					for j := range row {
						row[j] = x[base+j*os[3]]
					}
				}
				o += od[3]
			}
		}
	}
}

// CausalMask writes out = x for each of the mats t×t matrices with the
// elements above the diagonal (key j > query i) replaced by fill: the
// forward mask with a very negative fill, its gradient with 0. out may be
// x.
func CausalMask[T Float](out, x []T, mats, t int, fill T) {
	x = fit(x, mats*t*t, "CausalMask", "x")
	out = fit(out, mats*t*t, "CausalMask", "out")
	for r := range mats * t {
		i := r % t
		row, src := out[r*t:(r+1)*t], x[r*t:(r+1)*t]
		copy(row[:i+1], src[:i+1])
		for j := i + 1; j < t; j++ {
			row[j] = fill
		}
	}
}

// Split writes out (rows, cols/parts) = part index of each row of x
// (rows, cols).
func Split[T Float](out, x []T, rows, cols, parts, index int) {
	w := cols / parts
	x = fit(x, rows*cols, "Split", "x")
	out = fit(out, rows*w, "Split", "out")
	for r := range rows {
		copy(out[r*w:(r+1)*w], x[r*cols+index*w:r*cols+(index+1)*w])
	}
}

// SplitGrad is Split's adjoint: dx (rows, cols) gets dy (rows, cols/parts)
// in part index of each row and 0 elsewhere, or, with acc, dy added into
// that part (the rest untouched).
func SplitGrad[T Float](dx, dy []T, rows, cols, parts, index int, acc bool) {
	w := cols / parts
	dx = fit(dx, rows*cols, "SplitGrad", "dx")
	dy = fit(dy, rows*w, "SplitGrad", "dy")
	for r := range rows {
		row, src := dx[r*cols:(r+1)*cols], dy[r*w:(r+1)*w]
		part := row[index*w : (index+1)*w]
		if acc {
			for j, v := range src {
				part[j] += v
			}
			continue
		}
		clear(row[:index*w])
		copy(part, src)
		clear(row[(index+1)*w:])
	}
}
