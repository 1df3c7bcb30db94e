package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the recurrent kernels (prefixed rn): the forward pass against
// a plain per-step reference, BPTT against central finite differences,
// guard bands, allocations and panics. RTRL tests are in rtrl_test.go.

var rnCells = []RNNCell{SimpleRNN, LSTM, GRU}

// rnSizes are (n, T, D, H) triples, with T = 1 and odd sizes.
var rnSizes = [][4]int{
	{1, 1, 1, 1}, {2, 1, 3, 5}, {3, 4, 2, 7}, {1, 7, 3, 3}, {5, 3, 6, 4}, {4, 5, 9, 17}, {2, 2, 1, 33},
}

// rnParams holds the inputs of one layer call in float64.
type rnParams struct {
	x, h0, c0, W, U, b, bh []float64
}

func rnRandF64(r *rand.Rand, n int, scale float64) []float64 {
	return ktRand[float64](r, n, scale)
}

func rnGen(r *rand.Rand, g RNNGeom, n int) rnParams {
	gh := g.Cell.Gates() * g.H
	ws := 1.2 / math.Sqrt(float64(g.D))
	us := 1.2 / math.Sqrt(float64(g.H))
	return rnParams{
		x:  rnRandF64(r, n*g.T*g.D, 1),
		h0: rnRandF64(r, n*g.H, 0.8),
		c0: rnRandF64(r, n*g.H, 0.8),
		W:  rnRandF64(r, g.D*gh, ws),
		U:  rnRandF64(r, g.H*gh, us),
		b:  rnRandF64(r, gh, 0.5),
		bh: rnRandF64(r, gh, 0.5),
	}
}

func rnConv[T Float](s []float64) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = T(v)
	}
	return out
}

