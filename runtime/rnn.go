package runtime

import (
	"math"
	"unsafe"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Recurrent layers: SimpleRNN (Elman), LSTM and GRU with PyTorch's
// equations and gate order, so that weights exported from PyTorch load
// directly once transposed: our W is PyTorch's weight_ih_lᵀ (D, G·H), U
// is weight_hh_lᵀ (H, G·H), b and bh are bias_ih_l and bias_hh_l (G·H).
// With a_t = x_t·W + b and r_t = h_{t-1}·U + bh, each split into G blocks
// of H columns:
//
//	SimpleRNN (G=1):       h_t = tanh(a + r)
//	LSTM (G=4; i, f, g, o): i = σ(a_i+r_i), f = σ(a_f+r_f), g = tanh(a_g+r_g),
//	                       o = σ(a_o+r_o); c_t = f⊙c_{t-1} + i⊙g; h_t = o⊙tanh(c_t)
//	GRU (G=3; r, z, n):    r = σ(a_r+r_r), z = σ(a_z+r_z), n = tanh(a_n + r⊙r_n);
//	                       h_t = (1-z)⊙n + z⊙h_{t-1}
//
// Tensors: x (n, T, D) and hs (n, T, H) are batch-major (row b, step t at
// x[(b*T+t)*D:]); h0, c0 and the final states are (n, H).
//
// Every step works on time-major (n, ·) blocks that stay in cache: the
// forward pass first copies x time-major (xTM, kept in saved), then runs
// x·W for a chunk of c steps at a time (c·n rows, about 256 KiB of gate
// rows; see RNNGeom.chunk) and per step one Gemm h_{t-1}·U and a fused
// loop over the gates. Backpropagation through time runs the same loop
// backwards: per step dh_{t-1} = dGh_t·Uᵀ (with a copy of Uᵀ made once),
// and per chunk of steps dU += hᵀ·dGh, dW += xᵀ·dGx, dx = dGx·Wᵀ (with a
// copy of Wᵀ) and the bias gradients. Nothing of size n·T·G·H is written
// and read back but the gate activations, so a layer's memory traffic is
// a fraction of what whole-sequence products (x·W over all n·T rows, one
// dU over all steps) cost: 1.3× faster on the seed LSTM.
//
// Saved layout for n sequences (sizes in units of n·H floats, but xTM,
// n·T·D floats; state buffers are time-major blocks of (n, H): block 0
// holds the initial state of every sequence and block t+1 the state after
// step t; C = min(T, spec.RNNChunkMax), the most steps a chunk holds):
//
//	all cells: hTM  (T+1) blocks  h_{-1}=h0 (or 0), h_0, …, h_{T-1}
//	           xTM  (T, n, D)     x time-major
//	SimpleRNN: scr  C     (C, n, H) x·W of a chunk of steps
//	LSTM:      act  4T    (T, n, 4H) time-major gate activations i, f, g, o
//	           scr  4     (n, 4H) scratch for h·U
//	           cTM  T+1   c0 (or 0), c_0, …, c_{T-1}
//	           tc   T     tanh(c_t)
//	GRU:       act  3T    (T, n, 3H) time-major activations r, z, n
//	           scr  3     (n, 3H) scratch for h·U
//	           hn   T     h_{t-1}·U_n + bh_n (the term r multiplies)
//
// SavedSize is therefore n·H·(T+1+C) + n·T·D for SimpleRNN, n·H·(7T+6) +
// n·T·D for LSTM and n·H·(5T+4) + n·T·D for GRU.
//
// RNNBackward's work is dGh (C, n, G·H), the gradients w.r.t. the
// recurrent pre-activation h·U+bh of the steps of a chunk, dGx (C, n,
// G·H), the gradients w.r.t. x·W+b (identical to dGh except for GRU's n
// gate, where dGh_n = r⊙dGx_n), the carried dL/dh_t (n, H), plus dL/dc_t
// (n, H) for LSTM, Uᵀ (G·H, H), Wᵀ (G·H, D), dx of a chunk (C, n, D) and
// a time-major copy of dhs (T, n, H): WorkSize is
// n·(2·C·G·H + H + C·D) + G·H·(H + D) + n·T·H, plus n·H for LSTM.

// RNNCell selects the recurrent cell of an RNN layer.
type RNNCell = spec.RNNCell

// Recurrent cells.
const (
	SimpleRNN = spec.SimpleRNN
	LSTM      = spec.LSTM
	GRU       = spec.GRU
)

// RNNGeom describes one recurrent layer: its cell, the number of time
// steps T, the input width D and the hidden width H. Its SavedSize and
// WorkSize are the lengths of RNNForward's saved and RNNBackward's work
// buffers (spec.RNNLayout).
type RNNGeom = spec.RNNGeom

// rnnLayout returns g's buffer layout for n sequences, panicking with the
// kernel's name on an invalid geometry.
func rnnLayout(fn string, g RNNGeom, n int) spec.RNNLayout {
	if err := g.Check(n); err != nil {
		panic("runtime." + fn + ": " + err.Error())
	}
	return g.Layout(n)
}

// rnnSigmoidRow and rnnTanhRow compute the gate activations over a row,
// dst[j] = σ(src[j]) or tanh(src[j]) (dst may alias src). float64 goes
// through math.Exp and math.Tanh. float32, where the activations would
// otherwise take most of an LSTM's forward pass, runs the whole vectors
// of 8 on the AVX2/FMA kernels of Unary (f32Sigmoid within 2 ulp of
// float32(math.*), f32Tanh within 1) where the CPU has them. The rest,
// and everything without them, uses an e^x written out in the loop, in
// float64 arithmetic: e^x = 2^(k/32)·p(r) for x = k·ln2/32 + r,
// |r| ≤ ln2/64, with a 32-entry table of 2^(j/32) and the degree-4
// Taylor polynomial p (relative error ≤ r⁵/5! ≈ 1.3e-12, far below
// float32's rounding), x clamped to ±110 (enough for both functions to
// saturate in float32; NaN propagates). Its results match
// float32(math.*) to within one ulp (the tests check), at about half the
// cost of math.Exp and a third of math.Tanh. unsafe.Sizeof(z) is a
// constant in each GC-shape instantiation, so the test costs nothing.
//
// The LSTM and SimpleRNN rows call fused kernels (rnn_amd64.go) that
// apply the same vector activations to each whole gate block.
func rnnSigmoidRow[T Float](dst, src []T) {
	src = src[:len(dst)]
	var z T
	if unsafe.Sizeof(z) != 4 {
		for j, v := range src {
			// e^-v overflows to +Inf for v < -709, giving 1/Inf = 0.
			dst[j] = T(1 / (1 + math.Exp(-float64(v))))
		}
		return
	}
	k := unaryAsm(Sigmoid, dst, src)
	dst, src = dst[k:], src[k:]
	for j, v := range src {
		x := -float64(v)
		if x > 110 { // comparisons beat min/max, which handle NaN and ±0
			x = 110
		} else if x < -110 {
			x = -110
		}
		kf := (x*rnnExpS + rnnRound) - rnnRound
		r := (x - kf*rnnLn2Hi) - kf*rnnLn2Lo
		k := int64(kf)
		r2 := r * r
		p := (1 + r) + r2*(0.5+r*(1.0/6)) + r2*r2*(1.0/24)
		e := rnnExpTab[k&31] * math.Float64frombits(uint64((k>>5)+1023)<<52) * p
		dst[j] = T(1 / (1 + e))
	}
}

func rnnTanhRow[T Float](dst, src []T) {
	src = src[:len(dst)]
	var z T
	if unsafe.Sizeof(z) != 4 {
		for j, v := range src {
			dst[j] = T(math.Tanh(float64(v)))
		}
		return
	}
	k := unaryAsm(Tanh, dst, src)
	dst, src = dst[k:], src[k:]
	for j, v := range src {
		// tanh x = m/(m+2) with m = e^2x - 1 computed without
		// cancellation: e^y = s·(1+q), s = 2^(k/32) and q = p(r)-1, so
		// m = s·q + (s-1), where s-1 is exactly 0 for |y| < ln2/64 and
		// otherwise m is at least 0.01 in magnitude.
		y := 2 * float64(v)
		if y > 110 {
			y = 110
		} else if y < -110 {
			y = -110
		}
		kf := (y*rnnExpS + rnnRound) - rnnRound
		r := (y - kf*rnnLn2Hi) - kf*rnnLn2Lo
		k := int64(kf)
		r2 := r * r
		q := r + r2*(0.5+r*(1.0/6)) + r2*r2*(1.0/24)
		s := rnnExpTab[k&31] * math.Float64frombits(uint64((k>>5)+1023)<<52)
		m := s*q + (s - 1)
		dst[j] = T(m / (m + 2))
	}
}

// Constants of the float32 e^x.
const (
	rnnExpS  = 32 * 1.4426950408889634 // 32/ln2
	rnnLn2Hi = 6.93147180369123816490e-01 / 32
	rnnLn2Lo = 1.90821492927058770002e-10 / 32
	rnnRound = 0x1.8p52 // adding and subtracting it rounds to an integer
)

// rnnExpTab[j] = 2^(j/32).
var rnnExpTab = func() (t [32]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 32)
	}
	return t
}()

