package runtime

import "strconv"

// RTRL is real-time recurrent learning (Williams & Zipser, 1989) for a
// SimpleRNN layer h_t = tanh(x_t·W + b + h_{t-1}·U + bh) with the
// shapes of RNNForward (W (D, H), U (H, H), b and bh (H)). Instead of
// storing the history and propagating gradients backwards (BPTT), it
// carries the sensitivity P_t = ∂h_t/∂θ of every sequence forward in
// time, θ = (W, U, b, bh) flattened in that order (|θ| = D·H + H² + 2H):
//
//	P_t = diag(1 - h_t²) · (Uᵀ·P_{t-1} + ∂a_t/∂θ|direct)
//
// where the direct term has x_t[d] at (k, W[d,k]), h_{t-1}[j] at
// (k, U[j,k]) and 1 at (k, b[k]) and (k, bh[k]). The gradient of any loss
// of the current state is then available at once: dθ = Σ_b dhᵀ·P_t.
//
// Cost: the Uᵀ·P product makes a step O(H²·|θ|) = O(H²·(D·H + H² + 2H)),
// i.e. O(H⁴), time per sequence (a single Gemm over all sequences), and
// P takes O(H·|θ|) memory per sequence (twice that, double-buffered),
// independent of the sequence length; Grad costs O(H·|θ|). BPTT
// (RNNForward/RNNBackward) costs only O(H·(D+H)) time per step but needs
// O(T) memory for the T steps of its window and the whole window before
// any gradient is known. Use RTRL for online learning, where a gradient
// (and a weight update) is wanted at every step, and for streams without
// a fixed window or with dependencies longer than any affordable
// truncation — and only for small H: at H = 128, D = 1 that is already
// 2.1 million floats of P and 2.7·10⁸ multiply-adds per sequence and step.
//
// The gradient is exact for fixed weights; when the weights change
// between steps (online updates), P is the usual RTRL approximation.
type RTRL[T Float] struct {
	d, hd, n, np int
	h, hp        []T // current and previous hidden state (n, H)
	// p holds P_t laid out (H, n, |θ|): p[(k*n+b)*np + i] = ∂h_t[b,k]/∂θ_i,
	// so that Uᵀ·P for all sequences is one Gemm H×(n·|θ|)×H; q is the
	// other buffer of the pair.
	p, q  []T
	pZero bool // P is identically zero (after Reset)
}

// NewRTRL returns an RTRL learner for n sequences of a SimpleRNN with
// input width D and hidden width H, with h = 0 and P = 0. All memory,
// 2·n·H·(D·H + H² + 2H) + 2·n·H floats, is allocated here.
func NewRTRL[T Float](D, H, n int) *RTRL[T] {
	if D < 1 || H < 1 || n < 1 {
		panic("runtime.NewRTRL: D, H and n must be ≥ 1, have D=" + strconv.Itoa(D) +
			" H=" + strconv.Itoa(H) + " n=" + strconv.Itoa(n))
	}
	np := D*H + H*H + 2*H
	r := &RTRL[T]{d: D, hd: H, n: n, np: np,
		h: make([]T, n*H), hp: make([]T, n*H),
		p: make([]T, H*n*np), q: make([]T, H*n*np), pZero: true}
	return r
}

// Reset starts new sequences from h0 (n, H), or from zeros when h0 is nil,
// and sets P = 0 (the initial state does not depend on θ).
func (r *RTRL[T]) Reset(h0 []T) {
	if h0 != nil {
		copy(r.h, fit(h0, len(r.h), "RTRL.Reset", "h0"))
	} else {
		clear(r.h)
	}
	r.pZero = true
}

// Step advances every sequence by one step with input x (n, D) and the
// weights W (D, H), U (H, H), b, bh (H), updating h and P, and returns a
// view of the new h (n, H), valid until the next Step or Reset. It never
// allocates.
func (r *RTRL[T]) Step(x, W, U, b, bh []T) []T {
	const fn = "RTRL.Step"
	D, H, n, np := r.d, r.hd, r.n, r.np
	x = fit(x, n*D, fn, "x")
	W = fit(W, D*H, fn, "W")
	U = fit(U, H*H, fn, "U")
	b = fit(b, H, fn, "b")
	bh = fit(bh, H, fn, "bh")
	h, hp := r.h, r.hp
	copy(hp, h)
	Gemm(false, false, n, H, D, x, W, h, false)
	Gemm(false, false, n, H, H, hp, U, h, true)
	for s := 0; s < n; s++ {
		rnnTanhBias(h[s*H:(s+1)*H], b, bh)
	}

	// q = Uᵀ·P_{t-1} for all sequences at once: P viewed as (H, n·|θ|).
	q := r.q
	if r.pZero {
		clear(q)
	} else {
		Gemm(true, false, H, n*np, H, U, r.p, q, false)
	}
	offU, offB := D*H, D*H+H*H
	offBh := offB + H
	for k := 0; k < H; k++ {
		for s := 0; s < n; s++ {
			row := q[(k*n+s)*np : (k*n+s+1)*np]
			rtrlDirect(row[k:offU], x[s*D:(s+1)*D], H)
			rtrlDirect(row[offU+k:offB], hp[s*H:(s+1)*H], H)
			row[offB+k]++
			row[offBh+k]++
			v := h[s*H+k]
			rtrlScale(row, 1-v*v)
		}
	}
	r.p, r.q = q, r.p
	r.pZero = false
	return h
}

// rnnTanhBias computes h = tanh(h + b + bh) over len(h).
func rnnTanhBias[T Float](h, b, bh []T) {
	b = b[:len(h)]
	bh = bh[:len(h)]
	for j, v := range h {
		h[j] = v + b[j] + bh[j]
	}
	rnnTanhRow(h, h)
}

// rtrlDirect adds v[i] to dst[i*stride] for every i.
func rtrlDirect[T Float](dst, v []T, stride int) {
	for i, a := range v {
		dst[i*stride] += a
	}
}

func rtrlScale[T Float](row []T, s T) {
	for i := range row {
		row[i] *= s
	}
}

// Grad accumulates into dW (D, H), dU (H, H), db and bh (H) the gradient
// of a loss whose derivative w.r.t. the current h is dh (n, H):
// dθ += Σ_b dh[b]ᵀ·P[b]. Call it after each Step whose state enters the
// loss; the sum over steps is the gradient of the summed loss. It costs
// O(n·H·|θ|) and never allocates.
func (r *RTRL[T]) Grad(dh, dW, dU, db, dbh []T) {
	const fn = "RTRL.Grad"
	D, H, n, np := r.d, r.hd, r.n, r.np
	dh = fit(dh, n*H, fn, "dh")
	dW = fit(dW, D*H, fn, "dW")
	dU = fit(dU, H*H, fn, "dU")
	db = fit(db, H, fn, "db")
	dbh = fit(dbh, H, fn, "dbh")
	if r.pZero {
		return
	}
	offU, offB := D*H, D*H+H*H
	offBh := offB + H
	for k := 0; k < H; k++ {
		for s := 0; s < n; s++ {
			g := dh[s*H+k]
			if g == 0 {
				continue
			}
			row := r.p[(k*n+s)*np : (k*n+s+1)*np]
			Axpy(dW, row[:offU], g)
			Axpy(dU, row[offU:offB], g)
			Axpy(db, row[offB:offBh], g)
			Axpy(dbh, row[offBh:], g)
		}
	}
}

// H returns a view of the current hidden state (n, H).
func (r *RTRL[T]) H() []T { return r.h }