func rnSig(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// rnRef is the straightforward per-step reference: it returns hs
// (n, T, H) and the final h and c (n, H). Nil h0/c0 mean zeros.
func rnRef(g RNNGeom, n int, p rnParams, h0, c0 []float64) (hs, hT, cT []float64) {
	T, D, H := g.T, g.D, g.H
	gh := g.Cell.Gates() * H
	hs = make([]float64, n*T*H)
	hT = make([]float64, n*H)
	cT = make([]float64, n*H)
	for s := 0; s < n; s++ {
		h := make([]float64, H)
		c := make([]float64, H)
		if h0 != nil {
			copy(h, h0[s*H:(s+1)*H])
		}
		if c0 != nil && g.Cell == LSTM {
			copy(c, c0[s*H:(s+1)*H])
		}
		for t := 0; t < T; t++ {
			xt := p.x[(s*T+t)*D : (s*T+t+1)*D]
			a := make([]float64, gh)
			rr := make([]float64, gh)
			for k := 0; k < gh; k++ {
				a[k] = p.b[k]
				for d := 0; d < D; d++ {
					a[k] += xt[d] * p.W[d*gh+k]
				}
				rr[k] = p.bh[k]
				for j := 0; j < H; j++ {
					rr[k] += h[j] * p.U[j*gh+k]
				}
			}
			nh := make([]float64, H)
			for j := 0; j < H; j++ {
				switch g.Cell {
				case SimpleRNN:
					nh[j] = math.Tanh(a[j] + rr[j])
				case LSTM:
					i := rnSig(a[j] + rr[j])
					f := rnSig(a[H+j] + rr[H+j])
					gg := math.Tanh(a[2*H+j] + rr[2*H+j])
					o := rnSig(a[3*H+j] + rr[3*H+j])
					c[j] = f*c[j] + i*gg
					nh[j] = o * math.Tanh(c[j])
				case GRU:
					r := rnSig(a[j] + rr[j])
					z := rnSig(a[H+j] + rr[H+j])
					nn := math.Tanh(a[2*H+j] + r*rr[2*H+j])
					nh[j] = (1-z)*nn + z*h[j]
				}
			}
			h = nh
			copy(hs[(s*T+t)*H:], h)
		}
		copy(hT[s*H:], h)
		copy(cT[s*H:], c)
	}
	return hs, hT, cT
}

func rnName(g RNNGeom, n int, init bool) string {
	return fmt.Sprintf("%v/n%d_T%d_D%d_H%d/init=%v", g.Cell, n, g.T, g.D, g.H, init)
}

// rnForward runs RNNForward and RNNFinalState on guarded buffers, checks
// the guards and returns hs, the final h and (LSTM) c, and saved.
func rnForward[T Float](t *testing.T, name string, g RNNGeom, n int, p rnParams, init bool) (hs, hT, cT, saved []T) {
	t.Helper()
	var h0, c0 []T
	if init {
		h0 = rnConv[T](p.h0)
		c0 = rnConv[T](p.c0)
	}
	hsFull, hs := ktBuf[T](n * g.T * g.H)
	svFull, saved := ktBuf[T](g.SavedSize(n))
	hFull, hT := ktBuf[T](n * g.H)
	cFull, cT := ktBuf[T](n * g.H)
	RNNForward(g, n, hs, rnConv[T](p.x), h0, c0, rnConv[T](p.W), rnConv[T](p.U), rnConv[T](p.b), rnConv[T](p.bh), saved)
	if g.Cell == LSTM {
		RNNFinalState(g, n, hT, cT, hs, saved)
	} else {
		RNNFinalState(g, n, hT, nil, hs, saved)
	}
	ktGuardsOK(t, name+" hs", hsFull)
	ktGuardsOK(t, name+" saved", svFull)
	ktGuardsOK(t, name+" hT", hFull)
	ktGuardsOK(t, name+" cT", cFull)
	return hs, hT, cT, saved
}

func rnTestForward[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tol := 1e-12
	if ktEps[T]() > 1e-10 {
		tol = 2e-5
	}
	for _, cell := range rnCells {
		for _, sz := range rnSizes {
			for _, init := range []bool{false, true} {
				n := sz[0]
				g := RNNGeom{Cell: cell, T: sz[1], D: sz[2], H: sz[3]}
				name := rnName(g, n, init)
				p := rnGen(r, g, n)
				// The reference sees exactly the T-rounded inputs.
				q := rnParams{
					x: ktF64(rnConv[T](p.x)), h0: ktF64(rnConv[T](p.h0)), c0: ktF64(rnConv[T](p.c0)),
					W: ktF64(rnConv[T](p.W)), U: ktF64(rnConv[T](p.U)), b: ktF64(rnConv[T](p.b)), bh: ktF64(rnConv[T](p.bh)),
				}
				var h0, c0 []float64
				if init {
					h0, c0 = q.h0, q.c0
				}
				wantHs, wantH, wantC := rnRef(g, n, q, h0, c0)
				hs, hT, cT, _ := rnForward[T](t, name, g, n, q, init)
				ktClose(t, name+" hs", hs, wantHs, tol)
				ktClose(t, name+" hT", hT, wantH, tol)
				if cell == LSTM {
					ktClose(t, name+" cT", cT, wantC, tol)
				}
			}
		}
	}
}

func TestRNNForward(t *testing.T) { ktRun(t, rnTestForward[float32], rnTestForward[float64]) }

// TestRNNForwardF32MatchesF64 runs the same float32-representable inputs
// through both instantiations.
func TestRNNForwardF32MatchesF64(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, cell := range rnCells {
		g := RNNGeom{Cell: cell, T: 9, D: 5, H: 11}
		n := 3
		p := rnGen(r, g, n)
		for _, s := range [][]float64{p.x, p.h0, p.c0, p.W, p.U, p.b, p.bh} {
			for i := range s {
				s[i] = float64(float32(s[i]))
			}
		}
		name := rnName(g, n, true)
		hs32, h32, c32, _ := rnForward[float32](t, name, g, n, p, true)
		hs64, h64, c64, _ := rnForward[float64](t, name, g, n, p, true)
		ktClose(t, name+" hs", hs32, hs64, 1e-5)
		ktClose(t, name+" hT", h32, h64, 1e-5)
		if cell == LSTM {
			ktClose(t, name+" cT", c32, c64, 1e-5)
		}
	}
}

func rnDot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// rnLoss is L = ⟨hs, R⟩ + ⟨hT, RH⟩ (+ ⟨cT, RC⟩ for LSTM) via the reference.
func rnLoss(g RNNGeom, n int, p rnParams, R, RH, RC []float64) float64 {
	hs, hT, cT := rnRef(g, n, p, p.h0, p.c0)
	L := rnDot(hs, R) + rnDot(hT, RH)
	if g.Cell == LSTM {
		L += rnDot(cT, RC)
	}
	return L
}

// rnGrads is the output of RNNBackward.
type rnGrads struct {
	dx, dh0, dc0, dW, dU, db, dbh []float64
}

// rnBackward runs RNNForward + RNNBackward in float64 on guarded buffers,
// with the accumulated gradients starting from random values, and
// returns the gradients (accumulation start subtracted).
func rnBackward(t *testing.T, name string, r *rand.Rand, g RNNGeom, n int, p rnParams, init bool, R, RH, RC []float64) rnGrads {
	t.Helper()
	gh := g.Cell.Gates() * g.H
	var h0, c0 []float64
	if init {
		h0, c0 = p.h0, p.c0
	}
	hs := make([]float64, n*g.T*g.H)
	saved := make([]float64, g.SavedSize(n))
	RNNForward(g, n, hs, p.x, h0, c0, p.W, p.U, p.b, p.bh, saved)
	buf := func(size int, acc bool) (full, mid, start []float64) {
		full, mid = ktBuf[float64](size)
		if acc {
			start = rnRandF64(r, size, 1)
			copy(mid, start)
		}
		return
	}
	dxF, dx, _ := buf(n*g.T*g.D, false)
	dh0F, dh0, _ := buf(n*g.H, false)
	dc0F, dc0, _ := buf(n*g.H, false)
	dWF, dW, dW0 := buf(g.D*gh, true)
	dUF, dU, dU0 := buf(g.H*gh, true)
	dbF, db, db0 := buf(gh, true)
	dbhF, dbh, dbh0 := buf(gh, true)
	wkF, work, _ := buf(g.WorkSize(n), false)
	savedCopy := append([]float64(nil), saved...)
	RNNBackward(g, n, dx, dh0, dc0, dW, dU, db, dbh, R, RH, RC, p.x, h0, c0, p.W, p.U, hs, saved, work)
	for nm, f := range map[string][]float64{"dx": dxF, "dh0": dh0F, "dc0": dc0F, "dW": dWF, "dU": dUF, "db": dbF, "dbh": dbhF, "work": wkF} {
		ktGuardsOK(t, name+" "+nm, f)
	}
	for i := range saved {
		if saved[i] != savedCopy[i] {
			t.Fatalf("%s: RNNBackward modified saved[%d]", name, i)
		}
	}
	sub := func(a, b []float64) []float64 {
		out := make([]float64, len(a))
		for i := range a {
			out[i] = a[i] - b[i]
		}
		return out
	}
	if g.Cell != LSTM {
		for i, v := range dc0 {
			if v != 0 {
				t.Fatalf("%s: dc0[%d] = %v for a cell without c, want 0", name, i, v)
			}
		}
	}
	return rnGrads{dx: dx, dh0: dh0, dc0: dc0, dW: sub(dW, dW0), dU: sub(dU, dU0), db: sub(db, db0), dbh: sub(dbh, dbh0)}
}

// rnRelErr is |a-b| / max(|a|, |b|, floor). The floor (1e-3 in the
// tests) keeps the rounding error of L, about 1e-16·|L|/ε ≈ 1e-10
// absolute, from counting as a relative error on near-zero components.
func rnRelErr(a, b, floor float64) float64 {
	return math.Abs(a-b) / max(math.Abs(a), math.Abs(b), floor)
}

func TestRNNBackwardFiniteDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	// T = 19: the products over x run in a chunk of 16 steps and one of 3.
	sizes := [][4]int{{1, 1, 1, 1}, {2, 1, 3, 2}, {3, 4, 2, 3}, {2, 5, 3, 4}, {2, 19, 2, 3}}
	const tol = 1e-6
	worst := 0.0
	for _, cell := range rnCells {
		for _, sz := range sizes {
			for _, init := range []bool{false, true} {
				n := sz[0]
				g := RNNGeom{Cell: cell, T: sz[1], D: sz[2], H: sz[3]}
				name := rnName(g, n, init)
				p := rnGen(r, g, n)
				if !init {
					// The nil-state gradients are those w.r.t. a zero state.
					clear(p.h0)
					clear(p.c0)
				}
				R := rnRandF64(r, n*g.T*g.H, 1)
				RH := rnRandF64(r, n*g.H, 1)
				RC := rnRandF64(r, n*g.H, 1)
				gr := rnBackward(t, name, r, g, n, p, init, R, RH, RC)
				params := []struct {
					nm   string
					v, d []float64
				}{
					{"W", p.W, gr.dW}, {"U", p.U, gr.dU}, {"b", p.b, gr.db}, {"bh", p.bh, gr.dbh},
					{"x", p.x, gr.dx}, {"h0", p.h0, gr.dh0},
				}
				if cell == LSTM {
					params = append(params, struct {
						nm   string
						v, d []float64
					}{"c0", p.c0, gr.dc0})
				}
				fd := func(v []float64, i int) float64 {
					old := v[i]
					eps := 1e-6 * max(1, math.Abs(old))
					v[i] = old + eps
					lp := rnLoss(g, n, p, R, RH, RC)
					v[i] = old - eps
					lm := rnLoss(g, n, p, R, RH, RC)
					v[i] = old
					return (lp - lm) / (2 * eps)
				}
				for _, pr := range params {
					idx := []int{0, len(pr.v) - 1}
					for k := 0; k < 4; k++ {
						idx = append(idx, r.IntN(len(pr.v)))
					}
					for _, i := range idx {
						want := fd(pr.v, i)
						e := rnRelErr(pr.d[i], want, 1e-3)
						worst = max(worst, e)
						if e > tol {
							t.Errorf("%s: d%s[%d] = %.12g, finite difference %.12g (rel err %.2g)", name, pr.nm, i, pr.d[i], want, e)
						}
					}
				}
				// Random directions over all parameters at once.
				for k := 0; k < 3; k++ {
					dirs := make([][]float64, len(params))
					var an float64
					for j, pr := range params {
						dirs[j] = rnRandF64(r, len(pr.v), 1)
						an += rnDot(dirs[j], pr.d)
					}
					const eps = 1e-6
					step := func(s float64) {
						for j, pr := range params {
							for i := range pr.v {
								pr.v[i] += s * dirs[j][i]
							}
						}
					}
					orig := make([][]float64, len(params))
					for j, pr := range params {
						orig[j] = append([]float64(nil), pr.v...)
					}
					step(eps)
					lp := rnLoss(g, n, p, R, RH, RC)
					for j, pr := range params {
						copy(pr.v, orig[j])
					}
					step(-eps)
					lm := rnLoss(g, n, p, R, RH, RC)
					for j, pr := range params {
						copy(pr.v, orig[j])
					}
					want := (lp - lm) / (2 * eps)
					e := rnRelErr(an, want, 1e-3)
					worst = max(worst, e)
					if e > tol {
						t.Errorf("%s: directional derivative %d = %.12g, finite difference %.12g (rel err %.2g)", name, k, an, want, e)
					}
				}
			}
		}
	}
	t.Logf("worst relative error vs finite differences: %.2g", worst)
}