// RNNForward runs n sequences x (n, T, D) through T steps of the cell
// g.Cell from the initial state h0 (n, H) and, for LSTM, c0 (n, H), and
// writes the hidden state of every step to hs (n, T, H). h0 and c0 may be
// nil for zero states; c0 is ignored by cells other than LSTM. W is
// (D, G·H), U (H, G·H), b and bh (G·H). saved (g.SavedSize(n)) receives
// what RNNBackward and RNNFinalState need; hs and saved must not overlap
// each other or any input. RNNForward panics if a slice is too short and
// never allocates.
func RNNForward[T Float](g RNNGeom, n int, hs, x, h0, c0, W, U, b, bh, saved []T) {
	const fn = "RNNForward"
	l := rnnLayout(fn, g, n)
	steps, D, H, gh, nh := g.T, g.D, g.H, l.GH, l.NH
	hs = fit(hs, n*steps*H, fn, "hs")
	x = fit(x, n*steps*D, fn, "x")
	W = fit(W, D*gh, fn, "W")
	U = fit(U, H*gh, fn, "U")
	b = fit(b, gh, fn, "b")
	bh = fit(bh, gh, fn, "bh")
	saved = fit(saved, l.Saved, fn, "saved")
	hTM := saved[:(steps+1)*nh]
	if h0 != nil {
		copy(hTM[:nh], fit(h0, nh, fn, "h0"))
	} else {
		clear(hTM[:nh])
	}
	hasH0 := h0 != nil
	// x time-major, so that x_t is a contiguous (n, D) Gemm operand.
	xTM := saved[l.XTM : l.XTM+steps*n*D]
	rnnTimeMajor(xTM, x, n, steps, D)
	// x·W for a chunk of c steps at a time (see spec.RNNChunkElems).
	c := g.Chunk(n)
	xw := func(t int, out []T) {
		if t%c == 0 {
			tn := min(c, steps-t)
			Gemm(false, false, tn*n, gh, D, xTM[t*n*D:(t+tn)*n*D], W, out[:tn*n*gh], false)
		}
	}
	switch g.Cell {
	case SimpleRNN:
		// The recurrent product is computed in place in h_t's hTM block,
		// x_t·W in scr (a chunk of steps); the row kernel leaves h_t in
		// both.
		scr := saved[l.Scr : l.Scr+min(steps, spec.RNNChunkMax)*nh]
		for t := 0; t < steps; t++ {
			hp := hTM[t*nh : (t+1)*nh]
			hc := hTM[(t+1)*nh : (t+2)*nh]
			xw(t, scr)
			xt := scr[(t%c)*nh : (t%c+1)*nh]
			if t > 0 || hasH0 {
				Gemm(false, false, n, H, H, hp, U, hc, false)
			} else {
				clear(hc)
			}
			for r := 0; r < n; r++ {
				rr := r * H
				rnnSimpleFwdRow(xt[rr:rr+H], hc[rr:rr+H], b, bh)
				copy(hs[(r*steps+t)*H:(r*steps+t+1)*H], hc[rr:rr+H])
			}
		}
	case LSTM:
		act := saved[l.Act : l.Act+n*steps*gh]
		scr := saved[l.Scr : l.Scr+n*gh]
		cTM := saved[l.C : l.C+(steps+1)*nh]
		tc := saved[l.TC : l.TC+steps*nh]
		if c0 != nil {
			copy(cTM[:nh], fit(c0, nh, fn, "c0"))
		} else {
			clear(cTM[:nh])
		}
		for t := 0; t < steps; t++ {
			at := act[t*n*gh : (t+1)*n*gh]
			hc := hTM[(t+1)*nh : (t+2)*nh]
			cp := cTM[t*nh : (t+1)*nh]
			cc := cTM[(t+1)*nh : (t+2)*nh]
			tct := tc[t*nh : (t+1)*nh]
			xw(t, act[t*n*gh:])
			if t > 0 || hasH0 {
				Gemm(false, false, n, gh, H, hTM[t*nh:(t+1)*nh], U, scr, false)
			} else {
				clear(scr)
			}
			for r := 0; r < n; r++ {
				rr := r * H
				lstmFwdRow(at[r*gh:(r+1)*gh], scr[r*gh:(r+1)*gh], b, bh,
					cp[rr:rr+H], cc[rr:rr+H], tct[rr:rr+H], hc[rr:rr+H], hs[(r*steps+t)*H:(r*steps+t+1)*H])
			}
		}
	case GRU:
		act := saved[l.Act : l.Act+n*steps*gh]
		scr := saved[l.Scr : l.Scr+n*gh]
		hn := saved[l.HN : l.HN+steps*nh]
		for t := 0; t < steps; t++ {
			at := act[t*n*gh : (t+1)*n*gh]
			hp := hTM[t*nh : (t+1)*nh]
			hc := hTM[(t+1)*nh : (t+2)*nh]
			hnt := hn[t*nh : (t+1)*nh]
			xw(t, act[t*n*gh:])
			if t > 0 || hasH0 {
				Gemm(false, false, n, gh, H, hp, U, scr, false)
			} else {
				clear(scr)
			}
			for r := 0; r < n; r++ {
				rr := r * H
				gruFwdRow(at[r*gh:(r+1)*gh], scr[r*gh:(r+1)*gh], b, bh,
					hp[rr:rr+H], hnt[rr:rr+H], hc[rr:rr+H], hs[(r*steps+t)*H:(r*steps+t+1)*H])
			}
		}
	}
}

