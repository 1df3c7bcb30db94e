package runtime

import "fmt"

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
	nr := max(1, biasActBlock/cols)
	for r0 := 0; r0 < rows; r0 += nr {
		rn := min(nr, rows-r0)
		o := out[r0*cols : (r0+rn)*cols]
		BinaryRows(Add, o, x[r0*cols:(r0+rn)*cols], b[:cols], rn, cols, false)
		Unary(act, o, o)
	}
}

// biasActBlock is BiasAct's block size in elements (16 KiB of float32).
const biasActBlock = 4096
