package runtime

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// adamRef is an independent float64 transcription of torch.optim.Adam/AdamW
// (decoupled decay) for one scalar parameter:
//
//	p ← p·(1 - lr·wd)
//	m ← β1·m + (1-β1)·g
//	v ← β2·v + (1-β2)·g²
//	m̂ = m/(1-β1ᵗ),  v̂ = v/(1-β2ᵗ)     (PyTorch folds these into step size/denominator)
//	p ← p - lr·m/(1-β1ᵗ) / (√v/√(1-β2ᵗ) + eps)
//
// plus this package's one deviation from PyTorch (see Adam): m and v below
// 2⁻¹⁰⁰ in magnitude are set to 0 after their update (flushRef64).
func adamRef(p, m, v, g, lr, b1, b2, eps, wd float64, t int) (float64, float64, float64) {
	p *= 1 - lr*wd
	m = flushRef64(b1*m + (1-b1)*g)
	v = flushRef64(b2*v + (1-b2)*g*g)
	bc1 := 1 - math.Pow(b1, float64(t))
	bc2 := 1 - math.Pow(b2, float64(t))
	p -= lr / bc1 * m / (math.Sqrt(v)/math.Sqrt(bc2) + eps)
	return p, m, v
}

func TestAdamMatchesReference(t *testing.T) {
	for _, wd := range []float64{0, 0.01} {
		params := []float64{0.5, -1.25, 3, 0}
		refP := append([]float64(nil), params...)
		refM := make([]float64, len(params))
		refV := make([]float64, len(params))
		opt := NewAdam[float64](len(params), 0.01)
		opt.WeightDecay = wd
		grads := make([]float64, len(params))
		for step := 1; step <= 5; step++ {
			for i := range grads {
				grads[i] = float64(i+1)*0.3 - float64(step)*0.1 + refP[i]*0.2
			}
			opt.Step(params, grads)
			for i := range refP {
				refP[i], refM[i], refV[i] = adamRef(refP[i], refM[i], refV[i], grads[i], 0.01, 0.9, 0.999, 1e-8, wd, step)
			}
			for i := range params {
				if d := math.Abs(params[i] - refP[i]); d > 1e-14 {
					t.Fatalf("wd=%v step %d param %d: got %.17g want %.17g", wd, step, i, params[i], refP[i])
				}
				if math.Abs(opt.M[i]-refM[i]) > 1e-15 || math.Abs(opt.V[i]-refV[i]) > 1e-15 {
					t.Fatalf("wd=%v step %d state %d: m=%g/%g v=%g/%g", wd, step, i, opt.M[i], refM[i], opt.V[i], refV[i])
				}
			}
		}
		if opt.StepCount() != 5 {
			t.Fatalf("StepCount = %d, want 5", opt.StepCount())
		}
	}
}

// flushRef64 is the optimizers' flush of tiny moments (not PyTorch's): 0 if
// |x| < 2⁻¹⁰⁰.
func flushRef64(x float64) float64 {
	if math.Abs(x) < 0x1p-100 {
		return 0
	}
	return x
}

// TestAdamFirstStepByHand checks the well-known property that Adam's first
// step moves each parameter by almost exactly lr·sign(g): m̂ = g, v̂ = g², so
// Δp = -lr·g/(|g|+eps).
func TestAdamFirstStepByHand(t *testing.T) {
	p := []float32{1, 1, 1}
	g := []float32{2, -0.5, 1e-3}
	opt := NewAdam[float32](3, 0.1)
	opt.Step(p, g)
	want := []float64{1 - 0.1*2/(2+1e-8), 1 + 0.1*0.5/(0.5+1e-8), 1 - 0.1*1e-3/(1e-3+1e-8)}
	for i := range p {
		if math.Abs(float64(p[i])-want[i]) > 1e-6 {
			t.Errorf("p[%d] = %v, want %v", i, p[i], want[i])
		}
	}
}