// TestRNNBackwardOptionalArgs checks that nil dx/dh0/dc0 and nil
// dhs/dhT/dcT (zeros) give the same weight gradients as explicit ones.
func TestRNNBackwardOptionalArgs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, cell := range rnCells {
		g := RNNGeom{Cell: cell, T: 4, D: 3, H: 5}
		n := 3
		p := rnGen(r, g, n)
		gh := g.Cell.Gates() * g.H
		hs := make([]float64, n*g.T*g.H)
		saved := make([]float64, g.SavedSize(n))
		work := make([]float64, g.WorkSize(n))
		RNNForward(g, n, hs, p.x, p.h0, p.c0, p.W, p.U, p.b, p.bh, saved)
		R := rnRandF64(r, n*g.T*g.H, 1)
		zeroT := make([]float64, n*g.H)
		run := func(all bool, dhs, dhT, dcT []float64) [4][]float64 {
			dW := make([]float64, g.D*gh)
			dU := make([]float64, g.H*gh)
			db := make([]float64, gh)
			dbh := make([]float64, gh)
			if all {
				dx := make([]float64, n*g.T*g.D)
				dh0 := make([]float64, n*g.H)
				dc0 := make([]float64, n*g.H)
				RNNBackward(g, n, dx, dh0, dc0, dW, dU, db, dbh, dhs, dhT, dcT, p.x, p.h0, p.c0, p.W, p.U, hs, saved, work)
			} else {
				RNNBackward(g, n, nil, nil, nil, dW, dU, db, dbh, dhs, dhT, dcT, p.x, nil, nil, p.W, p.U, nil, saved, work)
			}
			return [4][]float64{dW, dU, db, dbh}
		}
		a := run(true, R, zeroT, zeroT)
		b := run(false, R, nil, nil)
		for k := range a {
			for i := range a[k] {
				if a[k][i] != b[k][i] {
					t.Fatalf("%v: weight gradient %d[%d] differs with nil arguments: %v vs %v", cell, k, i, a[k][i], b[k][i])
				}
			}
		}
	}
}

