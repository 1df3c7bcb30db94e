package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// rtStepInput gathers step t of x (n, T, D) into a contiguous (n, D).
func rtStepInput(dst, x []float64, n, T, D, t int) {
	for s := 0; s < n; s++ {
		copy(dst[s*D:(s+1)*D], x[(s*T+t)*D:(s*T+t+1)*D])
	}
}

// rtClose fails unless every |a-b| ≤ rtol·max|b| (the scale of the
// whole gradient, so that near-zero entries are not held to a tighter
// absolute standard than the rest).
func rtClose(t *testing.T, name string, a, b []float64, rtol float64) {
	t.Helper()
	scale := 0.0
	for _, v := range b {
		scale = max(scale, math.Abs(v))
	}
	for i := range a {
		if scale > 0 {
			rtWorst = max(rtWorst, math.Abs(a[i]-b[i])/scale)
		}
		if math.Abs(a[i]-b[i]) > rtol*scale {
			t.Fatalf("%s[%d] = %.15g, BPTT %.15g (scale %.3g)", name, i, a[i], b[i], scale)
		}
	}
}

var rtWorst float64

// TestRTRLMatchesBPTT compares RTRL's gradients with RNNBackward's, for a
// loss on the final state only and for a loss on every step.
func TestRTRLMatchesBPTT(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, sz := range [][4]int{{1, 1, 1, 1}, {2, 6, 3, 4}, {3, 9, 1, 5}, {2, 4, 5, 7}} {
		for _, init := range []bool{false, true} {
			for _, perStep := range []bool{false, true} {
				n := sz[0]
				g := RNNGeom{Cell: SimpleRNN, T: sz[1], D: sz[2], H: sz[3]}
				name := fmt.Sprintf("n%d_T%d_D%d_H%d/init=%v/perStep=%v", n, g.T, g.D, g.H, init, perStep)
				p := rnGen(r, g, n)
				var h0 []float64
				if init {
					h0 = p.h0
				}
				H, D := g.H, g.D
				// BPTT.
				hs := make([]float64, n*g.T*H)
				saved := make([]float64, g.SavedSize(n))
				work := make([]float64, g.WorkSize(n))
				RNNForward(g, n, hs, p.x, h0, nil, p.W, p.U, p.b, p.bh, saved)
				var dhs, dhT []float64
				if perStep {
					dhs = rnRandF64(r, n*g.T*H, 1)
				} else {
					dhT = rnRandF64(r, n*H, 1)
				}
				bW, bU := make([]float64, D*H), make([]float64, H*H)
				bb, bbh := make([]float64, H), make([]float64, H)
				RNNBackward(g, n, nil, nil, nil, bW, bU, bb, bbh, dhs, dhT, nil, p.x, h0, nil, p.W, p.U, hs, saved, work)

				// RTRL.
				rt := NewRTRL[float64](D, H, n)
				rt.Reset(h0)
				rW, rU := make([]float64, D*H), make([]float64, H*H)
				rb, rbh := make([]float64, H), make([]float64, H)
				xt := make([]float64, n*D)
				dh := make([]float64, n*H)
				for st := 0; st < g.T; st++ {
					rtStepInput(xt, p.x, n, g.T, D, st)
					h := rt.Step(xt, p.W, p.U, p.b, p.bh)
					for s := 0; s < n; s++ {
						for j := 0; j < H; j++ {
							if d := h[s*H+j] - hs[(s*g.T+st)*H+j]; math.Abs(d) > 1e-14 {
								t.Fatalf("%s: RTRL h[%d,%d] at step %d = %v, RNNForward %v", name, s, j, st, h[s*H+j], hs[(s*g.T+st)*H+j])
							}
						}
					}
					if perStep {
						rtStepInput(dh, dhs, n, g.T, H, st)
						rt.Grad(dh, rW, rU, rb, rbh)
					}
				}
				if !perStep {
					rt.Grad(dhT, rW, rU, rb, rbh)
				}
				if &rt.H()[0] != &rt.h[0] {
					t.Fatal("H() is not a view of the state")
				}
				rtClose(t, name+" dW", rW, bW, 1e-9)
				rtClose(t, name+" dU", rU, bU, 1e-9)
				rtClose(t, name+" db", rb, bb, 1e-9)
				rtClose(t, name+" dbh", rbh, bbh, 1e-9)
			}
		}
	}
	t.Logf("worst |RTRL-BPTT|/max|BPTT|: %.2g", rtWorst)
}

