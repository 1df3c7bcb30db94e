package runtime

// GEMM design notes.
//
// The Go compiler emits scalar SSE code and never vectorizes, so the
// kernels aim at keeping every accumulator in a register and at issuing as
// few instructions per multiply-add as possible. Facts of the gc compiler
// that shape them:
//
//   - amd64 has 15 allocatable XMM registers, and the scheduler computes
//     all products of a loop body before their adds, so a body with r
//     accumulators needs about 2r+1 registers: r = 6 is the largest tile
//     that never spills.
//   - A micro-kernel in its own function, returning its accumulators,
//     gets a clean register allocation; the same loop inlined into a
//     deeper loop nest spills.
//   - Bounds checks vanish only for loops over slices resliced to a common
//     length with a p < len-1 style condition.
//
// All four transpose cases are therefore reduced to one form: every
// element of C is a dot product of a row of op(A) and a column of op(B),
// both contiguous over a block of k. The micro-kernel (dot23) computes a
// 2×3 tile of C: per step of k it loads 5 values and does 6 multiply-adds,
// with no bounds checks, unrolled by two. Rows of A (no transA) and rows
// of B (transB) are used in place; otherwise the operand is copied,
// transposed, into a fixed-size array on the stack: a pair of rows of
// op(A) at a time, and a block of columns of op(B) that is reused for all
// m rows. Stack arrays keep Gemm allocation-free and goroutine-safe
// (no pools, no shared scratch).
//
// Scalar code needs at least 3 instructions (load, mul, add) per
// multiply-add, while SSE assembly such as gonum's does four multiply-adds
// with about as many, so on shapes with long contiguous rows gonum remains
// faster; these kernels win on narrow shapes (n or k ≈ 10), where gonum's
// per-row call overhead dominates.
//
// This pure-Go code is the fallback: on amd64 with AVX2 and FMA, float32
// Gemm runs on the AVX2 assembly kernels of gemm_amd64.go instead (eight
// multiply-adds per instruction, several times gonum's speed), unless
// built with the noasm tag.

// gemmKC is the k-block length: it bounds the packed copies.
const gemmKC = 256

// gemmPackB is the size of the stack array for a packed block of op(B)
// columns: at least 16 columns of a full k block. With the pair of A rows
// the arrays take 18 KiB of stack for float32 (36 KiB for float64); a
// goroutine's stack grows to that once, which is not a heap allocation.
// Smaller blocks measured 10-25% slower on the MLP shapes.
const gemmPackB = 16 * gemmKC

// Gemm computes C = op(A)·op(B), or C += op(A)·op(B) when acc is true.
// op(A) is m×k and op(B) is k×n; all matrices are compact row-major.
// A is stored m×k, or k×m when transA; B is stored k×n, or n×k when
// transB; C is m×n. It computes the reference loop
//
//	for i < m, j < n:
//		s := 0
//		for p < k: s += opA(i,p) * opB(p,j)
//		C[i*n+j] = s  // or += s when acc
//
// where opA(i,p) is A[i*k+p] (A[p*m+i] when transA) and opB(p,j) is
// B[p*n+j] (B[j*k+p] when transB). Summation order differs from the
// reference, so results agree to rounding only.
//
// m, n or k may be 0: with m or n 0 nothing is touched, with k 0 C is
// zeroed (or left as is when acc). Gemm panics if a, b or c is shorter
// than its matrix. It never allocates. It runs on the calling goroutine
// unless SetThreads enabled the worker pool (parallel.go): then large
// products are split into blocks of rows or of columns of C, computed by
// the pool and the caller with bit-identical results.
func Gemm[T Float](transA, transB bool, m, n, k int, a, b, c []T, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	c = fit(c, m*n, "Gemm", "c")
	if k <= 0 {
		if !acc {
			clear(c)
		}
		return
	}
	a = fit(a, m*k, "Gemm", "a")
	b = fit(b, k*n, "Gemm", "b")
	if gemmParallel(transA, transB, m, n, k, a, b, c, acc) {
		return
	}
	gemmRange(transA, transB, m, n, k, a, b, c, acc, 0, m, 0, n)
}

// gemmRange computes the block of rows [ilo, ihi) and columns [jlo, jhi)
// of C, with the assembly kernels where they apply. Every element of C is
// computed by the same operations whatever block contains it, provided the
// block's edges are multiples of the units of gemmUnits (or m, n): a
// parallel Gemm (parallel.go) splits C this way and stays bit-identical to
// the single-threaded one.
func gemmRange[T Float](transA, transB bool, m, n, k int, a, b, c []T, acc bool, ilo, ihi, jlo, jhi int) {
	if gemmAsm(transA, transB, m, n, k, a, b, c, acc, ilo, ihi, jlo, jhi) {
		return
	}
	gemmDot(transA, transB, m, n, k, a, b, c, acc, ilo, ihi, jlo, jhi)
}