// TestRNNBackwardNilDhs compares dhs = nil with dhs = 0.
func TestRNNBackwardNilDhs(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, cell := range rnCells {
		g := RNNGeom{Cell: cell, T: 3, D: 2, H: 4}
		n := 2
		p := rnGen(r, g, n)
		gh := g.Cell.Gates() * g.H
		hs := make([]float64, n*g.T*g.H)
		saved := make([]float64, g.SavedSize(n))
		work := make([]float64, g.WorkSize(n))
		RNNForward(g, n, hs, p.x, p.h0, p.c0, p.W, p.U, p.b, p.bh, saved)
		RH := rnRandF64(r, n*g.H, 1)
		RC := rnRandF64(r, n*g.H, 1)
		var out [2][]float64
		for k, dhs := range [][]float64{make([]float64, n*g.T*g.H), nil} {
			o := make([]float64, n*g.T*g.D+2*n*g.H+g.D*gh+g.H*gh+2*gh)
			dx := o[:n*g.T*g.D]
			dh0 := o[len(dx) : len(dx)+n*g.H]
			dc0 := o[len(dx)+n*g.H : len(dx)+2*n*g.H]
			w := o[len(dx)+2*n*g.H:]
			RNNBackward(g, n, dx, dh0, dc0, w[:g.D*gh], w[g.D*gh:g.D*gh+g.H*gh], w[g.D*gh+g.H*gh:g.D*gh+g.H*gh+gh], w[g.D*gh+g.H*gh+gh:], dhs, RH, RC, p.x, p.h0, p.c0, p.W, p.U, hs, saved, work)
			out[k] = o
		}
		for i := range out[0] {
			if out[0][i] != out[1][i] {
				t.Fatalf("%v: dhs=nil differs from dhs=0 at %d: %v vs %v", cell, i, out[1][i], out[0][i])
			}
		}
	}
}

