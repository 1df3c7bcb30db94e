// Package gradcheck checks analytic gradients against central finite
// differences. Generated model tests use it, in float64, to prove that the
// generated backward pass is the derivative of the generated forward pass.
package gradcheck

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"gonum.org/v1/gonum/diff/fd"
)

// Options configures Check. The zero value selects every default.
type Options struct {
	// Step is the finite-difference step h (default 1e-6). A coordinate i
	// is perturbed by h·max(1, |x_i|) (adjusted so x_i ± step is exactly
	// representable); a unit direction u by h·u.
	Step float64
	// Directions is the number of random unit directions to check
	// (default 3; negative for none).
	Directions int
	// Coords is the number of individual coordinates to check (default 8;
	// negative for none): the half with the largest |grad| plus random
	// others. If Coords ≥ len(x) every coordinate is checked.
	Coords int
	// Seed seeds the choice of directions and random coordinates.
	Seed uint64
	// Tol is the largest acceptable relative error (default 1e-6).
	Tol float64
}

const (
	defaultStep       = 1e-6
	defaultDirections = 3
	defaultCoords     = 8
	defaultTol        = 1e-6

	// kinkRetries is how many times a failing check is repeated at a step
	// ten times smaller (see Check).
	kinkRetries = 2

	// lossULPs is how many units of float64 rounding (relative to
	// 1+|loss|) we assume the loss evaluation may carry. A loss computed by
	// a long chain of float64 operations is accurate to a few tens of ulps.
	lossULPs = 32
	eps      = 0x1p-52 // float64 machine epsilon
)

