package runtime

import "fmt"

// BiasAct computes out[r, c] = act(x[r, c] + b[c]) for rows×cols x: the
// bias add and the activation of a dense or conv layer as one op, so the
// sum needs no buffer of its own. act is Relu, Sigmoid or Tanh. out may
// alias x. It runs the two vectorized kernels back to back on out, which
// stays in cache between them.
func BiasAct[T Float](act UnaryOp, out, x, b []T, rows, cols int) {
	if len(out) < rows*cols || len(x) < rows*cols || len(b) < cols {
		panic(fmt.Sprintf("runtime.BiasAct: len(out)=%d, len(x)=%d, len(b)=%d, want ≥ %d, %d, %d", len(out), len(x), len(b), rows*cols, rows*cols, cols))
	}
	out = out[:rows*cols]
	BinaryRows(Add, out, x[:rows*cols], b[:cols], rows, cols, false)
	Unary(act, out, out)
}
