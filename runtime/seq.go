package runtime

import "fmt"

// TimeLast copies the last step of n sequences: out[b, :] = x[b, T-1, :],
// with x (n, T, H) and out (n, H).
func TimeLast[E Float](out, x []E, n, T, H int) {
	if len(out) < n*H || len(x) < n*T*H {
		panic(fmt.Sprintf("runtime.TimeLast: len(out)=%d, len(x)=%d, want ≥ %d and ≥ %d", len(out), len(x), n*H, n*T*H))
	}
	for b := range n {
		copy(out[b*H:(b+1)*H], x[(b*T+T-1)*H:(b*T+T)*H])
	}
}

// TimeLastGrad is TimeLast's adjoint: dx[b, T-1, :] (+)= dy[b, :] and, when
// not accumulating, dx is zero at the other steps.
func TimeLastGrad[E Float](dx, dy []E, n, T, H int, acc bool) {
	if len(dy) < n*H || len(dx) < n*T*H {
		panic(fmt.Sprintf("runtime.TimeLastGrad: len(dx)=%d, len(dy)=%d, want ≥ %d and ≥ %d", len(dx), len(dy), n*T*H, n*H))
	}
	if !acc {
		clear(dx[:n*T*H])
	}
	for b := range n {
		d := dx[(b*T+T-1)*H : (b*T+T)*H]
		for i, v := range dy[b*H : (b+1)*H] {
			d[i] += v
		}
	}
}