// Check compares grad, the analytic gradient of loss() with respect to x,
// against central finite differences of loss, perturbing x in place. x is
// restored bit-exactly before Check returns (even if loss panics).
//
// Two kinds of check are made, as in JAX's check_vjp: for Directions random
// unit vectors u, the analytic ⟨grad, u⟩ against the numeric d/dε loss(x+εu);
// and for Coords single coordinates i (the largest |grad_i| first, then
// random ones), grad_i against d/dε loss(x+ε·e_i). Derivatives are estimated
// with gonum's fd.Derivative using the fd.Central formula.
//
// The relative error of analytic a versus numeric n is
//
//	|a-n| / max(|a|, |n|, noise/Tol)
//
// where noise bounds the rounding error of the central difference itself:
// the loss carries about lossULPs·ε·(1+|loss|) of rounding (ε = 2⁻⁵²), which
// the difference quotient divides by the step h, plus (for directions) the
// error of rounding x+h·u, ε·Σ|grad_i·x_i|/h. With this floor a check fails
// only if |a-n| exceeds both Tol·max(|a|,|n|) and the noise, so gradients
// that are zero or tiny are compared absolutely at the precision finite
// differences can actually resolve, instead of failing on noise.
// (Truncation error, O(h²) times the loss's third derivative along the
// perturbation, is assumed negligible at the default h.)
//
// A check that fails is repeated at steps h/10 and h/100 and passes if one
// of them agrees: a loss with kinks (ReLU, max pooling) has a slope jump
// within h of x somewhere once a model has enough units, and the central
// difference across it is off by the jump, while a kink at distance d > h'
// does not reach the smaller step h'. A wrong gradient disagrees at every
// step. The smaller steps carry 10 and 100 times the rounding noise, which
// the floor above accounts for.
//
// Check returns the worst relative error seen and, if it exceeds Tol, an
// error naming each failing direction or coordinate with its analytic and
// numeric values.
func Check(name string, x, grad []float64, loss func() float64, opt Options) (worst float64, err error) {
	if len(x) != len(grad) {
		return 0, fmt.Errorf("gradcheck %s: len(x)=%d but len(grad)=%d; pass the gradient of the same parameters", name, len(x), len(grad))
	}
	if loss == nil {
		return 0, fmt.Errorf("gradcheck %s: loss function is nil", name)
	}
	if opt.Step == 0 {
		opt.Step = defaultStep
	}
	if opt.Tol == 0 {
		opt.Tol = defaultTol
	}
	if opt.Directions == 0 {
		opt.Directions = defaultDirections
	}
	if opt.Coords == 0 {
		opt.Coords = defaultCoords
	}
	if !(opt.Step > 0) || math.IsInf(opt.Step, 0) {
		return 0, fmt.Errorf("gradcheck %s: Options.Step = %v; it must be a positive finite number (0 selects %g)", name, opt.Step, defaultStep)
	}
	if !(opt.Tol > 0) || math.IsInf(opt.Tol, 0) {
		return 0, fmt.Errorf("gradcheck %s: Options.Tol = %v; it must be a positive finite number (0 selects %g)", name, opt.Tol, defaultTol)
	}
	if len(x) == 0 {
		return 0, nil
	}
	for i, g := range grad {
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.Inf(1), fmt.Errorf("gradcheck %s: analytic gradient [%d] is %v", name, i, g)
		}
	}

	x0 := append([]float64(nil), x...)
	defer copy(x, x0)

	loss0 := loss()
	if math.IsNaN(loss0) || math.IsInf(loss0, 0) {
		return math.Inf(1), fmt.Errorf("gradcheck %s: loss at x is %v; finite differences need a finite loss", name, loss0)
	}
	lossNoise := lossULPs * eps * (1 + math.Abs(loss0))

	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9E3779B97F4A7C15))
	var failures []failure
	relErr := func(a, n, noise float64) float64 {
		rel := math.Abs(a-n) / max(math.Abs(a), math.Abs(n), noise/opt.Tol)
		if math.IsNaN(rel) {
			rel = math.Inf(1)
		}
		return rel
	}
	// record compares analytic a with numeric(h), whose rounding noise is
	// noise·h0/h, retrying at smaller steps across a kink.
	record := func(what string, a, h0 float64, numeric func(h float64) float64, noise float64) {
		n := numeric(h0)
		rel := relErr(a, n, noise)
		for k, h := 0, h0; !(rel <= opt.Tol) && k < kinkRetries; k++ {
			h /= 10
			if r := relErr(a, numeric(h), noise*h0/h); r <= opt.Tol {
				rel = r
			}
		}
		worst = max(worst, rel)
		if !(rel <= opt.Tol) {
			failures = append(failures, failure{what: what, analytic: a, numeric: n, rel: rel})
		}
	}
	settings := func(h float64) *fd.Settings {
		return &fd.Settings{Formula: fd.Central, Step: h}
	}

	// Random directions.
	if opt.Directions > 0 {
		u := make([]float64, len(x))
		var gx float64 // Σ|grad_i·x_i|, for the rounding error of x+h·u
		for i := range x0 {
			gx += math.Abs(grad[i] * x0[i])
		}
		h := opt.Step
		for d := 0; d < opt.Directions; d++ {
			var norm float64
			for i := range u {
				u[i] = rng.NormFloat64()
				norm += u[i] * u[i]
			}
			norm = math.Sqrt(norm)
			var a float64
			for i := range u {
				u[i] /= norm
				a += grad[i] * u[i]
			}
			numeric := func(h float64) float64 {
				n := fd.Derivative(func(e float64) float64 {
					for i := range x {
						x[i] = x0[i] + e*u[i]
					}
					return loss()
				}, 0, settings(h))
				copy(x, x0)
				return n
			}
			noise := (lossNoise + eps*gx) / h
			record(fmt.Sprintf("random direction %d of %d (seed %d)", d+1, opt.Directions, opt.Seed), a, h, numeric, noise)
		}
	}

	// Coordinates: the largest |grad| first, then random others.
	if opt.Coords > 0 {
		for _, c := range pickCoords(grad, opt.Coords, rng) {
			i := c.index
			xi := x0[i]
			h := opt.Step * max(1, math.Abs(xi))
			h = (xi + h) - xi // make x_i + h exactly representable
			numeric := func(h float64) float64 {
				h = (xi + h) - xi
				n := fd.Derivative(func(e float64) float64 {
					x[i] = xi + e
					return loss()
				}, 0, settings(h))
				x[i] = xi
				return n
			}
			record(fmt.Sprintf("coordinate %d (%s, x=%g)", i, c.why, xi), grad[i], h, numeric, lossNoise/h)
		}
	}

	if len(failures) > 0 {
		sort.SliceStable(failures, func(a, b int) bool { return failures[a].rel > failures[b].rel })
		var b strings.Builder
		fmt.Fprintf(&b, "gradcheck %s: %d check(s) exceed relative tolerance %g (worst %.3g); the analytic gradient disagrees with finite differences:",
			name, len(failures), opt.Tol, worst)
		const show = 5
		for k, f := range failures {
			if k == show {
				fmt.Fprintf(&b, "\n  ... and %d more", len(failures)-show)
				break
			}
			fmt.Fprintf(&b, "\n  %s: analytic %.10g, numeric %.10g, relative error %.3g", f.what, f.analytic, f.numeric, f.rel)
		}
		return worst, errors.New(b.String())
	}
	return worst, nil
}

type failure struct {
	what              string
	analytic, numeric float64
	rel               float64
}

type coord struct {
	index int
	why   string
}

// pickCoords returns up to k distinct coordinates: the ⌈k/2⌉ with the
// largest |grad| (where a wrong gradient matters most), then random others.
func pickCoords(grad []float64, k int, rng *rand.Rand) []coord {
	n := len(grad)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if k >= n {
		out := make([]coord, n)
		for i := range out {
			out[i] = coord{i, "all coordinates"}
		}
		return out
	}
	sort.SliceStable(order, func(a, b int) bool { return math.Abs(grad[order[a]]) > math.Abs(grad[order[b]]) })
	top := (k + 1) / 2
	out := make([]coord, 0, k)
	for r := 0; r < top; r++ {
		out = append(out, coord{order[r], fmt.Sprintf("largest |grad| #%d", r+1)})
	}
	rest := order[top:]
	rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
	for _, i := range rest[:k-top] {
		out = append(out, coord{i, "random"})
	}
	return out
}