// rnnSimpleFwdRow computes h = tanh(a + b + h + bh) for one row, where a
// holds x·W and h holds h_{t-1}·U, and writes it to both a and h. The
// whole vectors of 8 run on the fused kernel f32RNNFwd where available.
func rnnSimpleFwdRow[T Float](a, h, b, bh []T) {
	h = h[:len(a)]
	b = b[:len(a)]
	bh = bh[:len(a)]
	k := rnnSimpleFwdAsm(a, h, b, bh)
	a = a[k:]
	h, b, bh = h[k:][:len(a)], b[k:][:len(a)], bh[k:][:len(a)]
	for j, v := range a {
		a[j] = v + b[j] + h[j] + bh[j]
	}
	rnnTanhRow(a, a)
	copy(h, a)
}

// lstmFwdRow computes one LSTM row: a (4H) holds x·W on entry and the
// gate activations i, f, g, o on return; hu (4H) holds h_{t-1}·U. The
// whole vectors of 8 columns of every gate block run on the fused kernel
// f32LSTMFwd where available; the loops below do the remaining columns
// k ≤ j < H of each block (all of them for float64).
func lstmFwdRow[T Float](a, hu, b, bh, cp, c, tc, h, y []T) {
	H := len(c)
	a = a[:4*H]
	hu = hu[:4*H]
	b = b[:4*H]
	bh = bh[:4*H]
	cp = cp[:H]
	tc = tc[:H]
	h = h[:H]
	y = y[:H]
	k := lstmFwdAsm(a, hu, b, bh, cp, c, tc, h, y)
	if k == H {
		return
	}
	for q := 0; q < 4*H; q += H {
		aq := a[q+k : q+H]
		huq := hu[q+k : q+H][:len(aq)]
		bq := b[q+k : q+H][:len(aq)]
		bhq := bh[q+k : q+H][:len(aq)]
		for j, v := range aq {
			aq[j] = v + bq[j] + huq[j] + bhq[j]
		}
	}
	c, cp, tc, h, y = c[k:], cp[k:], tc[k:], h[k:], y[k:]
	ai := a[k:H][:len(c)]
	af := a[H+k : 2*H][:len(c)]
	ag := a[2*H+k : 3*H][:len(c)]
	ao := a[3*H+k : 4*H][:len(c)]
	rnnSigmoidRow(ai, ai)
	rnnSigmoidRow(af, af)
	rnnTanhRow(ag, ag)
	rnnSigmoidRow(ao, ao)
	for j := range c {
		c[j] = af[j]*cp[j] + ai[j]*ag[j]
	}
	rnnTanhRow(tc, c)
	for j, o := range ao {
		v := o * tc[j]
		h[j] = v
		y[j] = v
	}
}

