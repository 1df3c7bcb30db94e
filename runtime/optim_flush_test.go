package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the optimizers' flush of tiny moments to 0 (momentFlush), which
// keeps the state of parameters whose gradient stays 0 (dead units) out of
// the float32 subnormal range.

// isSubnormal32 reports whether x is a float32 subnormal (not ±0).
func isSubnormal32(x float32) bool {
	return x != 0 && math.Abs(float64(x)) < 0x1p-126
}

// flushSame checks got against want bit for bit (any NaN matching any
// NaN). When this build fuses float32 multiply-adds (GOAMD64=v3) the Go
// loops round differently from the kernels and it falls back to dispCheck.
func flushSame(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if goFusesF32 {
		dispCheck(t, name, got, want)
		return
	}
	for i := range got {
		if !ewSame(got[i], want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), Go loop %v (%#x)", name, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// flushGrad returns the gradient of element i at step (from 1) for the
// five kinds of parameter of the flush tests, by i%5:
//
//	0: always 0 (m and v stay exactly 0)
//	1: ~1e-2 for 10 steps, then 0 (m decays below 2⁻¹⁰⁰ and is flushed;
//	   v, decaying by β2, stays normal)
//	2: ~1.5e-14 for 5 steps, then 0 (v, normal after those steps, and m
//	   both decay below 2⁻¹⁰⁰ and are flushed)
//	3: ~1e-16 on every step (v = 1e-3·g² < 2⁻¹⁰⁰ is flushed at once; m is kept)
//	4: ~1 on every step (nothing is flushed)
func flushGrad(r *rand.Rand, i, step int) float32 {
	s := float32(1)
	if r.IntN(2) == 0 {
		s = -1
	}
	u := s * float32(1+r.Float64())
	switch i % 5 {
	case 1:
		if step <= 10 {
			return 1e-2 * u
		}
	case 2:
		if step <= 5 {
			return 1.5e-14 * u
		}
	case 3:
		return 1e-16 * u
	case 4:
		return u
	}
	return 0
}

// TestAdamFlushesTinyMoments runs float32 Adam for 2000 steps on
// parameters of which many get gradient 0, through Step (the assembly
// kernel on amd64) and through the Go loop, and checks that both agree bit
// for bit at every step, that no moment is ever subnormal, and that the
// moments end exactly 0 where they should.
func TestAdamFlushesTinyMoments(t *testing.T) {
	const n, steps = 4099, 2000 // n%8 != 0: the Go tail runs too
	for _, wd := range []float32{0, 0.01} {
		r := rand.New(rand.NewPCG(41, 42))
		opt, ref := NewAdam[float32](n, 1e-3), NewAdam[float32](n, 1e-3)
		opt.WeightDecay, ref.WeightDecay = wd, wd
		p := make([]float32, n)
		for i := range p {
			p[i] = float32(2*r.Float64() - 1)
		}
		q := append([]float32(nil), p...)
		g := make([]float32, n)
		for step := 1; step <= steps; step++ {
			for i := range g {
				g[i] = flushGrad(r, i, step)
			}
			opt.Step(p, g)
			c := ref.nextCoef()
			adamLoop(q, g, ref.M, ref.V, &c)
			name := fmt.Sprintf("Adam wd=%v step %d", wd, step)
			flushSame(t, name+" p", p, q)
			flushSame(t, name+" m", opt.M, ref.M)
			flushSame(t, name+" v", opt.V, ref.V)
			for i := range p {
				if isSubnormal32(opt.M[i]) || isSubnormal32(opt.V[i]) || isSubnormal32(ref.M[i]) || isSubnormal32(ref.V[i]) {
					t.Fatalf("%s: [%d] (kind %d) subnormal moment: m=%g v=%g, Go loop m=%g v=%g",
						name, i, i%5, opt.M[i], opt.V[i], ref.M[i], ref.V[i])
				}
			}
		}
		for i := range p {
			m, v := opt.M[i], opt.V[i]
			var mZero, vZero bool
			switch i % 5 {
			case 0, 2:
				mZero, vZero = true, true
			case 1:
				mZero = true
			case 3:
				vZero = true
			}
			// Zero means +0 exactly; kept moments must not be 0.
			if mZero && math.Float32bits(m) != 0 || !mZero && m == 0 ||
				vZero && math.Float32bits(v) != 0 || !vZero && v == 0 {
				t.Fatalf("wd=%v: [%d] (kind %d) m=%g v=%g after %d steps; want m zero %v, v zero %v",
					wd, i, i%5, m, v, steps, mZero, vZero)
			}
			if p[i] != p[i] || math.IsInf(float64(p[i]), 0) {
				t.Fatalf("wd=%v: p[%d] = %v", wd, i, p[i])
			}
		}
	}
}

// TestAdamFlushTiny64 checks the float64 loop flushes the same way.
func TestAdamFlushTiny64(t *testing.T) {
	opt := NewAdam[float64](3, 1e-3)
	p, g := []float64{1, 1, 1}, []float64{1e-2, 3e-14, 0}
	opt.Step(p, g)
	g[0], g[1] = 0, 0
	for range 2000 {
		opt.Step(p, g)
	}
	if opt.M[0] != 0 || opt.V[0] == 0 || opt.M[1] != 0 || opt.V[1] != 0 || opt.M[2] != 0 || opt.V[2] != 0 {
		t.Fatalf("M = %v, V = %v", opt.M, opt.V)
	}
	for i, x := range p {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("p[%d] = %v", i, x)
		}
	}
}

// TestSGDFlushesTinyVelocity is TestAdamFlushesTinyMoments for SGD with
// momentum and Nesterov momentum: the velocity of a parameter whose
// gradient becomes 0 ends exactly 0 and is never subnormal.
func TestSGDFlushesTinyVelocity(t *testing.T) {
	const n, steps = 4099, 2000
	for _, nesterov := range []bool{false, true} {
		r := rand.New(rand.NewPCG(43, 44))
		opt := NewSGD[float32](n, 1e-3, 0.9, nesterov)
		lr, mu := opt.LR, opt.Momentum
		p := make([]float32, n)
		for i := range p {
			p[i] = float32(2*r.Float64() - 1)
		}
		q := append([]float32(nil), p...)
		b := make([]float32, n)
		g := make([]float32, n)
		for step := 1; step <= steps; step++ {
			for i := range g {
				g[i] = flushGrad(r, i, step)
			}
			opt.Step(p, g)
			for i := range q {
				// The Go loop, with explicit roundings (WeightDecay is 0).
				bi := float32(mu*b[i]) + g[i]
				if -momentFlush < bi && bi < momentFlush {
					bi = 0
				}
				b[i] = bi
				if nesterov {
					bi = g[i] + float32(mu*bi)
				}
				q[i] = q[i] - float32(lr*bi)
			}
			name := fmt.Sprintf("SGD nesterov=%v step %d", nesterov, step)
			flushSame(t, name+" p", p, q)
			flushSame(t, name+" velocity", opt.Velocity, b)
			for i, x := range opt.Velocity {
				if isSubnormal32(x) {
					t.Fatalf("%s: [%d] (kind %d) subnormal velocity %g", name, i, i%5, x)
				}
			}
		}
		for i, x := range opt.Velocity {
			if zero := i%5 <= 2; zero && math.Float32bits(x) != 0 || !zero && x == 0 {
				t.Fatalf("nesterov=%v: velocity[%d] (kind %d) = %g after %d steps", nesterov, i, i%5, x, steps)
			}
		}
	}
}
