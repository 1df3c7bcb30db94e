package baselines

import (
	"math"
	"math/rand/v2"
	"testing"
)

// relDiff is |a-b| / max(|a|, |b|, floor).
func relDiff(a, b, floor float64) float64 {
	return math.Abs(a-b) / max(math.Abs(a), math.Abs(b), floor)
}

// tensors names the parameter tensors and their offsets in Params/Grads.
var tensors = []struct {
	name      string
	off, size int
}{
	{"W1", 0, In * H1},
	{"B1", In * H1, H1},
	{"W2", In*H1 + H1, H1 * H2},
	{"B2", In*H1 + H1 + H1*H2, H2},
	{"W3", In*H1 + H1 + H1*H2 + H2, H2 * Out},
	{"B3", In*H1 + H1 + H1*H2 + H2 + H2*Out, Out},
}

// loss64 is the forward pass and mean softmax cross-entropy in float64,
// written independently of both baselines, for finite differences.
func loss64(p []float64, x []float32, y []int32) float64 {
	w1, b1 := p[0:In*H1], p[In*H1:In*H1+H1]
	o := In*H1 + H1
	w2, b2 := p[o:o+H1*H2], p[o+H1*H2:o+H1*H2+H2]
	o += H1*H2 + H2
	w3, b3 := p[o:o+H2*Out], p[o+H2*Out:o+H2*Out+Out]
	var loss float64
	var h1 [H1]float64
	var h2 [H2]float64
	var z [Out]float64
	for r := 0; r < Batch; r++ {
		for j := 0; j < H1; j++ {
			s := b1[j]
			for i := 0; i < In; i++ {
				s += float64(x[r*In+i]) * w1[i*H1+j]
			}
			h1[j] = max(s, 0)
		}
		for j := 0; j < H2; j++ {
			s := b2[j]
			for i := 0; i < H1; i++ {
				s += h1[i] * w2[i*H2+j]
			}
			h2[j] = max(s, 0)
		}
		mx := math.Inf(-1)
		for j := 0; j < Out; j++ {
			s := b3[j]
			for i := 0; i < H2; i++ {
				s += h2[i] * w3[i*Out+j]
			}
			z[j] = s
			mx = max(mx, s)
		}
		var se float64
		for _, v := range z {
			se += math.Exp(v - mx)
		}
		loss += math.Log(se) + mx - z[y[r]]
	}
	return loss / Batch
}

// checkFD compares the float32 gradients grads (computed at params) with
// central differences of loss64 at params, on the largest-|g| coordinate
// and 4 random ones of every tensor. The error is relative to
// max(|fd|, 1e-3·max|g| of the tensor), so coordinates whose true gradient
// is ~0 are judged against the tensor's scale. It returns the worst error.
func checkFD(t *testing.T, who string, params, grads []float32, x []float32, y []int32) float64 {
	t.Helper()
	p := make([]float64, len(params))
	for i, v := range params {
		p[i] = float64(v)
	}
	const h = 1e-6
	rng := rand.New(rand.NewPCG(3, 4))
	worst := 0.0
	for _, ts := range tensors {
		g := grads[ts.off : ts.off+ts.size]
		gmax, imax := 0.0, 0
		for i, v := range g {
			if a := math.Abs(float64(v)); a > gmax {
				gmax, imax = a, i
			}
		}
		coords := []int{imax}
		for range 4 {
			coords = append(coords, rng.IntN(ts.size))
		}
		for _, i := range coords {
			j := ts.off + i
			orig := p[j]
			p[j] = orig + h
			lp := loss64(p, x, y)
			p[j] = orig - h
			lm := loss64(p, x, y)
			p[j] = orig
			fd := (lp - lm) / (2 * h)
			e := math.Abs(float64(g[i])-fd) / max(math.Abs(fd), 1e-3*gmax)
			worst = max(worst, e)
			if e > 1e-3 {
				t.Errorf("%s: d loss/d %s[%d] = %g, finite difference %g (relative error %.1e)", who, ts.name, i, g[i], fd, e)
			}
		}
	}
	return worst
}

