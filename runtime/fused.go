package runtime

import "fmt"

// BiasAct computes out[r, c] = act(x[r, c] + b[c]) for rows×cols x in one
// pass: the bias add and the activation of a dense or conv layer, fused.
// act is Relu, Sigmoid or Tanh. out may alias x.
func BiasAct[T Float](act UnaryOp, out, x, b []T, rows, cols int) {
	if len(out) < rows*cols || len(x) < rows*cols || len(b) < cols {
		panic(fmt.Sprintf("runtime.BiasAct: len(out)=%d, len(x)=%d, len(b)=%d, want ≥ %d, %d, %d", len(out), len(x), len(b), rows*cols, rows*cols, cols))
	}
	b = b[:cols]
	for r := range rows {
		o := out[r*cols : (r+1)*cols]
		xr := x[r*cols : (r+1)*cols]
		o = o[:len(b)]
		xr = xr[:len(b)]
		switch act {
		case Relu:
			for i, bv := range b {
				v := xr[i] + bv
				if !(v > 0) && v == v { // keep NaN, like Unary(Relu)
					v = 0
				}
				o[i] = v
			}
		default:
			for i, bv := range b {
				o[i] = xr[i] + bv
			}
			Unary(act, o, o)
		}
	}
}