// TestRTRLResetAndAccumulate checks that Reset restarts the sequences
// (same gradients twice, accumulated), and that Grad right after Reset
// adds nothing.
func TestRTRLResetAndAccumulate(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	D, H, n, T := 2, 3, 2, 5
	W := rnRandF64(r, D*H, 0.8)
	U := rnRandF64(r, H*H, 0.6)
	b := rnRandF64(r, H, 0.5)
	bh := rnRandF64(r, H, 0.5)
	xs := rnRandF64(r, T*n*D, 1)
	dh := rnRandF64(r, n*H, 1)
	h0 := rnRandF64(r, n*H, 1)
	rt := NewRTRL[float64](D, H, n)
	g := [4][]float64{make([]float64, D*H), make([]float64, H*H), make([]float64, H), make([]float64, H)}
	var first [4][]float64
	for pass := 0; pass < 2; pass++ {
		rt.Reset(h0)
		rt.Grad(dh, g[0], g[1], g[2], g[3])
		for _, v := range g {
			for _, e := range v {
				if pass == 0 && e != 0 {
					t.Fatal("Grad after Reset is not zero")
				}
			}
		}
		for st := 0; st < T; st++ {
			rt.Step(xs[st*n*D:(st+1)*n*D], W, U, b, bh)
		}
		rt.Grad(dh, g[0], g[1], g[2], g[3])
		if pass == 0 {
			for k := range g {
				first[k] = append([]float64(nil), g[k]...)
			}
		}
	}
	for k := range g {
		for i := range g[k] {
			if math.Abs(g[k][i]-2*first[k][i]) > 1e-14*(1+math.Abs(first[k][i])) {
				t.Fatalf("after two identical passes grad %d[%d] = %v, want 2×%v", k, i, g[k][i], first[k][i])
			}
		}
	}
}

func TestRTRLZeroAllocsAndPanics(t *testing.T) {
	D, H, n := 3, 4, 2
	rt := NewRTRL[float32](D, H, n)
	x := make([]float32, n*D)
	W, U := make([]float32, D*H), make([]float32, H*H)
	b := make([]float32, H)
	dh := make([]float32, n*H)
	for i := range W {
		W[i] = 0.1
	}
	rt.Step(x, W, U, b, b)
	if a := testing.AllocsPerRun(10, func() { rt.Step(x, W, U, b, b) }); a != 0 {
		t.Errorf("RTRL.Step allocates %v times per call", a)
	}
	if a := testing.AllocsPerRun(10, func() { rt.Grad(dh, W, U, b, b) }); a != 0 {
		t.Errorf("RTRL.Grad allocates %v times per call", a)
	}
	if a := testing.AllocsPerRun(10, func() { rt.Reset(nil) }); a != 0 {
		t.Errorf("RTRL.Reset allocates %v times per call", a)
	}
	for name, f := range map[string]func(){
		"NewRTRL H=0": func() { NewRTRL[float32](D, 0, n) },
		"Step x":      func() { rt.Step(x[:n*D-1], W, U, b, b) },
		"Step U":      func() { rt.Step(x, W, U[:H*H-1], b, b) },
		"Grad dh":     func() { rt.Grad(dh[:1], W, U, b, b) },
		"Grad dbh":    func() { rt.Grad(dh, W, U, b, b[:H-1]) },
		"Reset h0":    func() { rt.Reset(dh[:1]) },
	} {
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

func BenchmarkRTRL(b *testing.B) {
	for _, c := range [][3]int{{1, 16, 4}, {8, 32, 4}} {
		D, H, n := c[0], c[1], c[2]
		rt := NewRTRL[float32](D, H, n)
		r := rand.New(rand.NewPCG(25, 26))
		x := ktRand[float32](r, n*D, 1)
		W := ktRand[float32](r, D*H, 0.3)
		U := ktRand[float32](r, H*H, 0.3)
		bb := ktRand[float32](r, H, 0.3)
		dh := ktRand[float32](r, n*H, 1)
		gW, gU, gb := make([]float32, D*H), make([]float32, H*H), make([]float32, H)
		b.Run(fmt.Sprintf("D%d_H%d_n%d/step+grad", D, H, n), func(b *testing.B) {
			for b.Loop() {
				rt.Step(x, W, U, bb, bb)
				rt.Grad(dh, gW, gU, gb, gb)
			}
		})
	}
}