func TestRNNSizes(t *testing.T) {
	for _, c := range []struct {
		cell        RNNCell
		saved, work int
		gates       int
		name        string
	}{
		// n = 2, T = 5, D = 7, H = 3, C = min(T, 16) = 5. saved:
		// n·H·(T+1+C), n·H·(7T+6) or n·H·(5T+4), plus n·T·D; work:
		// n·(2·C·G·H + H + C·D) + G·H·(H + D) + n·T·H, plus n·H for LSTM.
		{SimpleRNN, 2*3*(5+1+5) + 2*5*7, 2*(2*5*3+3+5*7) + 3*(3+7) + 2*5*3, 1, "simple_rnn"},
		{LSTM, 2*3*(7*5+6) + 2*5*7, 2*(2*5*12+3+5*7) + 12*(3+7) + 2*5*3 + 2*3, 4, "lstm"},
		{GRU, 2*3*(5*5+4) + 2*5*7, 2*(2*5*9+3+5*7) + 9*(3+7) + 2*5*3, 3, "gru"},
	} {
		g := RNNGeom{Cell: c.cell, T: 5, D: 7, H: 3}
		if got := g.SavedSize(2); got != c.saved {
			t.Errorf("%v SavedSize = %d, want %d", c.cell, got, c.saved)
		}
		if got := g.WorkSize(2); got != c.work {
			t.Errorf("%v WorkSize = %d, want %d", c.cell, got, c.work)
		}
		if c.cell.Gates() != c.gates || c.cell.String() != c.name {
			t.Errorf("%v: Gates %d String %q", c.cell, c.cell.Gates(), c.cell.String())
		}
	}
	if s := RNNCell(9).String(); s != "RNNCell(9)" {
		t.Errorf("unknown cell String = %q", s)
	}
}

