package runtime

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// mlpParams is the parameter count of the 784-128-64-10 MLP.
const mlpParams = 784*128 + 128 + 128*64 + 64 + 64*10 + 10

// BenchmarkAdam times one float32 optimizer step over the parameters of the
// 784-128-64-10 MLP (109386). Compare with -tags noasm for the pure-Go
// loops.
//
// Sub-benchmark gpt is one AdamW step over generated/gpt's 834,304
// parameters (arrays of 13 MB together, beyond L2); run it with
// BACKPROPGEN_NOAVX512=1 too to compare the AVX2 and AVX-512 kernels.
func BenchmarkAdam(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name string
		n    int
		wd   float32
	}{{"wd=0", mlpParams, 0}, {"wd=0.01", mlpParams, 0.01}, {"gpt", 834304, 0.01}} {
		p := ewRand(r, c.n, 1, false)
		g := ewRand(r, c.n, 1e-2, false)
		b.Run(c.name, func(b *testing.B) {
			a := NewAdam[float32](c.n, 1e-3)
			a.WeightDecay = c.wd
			b.SetBytes(int64(c.n) * 4)
			for b.Loop() {
				a.Step(p, g)
			}
		})
	}
}

// BenchmarkSGD is BenchmarkAdam for SGD with Nesterov momentum.
func BenchmarkSGD(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	p := ewRand(r, mlpParams, 1, false)
	g := ewRand(r, mlpParams, 1e-2, false)
	s := NewSGD[float32](mlpParams, 1e-3, 0.9, true)
	b.SetBytes(mlpParams * 4)
	for b.Loop() {
		s.Step(p, g)
	}
}

// BenchmarkElementwise times the float32 kernels of a dense layer of the
// MLP at batch 32: 32×128 (and 32×10) activations.
func BenchmarkElementwise(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][2]int{{32, 128}, {32, 10}} {
		rows, cols := sh[0], sh[1]
		n := rows * cols
		x, y, z := ewRand(r, n, 1, false), ewRand(r, n, 1, false), make([]float32, n)
		bias := ewRand(r, cols, 1, false)
		cases := []struct {
			name string
			f    func()
		}{
			{"Relu", func() { Unary(Relu, z, x) }},
			{"ReluGrad", func() { UnaryGrad(Relu, z, x, y) }},
			{"SigmoidGrad", func() { UnaryGrad(Sigmoid, z, x, y) }},
			{"TanhGrad", func() { UnaryGrad(Tanh, z, x, y) }},
			{"Add", func() { Binary(Add, z, x, y) }},
			{"BiasAdd", func() { BinaryRows(Add, z, x, bias, rows, cols, false) }},
			{"Axpy", func() { Axpy(z, x, 0.5) }},
			{"Scale", func() { Scale(z, x, 0.5) }},
			{"Fill", func() { Fill(z, 0.5) }},
			{"SumRows", func() { SumRows(bias, x, rows, cols, 1, true) }},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("%s/%dx%d", c.name, rows, cols), func(b *testing.B) {
				b.SetBytes(int64(n * 4))
				for b.Loop() {
					c.f()
				}
			})
		}
	}
}

// BenchmarkUnaryActivation times the float32 Unary Exp, Sigmoid and Tanh
// over 4096 elements (in cache). Compare with -tags noasm for the Go loops.
func BenchmarkUnaryActivation(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x := ewRand(r, 4096, 8, false)
	out := make([]float32, len(x))
	for _, op := range []UnaryOp{Exp, Sigmoid, Tanh} {
		b.Run(op.String(), func(b *testing.B) {
			b.SetBytes(int64(len(x)) * 4)
			for b.Loop() {
				Unary(op, out, x)
			}
		})
	}
}

// BenchmarkAdamDenormal is BenchmarkAdam in the state of a network with
// dead units: half the parameters, in runs of 784 (a first-layer weight
// row), have gradient 0 and a first moment that has decayed into the
// float32 subnormal range. Without the flush of tiny moments (momentFlush)
// such a moment never leaves it: 0.9·k·2⁻¹⁴⁹ rounds back to k·2⁻¹⁴⁹ for
// k ≤ 4, so every later step does subnormal arithmetic; with the flush
// the first step sets it to 0. The second moments are small but normal
// (they decay by β2, far more slowly).
func BenchmarkAdamDenormal(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	p := ewRand(r, mlpParams, 1, false)
	g := ewRand(r, mlpParams, 1e-2, false)
	a := NewAdam[float32](mlpParams, 1e-3)
	a.t = 1000
	for i := range a.M {
		a.M[i] = float32(1e-3 * (2*r.Float64() - 1))
		a.V[i] = float32(1e-4 * (r.Float64() + 0.01))
	}
	for row := 0; row*784 < mlpParams; row += 2 {
		for i := row * 784; i < min((row+1)*784, mlpParams); i++ {
			g[i] = 0
			a.M[i] = float32(1+r.IntN(4)) * 0x1p-149 // stuck subnormal
			a.V[i] = float32(1e-10 * (r.Float64() + 0.01))
		}
	}
	b.SetBytes(mlpParams * 4)
	for b.Loop() {
		a.Step(p, g)
	}
}