// gruFwdRow computes one GRU row: a (3H) holds x·W on entry and the
// activations r, z, n on return; hu (3H) holds h_{t-1}·U; hn receives
// h_{t-1}·U_n + bh_n.
func gruFwdRow[T Float](a, hu, b, bh, hp, hn, h, y []T) {
	H := len(h)
	a2 := a[:2*H]
	hu2 := hu[:len(a2)]
	b2 := b[:len(a2)]
	bh2 := bh[:len(a2)]
	for k, v := range a2 {
		a2[k] = v + b2[k] + hu2[k] + bh2[k]
	}
	rnnSigmoidRow(a2, a2)
	hp = hp[:H]
	hn = hn[:H]
	y = y[:H]
	ar := a[:H]
	az := a[H : 2*H][:H]
	an := a[2*H : 3*H][:H]
	hun := hu[2*H : 3*H][:H]
	bn := b[2*H : 3*H][:H]
	bhn := bh[2*H : 3*H][:H]
	for j, r := range ar {
		v := hun[j] + bhn[j]
		hn[j] = v
		an[j] += bn[j] + r*v
	}
	rnnTanhRow(an, an)
	for j, z := range az {
		o := (1-z)*an[j] + z*hp[j]
		h[j] = o
		y[j] = o
	}
}