func TestRNNZeroAllocs(t *testing.T) {
	for _, cell := range rnCells {
		g := RNNGeom{Cell: cell, T: 6, D: 5, H: 8}
		n := 4
		gh := g.Cell.Gates() * g.H
		r := rand.New(rand.NewPCG(11, 12))
		x := ktRand[float32](r, n*g.T*g.D, 1)
		h0 := ktRand[float32](r, n*g.H, 1)
		c0 := ktRand[float32](r, n*g.H, 1)
		W := ktRand[float32](r, g.D*gh, 0.3)
		U := ktRand[float32](r, g.H*gh, 0.3)
		b := ktRand[float32](r, gh, 0.3)
		bh := ktRand[float32](r, gh, 0.3)
		hs := make([]float32, n*g.T*g.H)
		saved := make([]float32, g.SavedSize(n))
		work := make([]float32, g.WorkSize(n))
		dx := make([]float32, len(x))
		dh0 := make([]float32, len(h0))
		dc0 := make([]float32, len(c0))
		dW := make([]float32, len(W))
		dU := make([]float32, len(U))
		db := make([]float32, gh)
		dbh := make([]float32, gh)
		hT := make([]float32, n*g.H)
		dhs := ktRand[float32](r, len(hs), 1)
		fs := map[string]func(){
			"RNNForward":    func() { RNNForward(g, n, hs, x, h0, c0, W, U, b, bh, saved) },
			"RNNFinalState": func() { RNNFinalState(g, n, hT, nil, hs, saved) },
			"RNNBackward": func() {
				RNNBackward(g, n, dx, dh0, dc0, dW, dU, db, dbh, dhs, hT, hT, x, h0, c0, W, U, hs, saved, work)
			},
		}
		for name, f := range fs {
			if a := testing.AllocsPerRun(5, f); a != 0 {
				t.Errorf("%v %s allocates %v times per call", cell, name, a)
			}
		}
	}
}

