package runtime

import (
	"fmt"
	"iter"
)

// BiasAct computes out[r, c] = act(x[r, c] + b[c]) for rows×cols x: the
// bias add and the activation of a dense or conv layer as one op, so the
// sum needs no buffer of its own. act is Relu, Sigmoid or Tanh. out may
// alias x. It runs the two vectorized kernels back to back on blocks of
// rows of about biasActBlock elements, so that each block is still in L1
// for the second kernel (a conv layer's output is megabytes).
func BiasAct[T Float](act UnaryOp, out, x, b []T, rows, cols int) {
	if len(out) < rows*cols || len(x) < rows*cols || len(b) < cols {
		panic(fmt.Sprintf("runtime.BiasAct: len(out)=%d, len(x)=%d, len(b)=%d, want ≥ %d, %d, %d", len(out), len(x), len(b), rows*cols, rows*cols, cols))
	}
	if rows <= 0 || cols <= 0 {
		return
	}
	for r0, rn := range rowBlocks(rows, max(1, biasActBlock/cols)) {
		o := out[r0*cols : (r0+rn)*cols]
		BinaryRows(Add, o, x[r0*cols:(r0+rn)*cols], b[:cols], rn, cols, false)
		if act != Linear {
			Unary(act, o, o)
		}
	}
}

// rowBlocks yields the first row and the row count of each block of up to
// nr rows (nr ≥ 1) of rows: the loop of the fused kernels, which run their
// passes block by block while a block is in cache.
func rowBlocks(rows, nr int) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		for r0 := 0; r0 < rows; r0 += nr {
			if !yield(r0, min(nr, rows-r0)) {
				return
			}
		}
	}
}

// biasActBlock is BiasAct's block size in elements (16 KiB of float32).
const biasActBlock = 4096

// GemmBiasAct computes out = act(a·w + b) for a (m, k), w (k, n) and b (n):
// Gemm(false, false, …) with BiasAct as its epilogue, run on blocks of rows
// of about gemmEpilogueBlock elements as they come out of the kernels,
// while they are still in cache, instead of as a second pass over the
// whole output (for a w of at most gemmEpilogueMaxW elements; a larger w
// makes one product and one pass). The results are bit-identical to Gemm followed by BiasAct
// (each row block is the same product and the same element-wise pass).
// out must not overlap a, w or b.
func GemmBiasAct[T Float](act UnaryOp, out, a, w, b []T, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(out) < m*n || len(a) < m*k || len(w) < k*n || len(b) < n {
		panic(fmt.Sprintf("runtime.GemmBiasAct: m=%d n=%d k=%d with len(out)=%d, len(a)=%d, len(w)=%d, len(b)=%d", m, n, k, len(out), len(a), len(w), len(b)))
	}
	if m == 0 || n == 0 {
		return
	}
	for r0, rn := range gemmEpilogueBlocks(m, n, k) {
		o := out[r0*n : (r0+rn)*n]
		Gemm(false, false, rn, n, k, a[r0*k:(r0+rn)*k], w[:k*n], o, false)
		BiasAct(act, o, o, b, rn, n)
	}
}

// GemmBiasAdd computes out = r + (a·w + b), a residual connection around
// a dense layer, for an m×k a, a k×n w, b of n and an m×n r: GemmBiasAct
// with the identity, then r added to each block of rows while it is in
// cache. The results are bit-identical to GemmBiasAct then Binary(Add,
// out, r, out).
func GemmBiasAdd[T Float](out, a, w, b, r []T, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(out) < m*n || len(a) < m*k || len(w) < k*n || len(b) < n || len(r) < m*n {
		panic(fmt.Sprintf("runtime.GemmBiasAdd: m=%d n=%d k=%d with len(out)=%d, len(a)=%d, len(w)=%d, len(b)=%d, len(r)=%d", m, n, k, len(out), len(a), len(w), len(b), len(r)))
	}
	for r0, rn := range gemmEpilogueBlocks(m, n, k) {
		o := out[r0*n : (r0+rn)*n]
		Gemm(false, false, rn, n, k, a[r0*k:(r0+rn)*k], w[:k*n], o, false)
		BiasAct(Linear, o, o, b, rn, n)
		Binary(Add, o, r[r0*n:(r0+rn)*n], o)
	}
}

// gemmEpilogueBlocks yields the blocks of rows GemmBiasAct and GemmBiasAdd
// apply their epilogues to.
func gemmEpilogueBlocks(m, n, k int) iter.Seq2[int, int] {
	// Blocks of whole tiles of 12 rows (and 6). A large w is one product:
	// each block would read all of it again, and the kernels pack it for
	// many rows only.
	rb := m
	if k*n <= gemmEpilogueMaxW {
		rb = max(12, gemmEpilogueBlock/n/12*12)
	}
	return rowBlocks(m, rb)
}

// gemmEpilogueBlock is GemmBiasAct's block size in elements of out (64 KiB
// of float32, within L2 on any current x86 core), and gemmEpilogueMaxW the
// largest w, in elements, it blocks the rows for (256 KiB of float32,
// which stays in L2 from block to block).
const (
	gemmEpilogueBlock = 16384
	gemmEpilogueMaxW  = 65536
)

// UnaryGradSumRows computes dx = dy ⊙ op'(y), as UnaryGrad, for rows×cols
// matrices, and in the same pass the bias gradient db (+)= the column
// sums of dx, as SumRows(db, dx, rows, cols, 1, acc): blocks of rows of
// about biasActBlock elements are summed while they are in cache. The
// results are bit-identical to the two calls (SumRows adds the rows into
// db in order either way).
func UnaryGradSumRows[T Float](op UnaryOp, dx, y, dy, db []T, rows, cols int, acc bool) {
	if rows < 0 || cols < 0 || len(dx) < rows*cols || len(y) < rows*cols || len(dy) < rows*cols || len(db) < cols {
		panic(fmt.Sprintf("runtime.UnaryGradSumRows: rows=%d cols=%d with len(dx)=%d, len(y)=%d, len(dy)=%d, len(db)=%d", rows, cols, len(dx), len(y), len(dy), len(db)))
	}
	if cols == 0 {
		return
	}
	if !acc {
		clear(db[:cols])
	}
	for r0, rn := range rowBlocks(rows, max(1, biasActBlock/cols)) {
		d := dx[r0*cols : (r0+rn)*cols]
		UnaryGrad(op, d, y[r0*cols:(r0+rn)*cols], dy[r0*cols:(r0+rn)*cols])
		SumRows(db, d, rn, cols, 1, true)
	}
}