// RNNFinalState copies the state after the last step of the last
// RNNForward (same g, n, hs and saved) to h (n, H) and, for LSTM, the cell
// state to c (n, H). h or c may be nil when not wanted; c must be nil for
// cells other than LSTM. hs is not read (saved holds the states).
func RNNFinalState[T Float](g RNNGeom, n int, h, c, hs, saved []T) {
	const fn = "RNNFinalState"
	l := rnnLayout(fn, g, n)
	saved = fit(saved, l.Saved, fn, "saved")
	steps, nh := g.T, l.NH
	if h != nil {
		copy(fit(h, nh, fn, "h"), saved[steps*nh:(steps+1)*nh])
	}
	if c != nil {
		if g.Cell != LSTM {
			panic("runtime.RNNFinalState: c must be nil for cell " + g.Cell.String() + " (only lstm has a cell state)")
		}
		copy(fit(c, nh, fn, "c"), saved[l.C+steps*nh:l.C+(steps+1)*nh])
	}
}

// RNNBackward is backpropagation through time over the T steps of the
// last RNNForward with the same g, n, x, W, U and saved (which must be
// unchanged since). dhs (n, T, H) is dL/dhs, and dhT, dcT (n, H) are the
// gradients w.r.t. the final h and (LSTM) c; any of the three may be nil
// for zero. RNNBackward overwrites dx (n, T, D), dh0 (n, H) and dc0 (n, H)
// with the gradients w.r.t. x, h0 and c0 (each may be nil when not
// wanted; with a nil h0 or c0 in the forward pass they are the gradients
// w.r.t. the zero initial state; for cells other than LSTM, dcT is
// ignored and a non-nil dc0 is zeroed), and accumulates (+=) the weight
// gradients into dW (D, G·H), dU (H, G·H), db and dbh (G·H). work holds
// g.WorkSize(n) floats of scratch. x, h0, c0 and hs are not read: saved holds
// copies of x and of the states. Outputs must not overlap inputs or work.
//
// Every step costs one Gemm (dh_{t-1}), every chunk of steps three more
// (dU, dW, dx; see the package notes above). RNNBackward panics if a
// slice is too short and never allocates.
func RNNBackward[T Float](g RNNGeom, n int, dx, dh0, dc0, dW, dU, db, dbh, dhs, dhT, dcT, x, h0, c0, W, U, hs, saved, work []T) {
	const fn = "RNNBackward"
	l := rnnLayout(fn, g, n)
	steps, D, H, gh, nh := g.T, g.D, g.H, l.GH, l.NH
	dW = fit(dW, D*gh, fn, "dW")
	dU = fit(dU, H*gh, fn, "dU")
	db = fit(db, gh, fn, "db")
	dbh = fit(dbh, gh, fn, "dbh")
	fit(x, n*steps*D, fn, "x") // checked only: the backward pass reads the copy in saved
	W = fit(W, D*gh, fn, "W")
	U = fit(U, H*gh, fn, "U")
	saved = fit(saved, l.Saved, fn, "saved")
	work = fit(work, l.Work, fn, "work")
	if dx != nil {
		dx = fit(dx, n*steps*D, fn, "dx")
	}
	if dh0 != nil {
		dh0 = fit(dh0, nh, fn, "dh0")
	}
	if dhs != nil {
		dhs = fit(dhs, n*steps*H, fn, "dhs")
	}
	lstm := g.Cell == LSTM
	if dc0 != nil {
		dc0 = fit(dc0, nh, fn, "dc0")
		if !lstm {
			clear(dc0)
			dc0 = nil
		}
	}

	hTM := saved[:(steps+1)*nh]
	xTM := saved[l.XTM : l.XTM+steps*n*D]
	// dGh and dGx of a chunk of c steps, time-major: the products over
	// x, h and the bias sums take a whole chunk at once.
	c := g.Chunk(n)
	gC := work[l.DGh : l.DGh+c*n*gh]
	gxC := work[l.DGx : l.DGx+c*n*gh]
	dh := work[l.DH : l.DH+nh]
	if dhT != nil {
		copy(dh, fit(dhT, nh, fn, "dhT"))
	} else {
		clear(dh)
	}
	var dc, act, cTM, tc, hn []T
	if g.Cell != SimpleRNN {
		act = saved[l.Act : l.Act+n*steps*gh]
	}
	switch g.Cell {
	case LSTM:
		dc = work[l.DC : l.DC+nh]
		if dcT != nil {
			copy(dc, fit(dcT, nh, fn, "dcT"))
		} else {
			clear(dc)
		}
		cTM = saved[l.C : l.C+(steps+1)*nh]
		tc = saved[l.TC : l.TC+steps*nh]
	case GRU:
		hn = saved[l.HN : l.HN+steps*nh]
	}
	// Uᵀ and Wᵀ, so that dh_{t-1} and dx_t are plain products (faster than
	// products against a transposed operand: 1.3 to 1.45× for the seed
	// LSTM's shapes).
	ut := work[l.UT : l.UT+H*gh]
	Transpose(ut, U, H, gh)
	var dhsTM []T
	if dhs != nil {
		dhsTM = work[l.DHs : l.DHs+steps*nh]
		rnnTimeMajor(dhsTM, dhs, n, steps, H)
	}
	var wt, dxs []T
	if dx != nil {
		wt = work[l.WT : l.WT+D*gh]
		Transpose(wt, W, D, gh)
		dxs = work[l.DXs : l.DXs+c*n*D]
	}

	for t := steps - 1; t >= 0; t-- {
		if dhsTM != nil {
			rnnAddTo(dh, dhsTM[t*nh:(t+1)*nh])
		}
		// Step t is step j of the chunk that starts at t0.
		t0 := t - t%c
		j := t - t0
		gt := gC[j*n*gh : (j+1)*n*gh]
		gxt := gxC[j*n*gh : (j+1)*n*gh]
		for r := 0; r < n; r++ {
			rr := r * H
			dhr := dh[rr : rr+H]
			ghr := gt[r*gh : (r+1)*gh]
			gxr := gxt[r*gh : (r+1)*gh]
			switch g.Cell {
			case SimpleRNN:
				rnnSimpleBwdRow(dhr, hTM[(t+1)*nh+rr:(t+1)*nh+rr+H], ghr, gxr)
			case LSTM:
				lstmBwdRow(dhr, dc[rr:rr+H], act[(t*n+r)*gh:(t*n+r+1)*gh],
					cTM[t*nh+rr:t*nh+rr+H], tc[t*nh+rr:t*nh+rr+H], ghr, gxr)
			case GRU:
				gruBwdRow(dhr, act[(t*n+r)*gh:(t*n+r+1)*gh], hn[t*nh+rr:t*nh+rr+H],
					hTM[t*nh+rr:t*nh+rr+H], ghr, gxr)
			}
		}
		if j == 0 {
			// The chunk's share of the weight and input gradients, once
			// its last step (t0) is done.
			tn := min(c, steps-t0)
			gc, gxc := gC[:tn*n*gh], gxC[:tn*n*gh]
			Gemm(true, false, H, gh, tn*n, hTM[t0*nh:(t0+tn)*nh], gc, dU, true)
			Gemm(true, false, D, gh, tn*n, xTM[t0*n*D:(t0+tn)*n*D], gxc, dW, true)
			if dx != nil {
				Gemm(false, false, tn*n, D, gh, gxc, wt, dxs[:tn*n*D], false)
				for s := range tn {
					for r := 0; r < n; r++ {
						o := r*steps + t0 + s
						copy(dx[o*D:(o+1)*D], dxs[(s*n+r)*D:(s*n+r+1)*D])
					}
				}
			}
			if g.Cell == GRU {
				rnnColSum(db, gxc)
				rnnColSum(dbh, gc)
			} else {
				rnnColSum2(db, dbh, gxc)
			}
		}
		// dL/dh_{t-1} = dGh_t·Uᵀ (+ the direct z⊙dh term GRU's row
		// loop left in dh).
		if t > 0 || dh0 != nil {
			Gemm(false, false, n, H, gh, gt, ut, dh, g.Cell == GRU)
		}
	}
	if dh0 != nil {
		copy(dh0, dh)
	}
	if dc0 != nil {
		copy(dc0, dc)
	}
}

