package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// smooth is f(x) = Σ_i sin(x_i)·x_{i+1} + ½x_i² + exp(x_i/10) (indices mod n),
// with ∂f/∂x_j = cos(x_j)·x_{j+1} + sin(x_{j-1}) + x_j + exp(x_j/10)/10.
func smooth(x []float64) float64 {
	n := len(x)
	var s float64
	for i := range x {
		s += math.Sin(x[i])*x[(i+1)%n] + 0.5*x[i]*x[i] + math.Exp(x[i]/10)
	}
	return s
}

func smoothGrad(x []float64) []float64 {
	n := len(x)
	g := make([]float64, n)
	for j := range x {
		g[j] = math.Cos(x[j])*x[(j+1)%n] + math.Sin(x[(j+n-1)%n]) + x[j] + math.Exp(x[j]/10)/10
	}
	return g
}

func randomX(n int, scale float64) []float64 {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, n)
	for i := range x {
		x[i] = scale * r.NormFloat64()
	}
	return x
}

func bitsEqual(a, b []float64) bool {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

func TestGradCorrectPasses(t *testing.T) {
	for _, scale := range []float64{1, 100} {
		x := randomX(50, scale)
		orig := append([]float64(nil), x...)
		g := smoothGrad(x)
		worst, err := Check(fmt.Sprintf("smooth×%g", scale), x, g, func() float64 { return smooth(x) }, Options{Seed: 3})
		if err != nil {
			t.Fatalf("scale %g: %v", scale, err)
		}
		if worst > 1e-6 {
			t.Fatalf("scale %g: worst %g", scale, worst)
		}
		if !bitsEqual(x, orig) {
			t.Fatal("x not restored bit-exactly")
		}
		t.Logf("scale %g: worst relative error %.3g", scale, worst)
	}
}

func TestGradAllCoordinatesAndZero(t *testing.T) {
	x := randomX(6, 1)
	if _, err := Check("all", x, smoothGrad(x), func() float64 { return smooth(x) }, Options{Coords: 100}); err != nil {
		t.Fatal(err)
	}
	// A constant loss has zero gradient: numeric noise must not fail it.
	if w, err := Check("const", x, make([]float64, 6), func() float64 { return 3 }, Options{}); err != nil || w != 0 {
		t.Fatalf("constant: %v %v", w, err)
	}
}

func TestGradWrongFails(t *testing.T) {
	const n = 50
	x := randomX(n, 1)
	orig := append([]float64(nil), x...)
	loss := func() float64 { return smooth(x) }
	good := smoothGrad(x)
	largest := 0
	for i := range good {
		if math.Abs(good[i]) > math.Abs(good[largest]) {
			largest = i
		}
	}
	small := (largest + n/2) % n

	cases := []struct {
		name  string
		coord int
		bad   func(float64) float64
		opt   Options
		want  string
	}{
		{"1e-3 relative, caught by random directions", small, func(g float64) float64 { return g * (1 + 1e-3) }, Options{Coords: -1}, "random direction"},
		{"1e-3 relative, caught by coordinates", small, func(g float64) float64 { return g * (1 + 1e-3) }, Options{Directions: -1, Coords: n}, fmt.Sprintf("coordinate %d ", small)},
		{"1e-3 relative on largest, caught by top-|grad| coords", largest, func(g float64) float64 { return g * (1 + 1e-3) }, Options{Directions: -1, Coords: 2}, "largest |grad| #1"},
		{"sign flip", small, func(g float64) float64 { return -g }, Options{}, "random direction"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := append([]float64(nil), good...)
			g[c.coord] = c.bad(g[c.coord])
			worst, err := Check("bad", x, g, loss, c.opt)
			if err == nil {
				t.Fatalf("wrong gradient passed (worst %g)", worst)
			}
			if worst <= 1e-6 || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "analytic") {
				t.Fatalf("worst %g, error %q does not mention %q", worst, err, c.want)
			}
			if !bitsEqual(x, orig) {
				t.Fatal("x not restored bit-exactly")
			}
			t.Log(err)
		})
	}
}

func TestGradRestoresXWhenLossPanics(t *testing.T) {
	x := []float64{0.1, 0.2, 0.3}
	orig := append([]float64(nil), x...)
	calls := 0
	func() {
		defer func() { recover() }()
		Check("panic", x, []float64{1, 1, 1}, func() float64 {
			calls++
			if calls == 3 {
				panic("boom")
			}
			return x[0] + x[1] + x[2]
		}, Options{})
	}()
	if !bitsEqual(x, orig) {
		t.Fatalf("x = %v, want %v", x, orig)
	}
}

func TestGradBadArguments(t *testing.T) {
	x := []float64{1, 2}
	loss := func() float64 { return x[0] * x[1] }
	for _, c := range []struct {
		name string
		grad []float64
		loss func() float64
		opt  Options
		want string
	}{
		{"length", []float64{1}, loss, Options{}, "len(grad)=1"},
		{"nil loss", []float64{2, 1}, nil, Options{}, "nil"},
		{"nan grad", []float64{math.NaN(), 1}, loss, Options{}, "NaN"},
		{"nan loss", []float64{2, 1}, func() float64 { return math.NaN() }, Options{}, "loss at x"},
		{"negative step", []float64{2, 1}, loss, Options{Step: -1}, "Step"},
		{"negative tol", []float64{2, 1}, loss, Options{Tol: -1}, "Tol"},
	} {
		if _, err := Check(c.name, x, c.grad, c.loss, c.opt); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	if w, err := Check("empty", nil, nil, func() float64 { return 0 }, Options{}); w != 0 || err != nil {
		t.Errorf("empty: %v %v", w, err)
	}
}

// TestGradKink: a ReLU whose kink lies between x and x+h fails the central
// difference at h but passes at a smaller step; the retry accepts it, and
// still rejects a wrong gradient there.
func TestGradKink(t *testing.T) {
	x := []float64{0.25}
	const kink = 0.25 + 3e-7 // within the default step 1e-6
	loss := func() float64 { return 2*max(0, x[0]-kink) + x[0] }
	if _, err := Check("kink", x, []float64{1}, loss, Options{Coords: 1, Directions: -1}); err != nil {
		t.Errorf("slope 1 left of the kink: %v", err)
	}
	if _, err := Check("kink", x, []float64{3}, loss, Options{Coords: 1, Directions: -1}); err == nil {
		t.Error("slope 3 (the right side's) at a point left of the kink passed")
	}
	if _, err := Check("kink", x, []float64{1.0001}, loss, Options{Coords: 1, Directions: -1}); err == nil {
		t.Error("a gradient 1e-4 off passed")
	}
}