// sgdRef is torch.optim.SGD (dampening 0) for one scalar:
//
//	g ← g + wd·p
//	b ← μ·b + g                (b₀ = 0, so b₁ = g₁ as in PyTorch's first-step clone)
//	g ← nesterov ? g + μ·b : b  (plain SGD when μ = 0: g unchanged)
//	p ← p - lr·g
//
// plus this package's flush of |b| < 2⁻¹⁰⁰ to 0 (see SGD).
func sgdRef(p, b, g, lr, mu, wd float64, nesterov bool) (float64, float64) {
	g += wd * p
	if mu != 0 {
		b = flushRef64(mu*b + g)
		if nesterov {
			g += mu * b
		} else {
			g = b
		}
	}
	return p - lr*g, b
}

func TestSGDMatchesReference(t *testing.T) {
	cases := []struct {
		name     string
		mu, wd   float64
		nesterov bool
	}{
		{"plain", 0, 0, false},
		{"plain+wd", 0, 0.1, false},
		{"momentum", 0.9, 0, false},
		{"nesterov", 0.9, 0, true},
		{"nesterov+wd", 0.5, 0.01, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := []float64{0.5, -1.25, 3}
			ref := append([]float64(nil), params...)
			refB := make([]float64, len(params))
			opt := NewSGD[float64](len(params), 0.1, c.mu, c.nesterov)
			opt.WeightDecay = c.wd
			grads := make([]float64, len(params))
			for step := 1; step <= 4; step++ {
				for i := range grads {
					grads[i] = float64(i+1)*0.3 - float64(step)*0.2
				}
				opt.Step(params, grads)
				for i := range ref {
					ref[i], refB[i] = sgdRef(ref[i], refB[i], grads[i], 0.1, c.mu, c.wd, c.nesterov)
				}
				for i := range params {
					if math.Abs(params[i]-ref[i]) > 1e-15 {
						t.Fatalf("step %d param %d: got %.17g want %.17g", step, i, params[i], ref[i])
					}
				}
			}
			if (c.mu == 0) != (len(opt.State()) == 0) {
				t.Fatalf("State() = %d tensors with momentum %v", len(opt.State()), c.mu)
			}
		})
	}
}

// Hand-computed two steps of momentum SGD: lr=0.1, μ=0.9, p₀=1, g=1 both steps.
// Step 1: b=1, p=1-0.1=0.9. Step 2: b=0.9+1=1.9, p=0.9-0.19=0.71.
// Nesterov: step 1: b=1, g'=1+0.9=1.9, p=0.81; step 2: b=1.9, g'=1+1.71=2.71, p=0.539.
func TestSGDMomentumByHand(t *testing.T) {
	for _, c := range []struct {
		nesterov bool
		want     [2]float64
	}{{false, [2]float64{0.9, 0.71}}, {true, [2]float64{0.81, 0.539}}} {
		p := []float64{1}
		opt := NewSGD[float64](1, 0.1, 0.9, c.nesterov)
		for s := 0; s < 2; s++ {
			opt.Step(p, []float64{1})
			if math.Abs(p[0]-c.want[s]) > 1e-12 {
				t.Errorf("nesterov=%v step %d: p=%v want %v", c.nesterov, s+1, p[0], c.want[s])
			}
		}
	}
}

// quadratic: loss = ½·Σ aᵢ(pᵢ-cᵢ)², grad = aᵢ(pᵢ-cᵢ); minimum at c.
func optimQuadGrad[T Float](p, g []T) {
	for i := range p {
		a := T(1 + i%4)
		c := T(i%7) - 3
		g[i] = a * (p[i] - c)
	}
}

func optimTestConverges[T Float](t *testing.T, name string, opt Optimizer[T], n, steps int, tol float64) {
	p := make([]T, n)
	g := make([]T, n)
	for s := 0; s < steps; s++ {
		optimQuadGrad(p, g)
		opt.Step(p, g)
	}
	for i := range p {
		c := float64(i%7) - 3
		if math.Abs(float64(p[i])-c) > tol {
			t.Fatalf("%s: p[%d] = %v, want %v ± %g", name, i, p[i], c, tol)
		}
	}
}

