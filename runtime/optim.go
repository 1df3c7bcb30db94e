package runtime

import (
	"fmt"
	"math"
	"strings"
)

// Optimizer updates one flat parameter slice from its flat gradient slice.
//
// Generated code keeps every trainable parameter in a single contiguous
// buffer (and every gradient in a parallel one), so an optimizer needs no
// per-tensor bookkeeping and a step is one tight loop.
type Optimizer[T Float] interface {
	// Step applies one update to params using grads. grads is only read;
	// the caller clears it before the next backward pass. Step allocates
	// nothing. len(params) and len(grads) must equal the size the optimizer
	// was created with; a mismatch is a bug in the calling code (not bad
	// input data) and panics with a message saying so.
	Step(params, grads []T)
	// State returns views of the optimizer's state buffers, flat with shape
	// [len], so they can be written to and restored from a checkpoint with
	// SaveCheckpoint/LoadCheckpoint. The step count is not a tensor: store
	// StepCount in the checkpoint metadata.
	State() []Tensor[T]
	// StepCount is the number of Step calls so far (Adam's bias correction
	// depends on it).
	StepCount() int64
	// SetStepCount restores the step count after loading a checkpoint.
	SetStepCount(int64)
}

// checkStepLens panics with an actionable message when the slices passed to
// Step do not match the optimizer's size. Step has no error result because
// it runs every training step; a size mismatch can only come from wiring the
// optimizer to the wrong buffers, which is a programming error.
func checkStepLens(kind string, params, grads, state int) {
	if params != grads || params != state {
		panic(fmt.Sprintf("runtime: %s.Step: len(params)=%d, len(grads)=%d, optimizer state size=%d; "+
			"they must be equal: create the optimizer with the model's parameter count", kind, params, grads, state))
	}
}

// Adam is the Adam optimizer (Kingma & Ba, 2015) with PyTorch's update rule:
//
//	m ← β1·m + (1-β1)·g
//	v ← β2·v + (1-β2)·g²
//	p ← p - (LR/(1-β1ᵗ)) · m / (√v/√(1-β2ᵗ) + Eps)
//
// where t is the step count after incrementing (√v/√(1-β2ᵗ) is computed
// as √v·(1/√(1-β2ᵗ)), the reciprocal rounded once: within an ulp of
// PyTorch's quotient, one division per element less). When WeightDecay > 0 the
// decay is decoupled from the gradient as in AdamW (Loshchilov & Hutter):
// p ← p·(1 - LR·WeightDecay) is applied before the update above, matching
// torch.optim.AdamW. (Decoupled decay is the variant that behaves well with
// adaptive step sizes; classic L2-in-the-gradient Adam is not offered.)
//
// One deliberate difference from PyTorch: after each update a moment with
// |m| < 2⁻¹⁰⁰ or |v| < 2⁻¹⁰⁰ (momentFlush) is set to exactly 0, before it
// is used and stored. Without this, the moments of a parameter whose
// gradient stays 0 (a dead ReLU unit) decay by β1 (and, more slowly, β2)
// per step into the float32 subnormal range within a few hundred steps and
// stay there (0.9·k·2⁻¹⁴⁹ rounds back to k·2⁻¹⁴⁹ for k ≤ 4), and on x86 every multiply, square root and divide with a subnormal operand
// takes a microcode assist costing 10-100 times a normal one: it made the
// optimizer step several times slower in real training. The flush changes
// the step of a parameter by at most about LR·2⁻¹⁰⁰/((1-β1ᵗ)·Eps) for m,
// and for v moves the denominator by at most 2⁻⁵⁰/√(1-β2ᵗ) — both far below
// the float32 resolution of any parameter for Eps around the default 1e-8
// (Eps must be > 0, as it already had to be: with Eps = 0 a zero gradient
// gives 0/0). float64 moments are flushed the same way for consistency.
type Adam[T Float] struct {
	LR, Beta1, Beta2, Eps, WeightDecay T
	// NoDecay lists the parameters WeightDecay leaves alone, by their
	// spans in the flat parameter slice (Select makes them from a model's
	// ParamNames and ParamOffsets), sorted and not overlapping.
	NoDecay []Span
	// M and V are the first and second moment estimates, one per parameter.
	M, V []T
	// Prefix names the state tensors: "<Prefix>.m" and "<Prefix>.v".
	// NewAdam sets it to "adam".
	Prefix string
	t      int64
	cur    adamCoef[T] // the step begun by BeginStep
}

// NewAdamW returns PyTorch's AdamW: Adam with decoupled weight decay 0.01
// (torch.optim.AdamW's default). Set NoDecay to exclude parameters, e.g.
// biases and normalization parameters:
//
//	opt := runtime.NewAdamW[float32](mlp.NumParams, 1e-3)
//	opt.NoDecay = runtime.Select(mlp.ParamNames, mlp.ParamOffsets, runtime.BiasOrNorm)
func NewAdamW[T Float](size int, lr T) *Adam[T] {
	a := NewAdam(size, lr)
	a.WeightDecay = 0.01
	return a
}