// gemmUnits returns the granularity, in rows and in columns, at which C
// may be split into blocks for gemmRange without changing any element's
// sequence of operations, and the efficient one for the assembly kernels.
func gemmUnits[T Float]() (mu, nu int) {
	if mu, nu, ok := gemmAsmUnits[T](); ok {
		return mu, nu
	}
	return gemmDotUnits()
}

// gemmDotUnits returns gemmDot's split units. Rows go by pairs from the
// block's first row (dot23 and dot13 round differently), so blocks start
// at even rows. Columns go by chunks of nc, a multiple of 3, from the
// block's first column, and by triples within a chunk (dot23 and dot21
// round differently); only a chunk ending at column n has a partial
// triple. So blocks starting at multiples of 3 group every column as the
// whole product does, even though nc depends on the k block.
func gemmDotUnits() (mu, nu int) {
	return 2, 3
}

// GemmNaive computes exactly what Gemm does with the plain triple loop in
// Gemm's doc comment. It exists as the reference for tests and as the
// baseline of benchmarks.
func GemmNaive[T Float](transA, transB bool, m, n, k int, a, b, c []T, acc bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s T
			for p := 0; p < k; p++ {
				var x, y T
				if transA {
					x = a[p*m+i]
				} else {
					x = a[i*k+p]
				}
				if transB {
					y = b[j*k+p]
				} else {
					y = b[p*n+j]
				}
				s += x * y
			}
			if acc {
				c[i*n+j] += s
			} else {
				c[i*n+j] = s
			}
		}
	}
}

// gemmDot computes every case as dot products over k blocks of at most
// gemmKC: C[i,j] (+)= Σ_p opA(i,p)·opB(p,j), for rows [ilo, ihi) and
// columns [jlo, jhi) of C.
func gemmDot[T Float](transA, transB bool, m, n, k int, a, b, c []T, acc bool, ilo, ihi, jlo, jhi int) {
	var packA [2 * gemmKC]T
	var packB [gemmPackB]T
	// Split k into near-equal blocks.
	nb := (k + gemmKC - 1) / gemmKC
	kc := (k + nb - 1) / nb
	for k0 := 0; k0 < k; k0 += kc {
		kl := min(kc, k-k0)
		accb := acc || k0 > 0 // only the first k block may overwrite C
		// Columns of op(B) per block: all of them when they are rows of B
		// in place, else as many as fit in packB (a multiple of 3).
		nc := jhi - jlo
		if !transB {
			nc = gemmPackB / kl / 3 * 3
		}
		for j0 := jlo; j0 < jhi; j0 += nc {
			jn := min(nc, jhi-j0)
			// Column j0+t of op(B) is pb[t*ps : t*ps+kl].
			var pb []T
			var ps int
			if transB {
				pb, ps = b[j0*k+k0:], k
			} else {
				pb, ps = packB[:jn*kl], kl
				transposeStrided(pb, kl, b[k0*n+j0:], n, kl, jn)
			}
			for i := ilo; i < ihi; i += 2 {
				two := i+1 < ihi
				// Rows i and i+1 of op(A) over the block.
				var a0, a1 []T
				if transA {
					a0 = packA[:kl]
					a1 = packA[kl : 2*kl]
					if two {
						transposeStrided(packA[:], kl, a[k0*m+i:], m, kl, 2)
					} else {
						transposeStrided(a0, kl, a[k0*m+i:], m, kl, 1)
					}
				} else {
					a0 = a[i*k+k0 : i*k+k0+kl]
					if two {
						a1 = a[(i+1)*k+k0 : (i+1)*k+k0+kl]
					}
				}
				c0 := c[i*n+j0 : i*n+j0+jn]
				var c1 []T
				if two {
					c1 = c[(i+1)*n+j0 : (i+1)*n+j0+jn]
				}
				t := 0
				for ; t+3 <= jn; t += 3 {
					b0 := pb[t*ps : t*ps+kl]
					b1 := pb[(t+1)*ps : (t+1)*ps+kl]
					b2 := pb[(t+2)*ps : (t+2)*ps+kl]
					r0 := c0[t : t+3 : t+3]
					if two {
						s00, s01, s02, s10, s11, s12 := dot23(a0, a1, b0, b1, b2)
						r1 := c1[t : t+3 : t+3]
						if accb {
							r0[0] += s00
							r0[1] += s01
							r0[2] += s02
							r1[0] += s10
							r1[1] += s11
							r1[2] += s12
						} else {
							r0[0], r0[1], r0[2] = s00, s01, s02
							r1[0], r1[1], r1[2] = s10, s11, s12
						}
					} else {
						s0, s1, s2 := dot13(a0, b0, b1, b2)
						if accb {
							r0[0] += s0
							r0[1] += s1
							r0[2] += s2
						} else {
							r0[0], r0[1], r0[2] = s0, s1, s2
						}
					}
				}
				for ; t < jn; t++ {
					bt := pb[t*ps : t*ps+kl]
					if two {
						s0, s1 := dot21(a0, a1, bt)
						if accb {
							c0[t] += s0
							c1[t] += s1
						} else {
							c0[t], c1[t] = s0, s1
						}
					} else {
						s := dot11(a0, bt)
						if accb {
							c0[t] += s
						} else {
							c0[t] = s
						}
					}
				}
			}
		}
	}
}