func TestAdamSGDMinimizeQuadratic(t *testing.T) {
	optimTestConverges[float64](t, "Adam64", NewAdam[float64](16, 0.05), 16, 2000, 1e-3)
	optimTestConverges[float32](t, "Adam32", NewAdam[float32](16, 0.05), 16, 2000, 1e-3)
	optimTestConverges[float64](t, "SGD", NewSGD[float64](16, 0.1, 0, false), 16, 500, 1e-6)
	optimTestConverges[float64](t, "SGDMomentum", NewSGD[float64](16, 0.05, 0.9, false), 16, 1000, 1e-6)
	optimTestConverges[float32](t, "SGDNesterov", NewSGD[float32](16, 0.05, 0.9, true), 16, 1000, 1e-4)
}

func TestAdamSGDStepZeroAllocs(t *testing.T) {
	const n = 1024
	p32, g32 := make([]float32, n), make([]float32, n)
	p64, g64 := make([]float64, n), make([]float64, n)
	for i := range g32 {
		g32[i], g64[i] = float32(i)*1e-3, float64(i)*1e-3
	}
	adam32 := NewAdam[float32](n, 1e-3)
	adam64 := NewAdam[float64](n, 1e-3)
	adam64.WeightDecay = 0.01
	sgd := NewSGD[float64](n, 1e-3, 0, false)
	nest := NewSGD[float32](n, 1e-3, 0.9, true)
	for name, f := range map[string]func(){
		"Adam32":      func() { adam32.Step(p32, g32) },
		"AdamW64":     func() { adam64.Step(p64, g64) },
		"SGD64":       func() { sgd.Step(p64, g64) },
		"SGDNesterov": func() { nest.Step(p32, g32) },
	} {
		if a := testing.AllocsPerRun(50, f); a != 0 {
			t.Errorf("%s: %v allocs per Step, want 0", name, a)
		}
	}
}

func TestAdamSGDStateAndStepCount(t *testing.T) {
	a := NewAdam[float32](5, 1e-3)
	st := a.State()
	if len(st) != 2 || st[0].Name != "adam.m" || st[1].Name != "adam.v" || st[0].Shape[0] != 5 || &st[0].Data[0] != &a.M[0] {
		t.Fatalf("Adam.State() = %+v", st)
	}
	a.SetStepCount(42)
	if a.StepCount() != 42 {
		t.Fatal("SetStepCount")
	}
	s := NewSGD[float64](3, 0.1, 0.9, false)
	if st := s.State(); len(st) != 1 || st[0].Name != "sgd.velocity" || st[0].Shape[0] != 3 {
		t.Fatalf("SGD.State() = %+v", st)
	}
}

func TestAdamLengthMismatchPanicsWithMessage(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("expected a panic for mismatched lengths")
		}
		if msg, _ := r.(string); msg == "" || !strings.Contains(msg, "len(params)=3") {
			t.Fatalf("panic message %v", r)
		}
	}()
	NewAdam[float64](4, 0.1).Step(make([]float64, 3), make([]float64, 3))
}

func BenchmarkAdamStep(b *testing.B) {
	const n = 1 << 16
	p, g := make([]float32, n), make([]float32, n)
	a := NewAdam[float32](n, 1e-3)
	b.SetBytes(n * 4)
	for b.Loop() {
		a.Step(p, g)
	}
}