// NewAdam returns an Adam optimizer for size parameters with learning rate lr
// and PyTorch's defaults β1=0.9, β2=0.999, Eps=1e-8, no weight decay.
func NewAdam[T Float](size int, lr T) *Adam[T] {
	if size < 0 {
		size = 0
	}
	return &Adam[T]{
		LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		M: make([]T, size), V: make([]T, size),
		Prefix: "adam",
	}
}

// Step applies one Adam update. It allocates nothing and its inner loop has
// no bounds checks (all slices are re-sliced to len(params) first).
func (a *Adam[T]) Step(params, grads []T) {
	a.BeginStep()
	a.StepRange(params, grads, 0, len(params))
}

// BeginStep starts a step that StepRange applies a range of the
// parameters at a time (see RangeStepper).
func (a *Adam[T]) BeginStep() { a.cur = a.nextCoef() }

// StepRange applies the step begun by BeginStep to params[lo:hi]. Every
// element's update is the same operations in the same order whatever the
// ranges (the vector kernels and their scalar tails round alike), so
// ranges covering the parameters give Step's result bit for bit.
func (a *Adam[T]) StepRange(params, grads []T, lo, hi int) {
	checkStepLens("Adam", len(params), len(grads), len(a.M))
	checkStepLens("Adam", len(params), len(grads), len(a.V))
	c := a.cur
	free := c // the coefficients of the parameters in NoDecay
	free.decay = 1
	spansIn(lo, hi, len(params), a.NoDecay, "Adam", func(lo, hi int, decay bool) {
		c := &c
		if !decay {
			c = &free
		}
		p := params[lo:hi]
		g := grads[lo:hi]
		m := a.M[lo:hi]
		v := a.V[lo:hi]
		// On amd64, float32 vectors of 8 run on assembly with the same
		// operations and roundings as adamLoop (elementwise_amd64.go).
		k := adamAsm(p, g, m, v, c)
		adamLoop(p[k:], g[k:], m[k:], v[k:], c)
	})
}

// RangeStepper is an optimizer whose step can be split over ranges of the
// parameters, run in any order or concurrently (a data-parallel trainer
// updates on each worker the part of the parameters whose gradients it
// summed): BeginStep once, then StepRange over ranges that cover the
// parameters once, gives Step's result bit for bit.
type RangeStepper[T Float] interface {
	Optimizer[T]
	BeginStep()
	StepRange(params, grads []T, lo, hi int)
}

// Span is a half-open range [Start, End) of a flat parameter slice.
type Span struct{ Start, End int }

// Select returns the spans of the parameters whose names match, from a
// generated model's ParamNames and ParamOffsets (offset i is where
// parameter i starts; the last is NumParams), in order.
func Select(names []string, offsets []int, match func(name string) bool) []Span {
	var out []Span
	for i, name := range names {
		if !match(name) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == offsets[i] {
			out[n-1].End = offsets[i+1]
			continue
		}
		out = append(out, Span{offsets[i], offsets[i+1]})
	}
	return out
}