// dot23 returns the six dot products of rows a0, a1 with rows b0, b1, b2.
// Reslicing everything to len(a0), and the p < len-1 loop form, let the
// compiler drop all bounds checks. Unrolling by two halves the loop
// overhead, and because the first half's sums feed the second half, the
// scheduler interleaves the halves instead of computing all 12 products
// first and spilling.
func dot23[T Float](a0, a1, b0, b1, b2 []T) (c00, c01, c02, c10, c11, c12 T) {
	a1 = a1[:len(a0)]
	b0 = b0[:len(a0)]
	b1 = b1[:len(a0)]
	b2 = b2[:len(a0)]
	p := 0
	for ; p < len(a0)-1; p += 2 {
		x, y := a0[p], a1[p]
		u, v, w := b0[p], b1[p], b2[p]
		c00 += x * u
		c01 += x * v
		c02 += x * w
		c10 += y * u
		c11 += y * v
		c12 += y * w
		x, y = a0[p+1], a1[p+1]
		u, v, w = b0[p+1], b1[p+1], b2[p+1]
		c00 += x * u
		c01 += x * v
		c02 += x * w
		c10 += y * u
		c11 += y * v
		c12 += y * w
	}
	if p < len(a0) {
		x, y := a0[p], a1[p]
		u, v, w := b0[p], b1[p], b2[p]
		c00 += x * u
		c01 += x * v
		c02 += x * w
		c10 += y * u
		c11 += y * v
		c12 += y * w
	}
	return
}

// dot21 returns the dot products of rows a0, a1 with row b, two partial
// sums each.
func dot21[T Float](a0, a1, b []T) (c0, c1 T) {
	a1 = a1[:len(a0)]
	b = b[:len(a0)]
	var d0, d1 T
	p := 0
	for ; p < len(b)-1; p += 2 {
		u, v := b[p], b[p+1]
		c0 += a0[p] * u
		c1 += a1[p] * u
		d0 += a0[p+1] * v
		d1 += a1[p+1] * v
	}
	if p < len(b) {
		c0 += a0[p] * b[p]
		c1 += a1[p] * b[p]
	}
	return c0 + d0, c1 + d1
}

// dot13 returns the dot products of row a with rows b0, b1, b2, two
// partial sums each.
func dot13[T Float](a, b0, b1, b2 []T) (c0, c1, c2 T) {
	b0 = b0[:len(a)]
	b1 = b1[:len(a)]
	b2 = b2[:len(a)]
	var d0, d1, d2 T
	p := 0
	for ; p < len(a)-1; p += 2 {
		x, y := a[p], a[p+1]
		c0 += x * b0[p]
		c1 += x * b1[p]
		c2 += x * b2[p]
		d0 += y * b0[p+1]
		d1 += y * b1[p+1]
		d2 += y * b2[p+1]
	}
	if p < len(a) {
		x := a[p]
		c0 += x * b0[p]
		c1 += x * b1[p]
		c2 += x * b2[p]
	}
	return c0 + d0, c1 + d1, c2 + d2
}

// transposeStrided writes the transpose of a rows×cols block whose rows
// are lds apart in src into dst, whose rows are ldd apart:
// dst[c*ldd+r] = src[r*lds+c].
func transposeStrided[T Float](dst []T, ldd int, src []T, lds, rows, cols int) {
	for r := 0; r < rows; r++ {
		for c, v := range src[r*lds : r*lds+cols] {
			dst[c*ldd+r] = v
		}
	}
}

// dot11 returns the dot product of a and b with four partial sums, which
// hide the add latency.
func dot11[T Float](a, b []T) T {
	b = b[:len(a)]
	var s0, s1, s2, s3 T
	for len(a) >= 4 && len(b) >= 4 {
		s0 += a[0] * b[0]
		s1 += a[1] * b[1]
		s2 += a[2] * b[2]
		s3 += a[3] * b[3]
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for p, v := range a {
		s0 += v * b[p]
	}
	return (s0 + s1) + (s2 + s3)
}