// TestNoDecay: with NoDecay spans, the parameters inside them take the
// update of an optimizer without weight decay and the others that of one
// with it, for AdamW and for SGD (with and without momentum); Select makes
// the spans from names, merging neighbours.
func TestNoDecay(t *testing.T) {
	names := []string{"h.W", "h.b", "bn.gamma", "bn.beta", "out.W", "out.b"}
	offsets := []int{0, 12, 15, 18, 21, 27, 30}
	spans := Select(names, offsets, BiasOrNorm)
	if want := []Span{{12, 21}, {27, 30}}; !slices.Equal(spans, want) {
		t.Fatalf("Select = %v, want %v", spans, want)
	}
	inside := func(i int) bool { return i >= 12 && i < 21 || i >= 27 }
	n := 30
	params, grads := make([]float64, n), make([]float64, n)
	for i := range params {
		params[i], grads[i] = 0.5+float64(i)/10, float64(i%7)-3
	}
	type opt interface{ Step(p, g []float64) }
	makers := map[string]func(wd float64, no []Span) opt{
		"adamw": func(wd float64, no []Span) opt {
			a := NewAdamW[float64](n, 0.01)
			a.WeightDecay, a.NoDecay = wd, no
			return a
		},
		"sgd": func(wd float64, no []Span) opt {
			s := NewSGD[float64](n, 0.01, 0, false)
			s.WeightDecay, s.NoDecay = wd, no
			return s
		},
		"sgd-momentum": func(wd float64, no []Span) opt {
			s := NewSGD[float64](n, 0.01, 0.9, true)
			s.WeightDecay, s.NoDecay = wd, no
			return s
		},
	}
	for name, mk := range makers {
		with, without, mixed := slices.Clone(params), slices.Clone(params), slices.Clone(params)
		a, b, c := mk(0.1, nil), mk(0, nil), mk(0.1, spans)
		for range 3 {
			a.Step(with, grads)
			b.Step(without, grads)
			c.Step(mixed, grads)
		}
		for i := range mixed {
			want := with[i]
			if inside(i) {
				want = without[i]
			}
			if mixed[i] != want {
				t.Fatalf("%s: parameter %d = %v, want %v (inside a NoDecay span: %v)", name, i, mixed[i], want, inside(i))
			}
			if with[i] == without[i] {
				t.Fatalf("%s: weight decay changed nothing at %d", name, i)
			}
		}
		if allocs := testing.AllocsPerRun(10, func() { c.Step(mixed, grads) }); allocs != 0 {
			t.Errorf("%s: a step with NoDecay allocates %v times", name, allocs)
		}
	}
	if a := NewAdamW[float32](4, 1e-3); a.WeightDecay != 0.01 {
		t.Errorf("NewAdamW weight decay %v, want PyTorch's 0.01", a.WeightDecay)
	}
}

// TestStepRangeMatchesStep: BeginStep then StepRange over ranges that
// cover the parameters, in a scrambled order and with edges off the
// vector width and across NoDecay spans, gives Step's result bit for bit.
func TestStepRangeMatchesStep(t *testing.T) {
	const n = 1003
	noDecay := []Span{{5, 17}, {500, 777}}
	mk := map[string]func() RangeStepper[float32]{
		"adamw": func() RangeStepper[float32] {
			a := NewAdamW[float32](n, 1e-2)
			a.NoDecay = noDecay
			return a
		},
		"sgd-nesterov": func() RangeStepper[float32] {
			s := NewSGD[float32](n, 1e-2, 0.9, true)
			s.WeightDecay, s.NoDecay = 1e-3, noDecay
			return s
		},
		"sgd": func() RangeStepper[float32] { return NewSGD[float32](n, 1e-2, 0, false) },
	}
	for name, newOpt := range mk {
		whole, parts := newOpt(), newOpt()
		pw, pp := make([]float32, n), make([]float32, n)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range pw {
			pw[i] = rng.Float32() - 0.5
		}
		copy(pp, pw)
		g := make([]float32, n)
		cuts := []int{0, 3, 16, 17, 250, 499, 501, 776, 800, 1000, n}
		for step := range 5 {
			for i := range g {
				g[i] = float32(rng.NormFloat64())
			}
			whole.Step(pw, g)
			parts.BeginStep()
			for _, k := range rng.Perm(len(cuts) - 1) {
				parts.StepRange(pp, g, cuts[k], cuts[k+1])
			}
			for i := range pw {
				if math.Float32bits(pw[i]) != math.Float32bits(pp[i]) {
					t.Fatalf("%s step %d: parameter %d is %v by ranges, %v by Step", name, step, i, pp[i], pw[i])
				}
			}
		}
	}
}