func TestRNNPanics(t *testing.T) {
	g := RNNGeom{Cell: LSTM, T: 2, D: 3, H: 4}
	n := 2
	gh := 16
	mk := func(k int) []float64 { return make([]float64, k) }
	short := func(k int) []float64 { return make([]float64, k+64)[:k-1] }
	hs, x, W, U, b := mk(n*2*4), mk(n*2*3), mk(3*gh), mk(4*gh), mk(gh)
	saved, work := mk(g.SavedSize(n)), mk(g.WorkSize(n))
	cases := map[string]func(){
		"fwd hs":       func() { RNNForward(g, n, short(len(hs)), x, nil, nil, W, U, b, b, saved) },
		"fwd x":        func() { RNNForward(g, n, hs, short(len(x)), nil, nil, W, U, b, b, saved) },
		"fwd h0":       func() { RNNForward(g, n, hs, x, short(n*4), nil, W, U, b, b, saved) },
		"fwd c0":       func() { RNNForward(g, n, hs, x, nil, short(n*4), W, U, b, b, saved) },
		"fwd U":        func() { RNNForward(g, n, hs, x, nil, nil, W, short(len(U)), b, b, saved) },
		"fwd bh":       func() { RNNForward(g, n, hs, x, nil, nil, W, U, b, short(gh), saved) },
		"fwd saved":    func() { RNNForward(g, n, hs, x, nil, nil, W, U, b, b, short(len(saved))) },
		"fwd geometry": func() { RNNForward(RNNGeom{Cell: LSTM, T: 0, D: 3, H: 4}, n, hs, x, nil, nil, W, U, b, b, saved) },
		"fwd cell":     func() { RNNForward(RNNGeom{Cell: 7, T: 2, D: 3, H: 4}, n, hs, x, nil, nil, W, U, b, b, saved) },
		"bwd work": func() {
			RNNBackward(g, n, nil, nil, nil, W, U, b, b, hs, nil, nil, x, nil, nil, W, U, hs, saved, short(len(work)))
		},
		"bwd dx": func() {
			RNNBackward(g, n, short(len(x)), nil, nil, W, U, b, b, hs, nil, nil, x, nil, nil, W, U, hs, saved, work)
		},
		"bwd dhs": func() {
			RNNBackward(g, n, nil, nil, nil, W, U, b, b, short(len(hs)), nil, nil, x, nil, nil, W, U, hs, saved, work)
		},
		"bwd dcT": func() {
			RNNBackward(g, n, nil, nil, nil, W, U, b, b, hs, nil, short(n*4), x, nil, nil, W, U, hs, saved, work)
		},
		"bwd dW": func() {
			RNNBackward(g, n, nil, nil, nil, short(len(W)), U, b, b, hs, nil, nil, x, nil, nil, W, U, hs, saved, work)
		},
		"final c for gru": func() {
			gg := RNNGeom{Cell: GRU, T: 2, D: 3, H: 4}
			RNNFinalState(gg, n, mk(n*4), mk(n*4), nil, mk(gg.SavedSize(n)))
		},
		"final saved": func() { RNNFinalState(g, n, mk(n*4), nil, nil, short(len(saved))) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// BenchmarkRNN times float32 forward and forward+backward passes.
func BenchmarkRNN(b *testing.B) {
	for _, c := range []struct {
		g RNNGeom
		n int
	}{
		{RNNGeom{Cell: LSTM, T: 28, D: 28, H: 128}, 32},
		// The seed LSTM's two layers.
		{RNNGeom{Cell: LSTM, T: 100, D: 1, H: 128}, 32},
		{RNNGeom{Cell: LSTM, T: 100, D: 128, H: 64}, 32},
		{RNNGeom{Cell: SimpleRNN, T: 100, D: 1, H: 128}, 32},
		{RNNGeom{Cell: GRU, T: 28, D: 28, H: 128}, 32},
	} {
		g, n := c.g, c.n
		gh := g.Cell.Gates() * g.H
		r := rand.New(rand.NewPCG(13, 14))
		x := ktRand[float32](r, n*g.T*g.D, 1)
		W := ktRand[float32](r, g.D*gh, 0.1)
		U := ktRand[float32](r, g.H*gh, 0.1)
		bb := ktRand[float32](r, gh, 0.1)
		hs := make([]float32, n*g.T*g.H)
		saved := make([]float32, g.SavedSize(n))
		work := make([]float32, g.WorkSize(n))
		dx := make([]float32, len(x))
		dW := make([]float32, len(W))
		dU := make([]float32, len(U))
		db := make([]float32, gh)
		dbh := make([]float32, gh)
		dhs := ktRand[float32](r, len(hs), 1)
		name := fmt.Sprintf("%v_T%d_D%d_H%d_n%d", g.Cell, g.T, g.D, g.H, n)
		b.Run(name+"/fwd", func(b *testing.B) {
			for b.Loop() {
				RNNForward(g, n, hs, x, nil, nil, W, U, bb, bb, saved)
			}
		})
		b.Run(name+"/fwd+bwd", func(b *testing.B) {
			for b.Loop() {
				RNNForward(g, n, hs, x, nil, nil, W, U, bb, bb, saved)
				RNNBackward(g, n, dx, nil, nil, dW, dU, db, dbh, dhs, nil, nil, x, nil, nil, W, U, hs, saved, work)
			}
		})
	}
}

// TestRNNActivations32 checks the float32 sigmoid and tanh against
// float32(math.*) to within one ulp for the Go loop and two for the
// sigmoid of the vector kernel (which does the whole vectors of 8 where
// the CPU has AVX2 and FMA; elementwise_act_amd64_test.go measures it
// over all float32 values), including tiny, huge, infinite and NaN
// inputs; float64 must equal math exactly.
func TestRNNActivations32(t *testing.T) {
	src := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 1e-30, 1e-12, -1e-8, 3e-6, 1e-5, 0.0054, 0.0108,
		0.3, 1, 5, 9, 10, 17, 50, 88, 104, 110, 200, -200, -104, -88,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.MaxFloat32, -math.MaxFloat32}
	for x := float32(-30); x < 30; x += 0.000731 {
		src = append(src, x)
	}
	for x := float32(1e-30); x < 200; x *= 1.0173 {
		src = append(src, x, -x)
	}
	ulps := func(a, b float32) int64 {
		ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
		if ia>>31 != ib>>31 { // opposite signs: distance through zero
			return (ia & 0x7fffffff) + (ib & 0x7fffffff)
		}
		d := ia - ib
		if d < 0 {
			d = -d
		}
		return d
	}
	sig := make([]float32, len(src))
	th := make([]float32, len(src))
	rnnSigmoidRow(sig, src)
	rnnTanhRow(th, src)
	worst := [2]int64{}
	for i, x := range src {
		ws := float32(1 / (1 + math.Exp(-float64(x))))
		wt := float32(math.Tanh(float64(x)))
		for k, c := range [2][2]float32{{sig[i], ws}, {th[i], wt}} {
			got, want := c[0], c[1]
			if math.IsNaN(float64(want)) {
				if !math.IsNaN(float64(got)) {
					t.Fatalf("activation %d(%v) = %v, want NaN", k, x, got)
				}
				continue
			}
			u := ulps(got, want)
			worst[k] = max(worst[k], u)
			if limit := [2]int64{2, 1}[k]; u > limit { // sigmoid, tanh
				t.Fatalf("activation %d(%v) = %v, want %v (%d ulps)", k, x, got, want, u)
			}
		}
	}
	t.Logf("worst ulps: sigmoid %d, tanh %d over %d inputs", worst[0], worst[1], len(src))
	// float64 is math's.
	s64 := []float64{-3, -0.1, 0, 1e-9, 0.7, 20}
	o := make([]float64, len(s64))
	rnnSigmoidRow(o, s64)
	for i, x := range s64 {
		if o[i] != 1/(1+math.Exp(-x)) {
			t.Fatalf("float64 sigmoid(%v) = %v", x, o[i])
		}
	}
	rnnTanhRow(o, s64)
	for i, x := range s64 {
		if o[i] != math.Tanh(x) {
			t.Fatalf("float64 tanh(%v) = %v", x, o[i])
		}
	}
}