// rnnTimeMajor copies the batch-major (n, T, w) src to the time-major
// (T, n, w) dst.
func rnnTimeMajor[T Float](dst, src []T, n, steps, w int) {
	dst = dst[:n*steps*w]
	src = src[:n*steps*w]
	if w == 1 {
		Transpose(dst, src, n, steps)
		return
	}
	for r := range n {
		for t := range steps {
			copy(dst[(t*n+r)*w:(t*n+r+1)*w], src[(r*steps+t)*w:(r*steps+t+1)*w])
		}
	}
}

// rnnAddTo computes dst += src over len(dst).
func rnnAddTo[T Float](dst, src []T) {
	src = src[:len(dst)]
	k := binaryAsm(Add, dst, dst, src)
	dst = dst[k:]
	src = src[k:][:len(dst)]
	for j, v := range src {
		dst[j] += v
	}
}

// rnnColSum adds the column sums of the rows of m (len(out) columns) to out,
// row after row. The whole vectors of 8 columns are summed by SumRows'
// kernel (scale 1: the same additions in the same order).
func rnnColSum[T Float](out, m []T) {
	c := len(out)
	k := 0
	if rows := len(m) / c; rows > 0 {
		k = sumRowsAsm(out, m, rows, c, 1)
	}
	for o := 0; o+c <= len(m); o += c {
		rnnAddTo(out[k:], m[o+k:o+c])
	}
}