// BiasOrNorm matches the parameters weight decay usually leaves alone: the
// biases of dense, convolution and recurrent layers (NAME.b, NAME.bh) and
// the scales and shifts of normalizations (NAME.gamma, NAME.beta).
func BiasOrNorm(name string) bool {
	for _, s := range []string{".b", ".bh", ".gamma", ".beta"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// spans calls f on [0, n) cut at the spans of noDecay: decay is false
// inside them. It panics when they are unsorted, overlap or leave [0, n):
// an optimizer wired with another model's spans.
func spans(n int, noDecay []Span, kind string, f func(lo, hi int, decay bool)) {
	pos := 0
	for _, s := range noDecay {
		if s.Start < pos || s.End < s.Start || s.End > n {
			panic(fmt.Sprintf("runtime: %s.NoDecay: span [%d, %d) is out of order or outside the %d parameters; make the spans with Select from the model's ParamNames and ParamOffsets", kind, s.Start, s.End, n))
		}
		if s.Start > pos {
			f(pos, s.Start, true)
		}
		if s.End > s.Start {
			f(s.Start, s.End, false)
		}
		pos = s.End
	}
	if pos < n {
		f(pos, n, true)
	}
}

// spansIn is spans restricted to [lo, hi).
func spansIn(lo, hi, n int, noDecay []Span, kind string, f func(lo, hi int, decay bool)) {
	if lo < 0 || hi > n || lo > hi {
		panic(fmt.Sprintf("runtime: %s.StepRange: range [%d, %d) is outside the %d parameters", kind, lo, hi, n))
	}
	spans(n, noDecay, kind, func(a, b int, decay bool) {
		if a, b = max(a, lo), min(b, hi); a < b {
			f(a, b, decay)
		}
	})
}

// momentFlush is the threshold below which the optimizers' moment
// estimates (Adam's m and v, SGD's velocity) are set to 0 after each update,
// keeping the step free of subnormal arithmetic (see Adam). It is a power
// of two, exact in float32 and float64, and far above the float32 subnormal
// range (< 2⁻¹²⁶), so β·m of a kept moment stays normal too. The assembly
// kernels (internal/asmgen/elementwise.go) use the same constant.
const momentFlush = 0x1p-100

// flushTiny returns 0 if |x| < momentFlush, else x (NaN too). The test is
// on |x| so that its branch is predictable whatever the signs of the
// moments (x's conversion to float64 is exact).
func flushTiny[T Float](x T) T {
	if math.Abs(float64(x)) < momentFlush {
		return 0
	}
	return x
}

// adamCoef holds the per-step coefficients of the Adam update.
type adamCoef[T Float] struct {
	b1, c1, b2, c2  T // β1, 1-β1, β2, 1-β2
	invSqrtBC2, eps T // 1/√(1-β2ᵗ), Eps
	step, decay     T // LR/(1-β1ᵗ), 1-LR·WeightDecay
}

// nextCoef increments the step count and returns the coefficients of
// that step.
func (a *Adam[T]) nextCoef() adamCoef[T] {
	a.t++
	// Bias corrections in float64: β^t underflows gracefully and loses no
	// precision for large t, then we round once to T.
	bc1 := 1 - math.Pow(float64(a.Beta1), float64(a.t))
	bc2 := 1 - math.Pow(float64(a.Beta2), float64(a.t))
	return adamCoef[T]{
		b1: a.Beta1, c1: 1 - a.Beta1,
		b2: a.Beta2, c2: 1 - a.Beta2,
		// A product by 1/√(1-β2ᵗ) (rounded once from float64) where
		// PyTorch divides by √(1-β2ᵗ): one division less per element
		// (the update runs 1.15× faster); the two differ by at most an
		// ulp of the denominator.
		invSqrtBC2: T(1 / math.Sqrt(bc2)),
		eps:        a.Eps,
		step:       T(float64(a.LR) / bc1),
		// decay == 1 exactly when WeightDecay is 0, and p*1 == p, so the
		// loop needs no branch.
		decay: 1 - a.LR*a.WeightDecay,
	}
}

// adamLoop is the element loop of Adam.Step; g, m and v are at least
// len(p) long.
func adamLoop[T Float](p, g, m, v []T, c *adamCoef[T]) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	b1, c1, b2, c2 := c.b1, c.c1, c.b2, c.c2
	invSqrtBC2, eps, stepSize, decay := c.invSqrtBC2, c.eps, c.step, c.decay
	for i := range p {
		gi := g[i]
		mi := flushTiny(b1*m[i] + c1*gi)
		vi := flushTiny(b2*v[i] + c2*gi*gi)
		m[i] = mi
		v[i] = vi
		denom := T(math.Sqrt(float64(vi)))*invSqrtBC2 + eps
		p[i] = p[i]*decay - stepSize*(mi/denom)
	}
}

// State returns the moment buffers as "<Prefix>.m" and "<Prefix>.v".
func (a *Adam[T]) State() []Tensor[T] {
	return []Tensor[T]{
		{Name: a.Prefix + ".m", Shape: []int{len(a.M)}, Data: a.M},
		{Name: a.Prefix + ".v", Shape: []int{len(a.V)}, Data: a.V},
	}
}

// StepCount returns the number of steps taken.
func (a *Adam[T]) StepCount() int64 { return a.t }

// SetLR sets the learning rate of the next steps (a schedule's).
func (a *Adam[T]) SetLR(lr float64) { a.LR = T(lr) }

// SetStepCount sets the step count, e.g. after loading a checkpoint.
func (a *Adam[T]) SetStepCount(t int64) { a.t = t }

// SGD is stochastic gradient descent with PyTorch's (torch.optim.SGD,
// dampening 0) semantics for weight decay, momentum and Nesterov momentum:
//
//	g ← g + WeightDecay·p                  (coupled L2 decay)
//	b ← Momentum·b + g                     (if Momentum ≠ 0; b starts at 0, so b₁ = g₁)
//	g ← g + Momentum·b  if Nesterov, else g ← b
//	p ← p - LR·g
//
// Note this is PyTorch's form (LR multiplies the velocity at the update),
// not Sutskever's (LR folded into the velocity); they differ when LR changes.
//
// As with Adam's moments, a velocity with |b| < 2⁻¹⁰⁰ (momentFlush) is set
// to exactly 0 after its update, before it is used and stored, so that the
// velocity of a parameter whose gradient stays 0 does not decay by Momentum
// per step into the subnormal range (slow on x86). This changes the
// parameter by less than LR·2⁻¹⁰⁰·(1+Momentum), far below its resolution.
type SGD[T Float] struct {
	LR, Momentum, WeightDecay T
	Nesterov                  bool
	// NoDecay lists the parameters WeightDecay leaves alone (see Adam).
	NoDecay []Span
	// Velocity is the momentum buffer b; nil when created with Momentum 0.
	Velocity []T
	// Prefix names the state tensor "<Prefix>.velocity". NewSGD sets it to "sgd".
	Prefix string
	t      int64
}

// NewSGD returns an SGD optimizer for size parameters. The velocity buffer is
// allocated only when momentum ≠ 0 (plain SGD has no state).
func NewSGD[T Float](size int, lr, momentum T, nesterov bool) *SGD[T] {
	if size < 0 {
		size = 0
	}
	s := &SGD[T]{LR: lr, Momentum: momentum, Nesterov: nesterov, Prefix: "sgd"}
	if momentum != 0 {
		s.Velocity = make([]T, size)
	}
	return s
}

// Step applies one SGD update. It allocates nothing.
func (s *SGD[T]) Step(params, grads []T) {
	s.BeginStep()
	s.StepRange(params, grads, 0, len(params))
}

// BeginStep starts a step that StepRange applies a range of the
// parameters at a time (see RangeStepper).
func (s *SGD[T]) BeginStep() { s.t++ }

// StepRange applies the step begun by BeginStep to params[lo:hi]; ranges
// covering the parameters give Step's result bit for bit.
func (s *SGD[T]) StepRange(params, grads []T, lo, hi int) {
	checkStepLens("SGD", len(params), len(grads), len(grads))
	if mu := s.Momentum; mu != 0 && len(s.Velocity) != len(params) {
		panic(fmt.Sprintf("runtime: SGD.Step: Momentum is %v but the velocity buffer has %d elements for %d parameters; "+
			"create the optimizer with NewSGD and a non-zero momentum", float64(mu), len(s.Velocity), len(params)))
	}
	spansIn(lo, hi, len(params), s.NoDecay, "SGD", func(lo, hi int, decay bool) {
		wd := s.WeightDecay
		if !decay {
			wd = 0
		}
		var b []T
		if s.Momentum != 0 {
			b = s.Velocity[lo:hi]
		}
		s.step(params[lo:hi], grads[lo:hi], b, wd)
	})
}

// step is Step on one span of the parameters, with weight decay wd.
func (s *SGD[T]) step(p, g, b []T, wd T) {
	lr, mu := s.LR, s.Momentum
	g = g[:len(p)]
	if mu == 0 {
		k := sgdAsm(p, g, lr, wd)
		p, g = p[k:], g[k:]
		g = g[:len(p)]
		for i := range p {
			p[i] -= lr * (g[i] + wd*p[i])
		}
		return
	}
	b = b[:len(p)]
	k := sgdMomentumAsm(p, g, b, lr, wd, mu, s.Nesterov)
	p, g, b = p[k:], g[k:], b[k:]
	g, b = g[:len(p)], b[:len(p)]
	if s.Nesterov {
		for i := range p {
			gi := g[i] + wd*p[i]
			bi := flushTiny(mu*b[i] + gi)
			b[i] = bi
			p[i] -= lr * (gi + mu*bi)
		}
		return
	}
	for i := range p {
		gi := g[i] + wd*p[i]
		bi := flushTiny(mu*b[i] + gi)
		b[i] = bi
		p[i] -= lr * bi
	}
}

// State returns the velocity as "<Prefix>.velocity", or nothing for plain SGD.
func (s *SGD[T]) State() []Tensor[T] {
	if s.Velocity == nil {
		return nil
	}
	return []Tensor[T]{{Name: s.Prefix + ".velocity", Shape: []int{len(s.Velocity)}, Data: s.Velocity}}
}

// StepCount returns the number of steps taken.
func (s *SGD[T]) StepCount() int64 { return s.t }

// SetLR sets the learning rate of the next steps (a schedule's).
func (s *SGD[T]) SetLR(lr float64) { s.LR = T(lr) }

// SetStepCount sets the step count, e.g. after loading a checkpoint.
func (s *SGD[T]) SetStepCount(t int64) { s.t = t }

// Scheduled is an optimizer whose learning rate a schedule sets before each
// step (runtime/train's Fit).
type Scheduled[T Float] interface {
	Optimizer[T]
	SetLR(lr float64)
}

var (
	_ Scheduled[float32] = (*Adam[float32])(nil)
	_ Scheduled[float64] = (*SGD[float64])(nil)

	_ RangeStepper[float32] = (*Adam[float32])(nil)
	_ RangeStepper[float64] = (*SGD[float64])(nil)
)