// TestBaselinesAgree starts Gonum and Naive from identical parameters and
// inputs and checks that
//   - their first-step gradients match central finite differences of an
//     independent float64 forward pass (loss64) on 5 coordinates per tensor,
//     and match each other elementwise;
//   - their losses agree at each of 3 steps and their parameters after 3
//     steps, within 1e-4 relative.
func TestBaselinesAgree(t *testing.T) {
	g, n := NewGonum(1), NewNaive(1)
	for i := range g.Params {
		if g.Params[i] != n.Params[i] {
			t.Fatalf("initial parameter %d differs: %v vs %v", i, g.Params[i], n.Params[i])
		}
	}
	for i := range g.X {
		if g.X[i] != n.X[i] || g.Y[i/In] != n.Y[i/In] {
			t.Fatalf("inputs differ at %d", i)
		}
	}
	p0 := append([]float32(nil), g.Params...)

	for step := 1; step <= 3; step++ {
		lg, ln := g.TrainStep(), n.TrainStep()
		if d := relDiff(float64(lg), float64(ln), 0); d > 1e-4 {
			t.Errorf("step %d: loss gonum %v, naive %v (relative difference %.1e)", step, lg, ln, d)
		}
		t.Logf("step %d: loss gonum %.7f naive %.7f", step, lg, ln)
		if step != 1 {
			continue
		}
		// First-step gradients: against each other, then against finite
		// differences (Grads is left intact by the Adam step).
		worst := 0.0
		for _, ts := range tensors {
			gg := g.Grads[ts.off : ts.off+ts.size]
			gn := n.Grads[ts.off : ts.off+ts.size]
			gmax := 0.0
			for _, v := range gn {
				gmax = max(gmax, math.Abs(float64(v)))
			}
			for i := range gg {
				d := relDiff(float64(gg[i]), float64(gn[i]), 1e-3*gmax)
				worst = max(worst, d)
				if d > 1e-4 {
					t.Errorf("step 1: d loss/d %s[%d]: gonum %v, naive %v", ts.name, i, gg[i], gn[i])
				}
			}
		}
		t.Logf("step 1 gradients gonum vs naive: worst relative difference %.1e", worst)
		t.Logf("step 1 gradients vs float64 finite differences: worst relative error gonum %.1e, naive %.1e",
			checkFD(t, "gonum", p0, g.Grads, g.X, g.Y), checkFD(t, "naive", p0, n.Grads, n.X, n.Y))
	}

	// Parameters after 3 steps: |a-b| ≤ 1e-4·max(|a|, |b|), with a floor of
	// 1e-3 on the scale (biases start at 0 and move by ~lr per step).
	// The margin is thin by nature, not by bug: Adam's first update is
	// lr·g/(|g|+eps), so a gradient that cancels to ~eps (W1[58495] is
	// -2.65e-8 vs -2.56e-8, two roundings of a sum that is ~0) moves the
	// parameter by 7.27e-4 vs 7.19e-4. That coordinate is the worst, at
	// 9.9e-5 relative (amd64, gonum v0.17.0); all others are below 1e-5.
	worst, bad := 0.0, 0
	for i := range g.Params {
		d := relDiff(float64(g.Params[i]), float64(n.Params[i]), 1e-3)
		worst = max(worst, d)
		if d > 1e-4 {
			if bad++; bad <= 10 {
				t.Errorf("after 3 steps parameter %d: gonum %v, naive %v (relative difference %.1e)", i, g.Params[i], n.Params[i], d)
			}
		}
	}
	t.Logf("parameters after 3 steps: worst relative difference %.1e (%d of %d over 1e-4)", worst, bad, NumParams)
}

// TestAllocs asserts that a training step allocates nothing in either baseline.
func TestAllocs(t *testing.T) {
	g, n := NewGonum(1), NewNaive(1)
	if a := testing.AllocsPerRun(20, func() { g.TrainStep() }); a != 0 {
		t.Errorf("Gonum.TrainStep allocates %v times per step, want 0", a)
	}
	if a := testing.AllocsPerRun(5, func() { n.TrainStep() }); a != 0 {
		t.Errorf("Naive.TrainStep allocates %v times per step, want 0", a)
	}
}

// The benchmarks mirror generated/mlp's BenchmarkTrainStep; compare with
//
//	go test -run XXX -bench TrainStep -cpu 1 ./examples/baselines/ ./generated/mlp/
//
// -cpu 1 keeps the comparison single-threaded: Gonum.TrainStep already keeps
// every Sgemm call serial (see gonumPanel), and GOMAXPROCS=1 also keeps the
// runtime off the second shared core.

func BenchmarkTrainStepGonum(b *testing.B) {
	g := NewGonum(1)
	b.ReportAllocs()
	for b.Loop() {
		g.TrainStep()
	}
}

func BenchmarkTrainStepNaive(b *testing.B) {
	n := NewNaive(1)
	b.ReportAllocs()
	for b.Loop() {
		n.TrainStep()
	}
}