// rnnColSum2 adds the column sums of m to both a and b, each row after
// row; on amd64 the whole vectors of 8 columns in one pass over m.
func rnnColSum2[T Float](a, b, m []T) {
	c := len(a)
	b = b[:c]
	k := 0
	if rows := len(m) / c; rows > 0 {
		k = colSum2Asm(a, b, m[:rows*c], rows, c)
	}
	a, b = a[k:], b[k:]
	for o := 0; o+c <= len(m); o += c {
		row := m[o+k : o+c][:len(a)]
		for j, v := range row {
			a[j] += v
			b[j] += v
		}
	}
}

// rnnSimpleBwdRow: dGh = dGx = dh⊙(1-h²).
func rnnSimpleBwdRow[T Float](dh, h, gh, gx []T) {
	h = h[:len(dh)]
	gh = gh[:len(dh)]
	gx = gx[:len(dh)]
	k := rnnSimpleBwdAsm(dh, h, gh, gx)
	dh = dh[k:]
	h, gh, gx = h[k:][:len(dh)], gh[k:][:len(dh)], gx[k:][:len(dh)]
	for j, d := range dh {
		v := h[j]
		g := d * (1 - v*v)
		gh[j] = g
		gx[j] = g
	}
}

// lstmBwdRow computes the pre-activation gradients of one LSTM row from
// dh = dL/dh_t and dc = dL/dc_t (carried from step t+1), and leaves
// dL/dc_{t-1} = dc_total⊙f in dc. The whole vectors of 8 columns run on
// the kernel f32LSTMBwd (bit-identical) where available, the rest here.
func lstmBwdRow[T Float](dh, dc, a, cp, tc, gh, gx []T) {
	H := len(dh)
	dc = dc[:H]
	cp = cp[:H]
	tc = tc[:H]
	a = a[:4*H]
	gh = gh[:4*H]
	gx = gx[:4*H]
	k := max(lstmBwdAsm(dh, dc, a, cp, tc, gh, gx), 0)
	ai := a[:H]
	af := a[H : 2*H][:H]
	ag := a[2*H : 3*H][:H]
	ao := a[3*H : 4*H][:H]
	hi := gh[:H]
	hf := gh[H : 2*H][:H]
	hg := gh[2*H : 3*H][:H]
	ho := gh[3*H : 4*H][:H]
	xi := gx[:H]
	xf := gx[H : 2*H][:H]
	xg := gx[2*H : 3*H][:H]
	xo := gx[3*H : 4*H][:H]
	for j := k; j < len(dh); j++ {
		d := dh[j]
		i, f, g, o, tv := ai[j], af[j], ag[j], ao[j], tc[j]
		c := dc[j] + d*o*(1-tv*tv)
		dc[j] = c * f
		vi := c * g * i * (1 - i)
		vf := c * cp[j] * f * (1 - f)
		vg := c * i * (1 - g*g)
		vo := d * tv * o * (1 - o)
		hi[j], hf[j], hg[j], ho[j] = vi, vf, vg, vo
		xi[j], xf[j], xg[j], xo[j] = vi, vf, vg, vo
	}
}

// gruBwdRow computes the pre-activation gradients of one GRU row from
// dh = dL/dh_t and leaves the direct part z⊙dh of dL/dh_{t-1} in dh.
func gruBwdRow[T Float](dh, a, hn, hp, gh, gx []T) {
	H := len(dh)
	hn = hn[:H]
	hp = hp[:H]
	ar := a[:H]
	az := a[H : 2*H][:H]
	an := a[2*H : 3*H][:H]
	hr := gh[:H]
	hz := gh[H : 2*H][:H]
	hN := gh[2*H : 3*H][:H]
	xr := gx[:H]
	xz := gx[H : 2*H][:H]
	xn := gx[2*H : 3*H][:H]
	for j, d := range dh {
		r, z, nv := ar[j], az[j], an[j]
		dn := d * (1 - z) * (1 - nv*nv)
		dz := d * (hp[j] - nv) * z * (1 - z)
		dr := dn * hn[j] * r * (1 - r)
		hr[j], xr[j] = dr, dr
		hz[j], xz[j] = dz, dz
		xn[j] = dn
		hN[j] = dn * r
		dh[j] = d * z
	}
}
