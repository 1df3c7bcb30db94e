//go:build !noasm

package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Direct tests of every element-wise assembly kernel against a reference
// loop written with explicit float32 conversions, which forbid the
// compiler to fuse a multiply and an add (Go spec, "Arithmetic
// operators"), so the reference rounds after every operation whatever
// GOAMD64 is. The kernels do the same operations unfused and must match
// it bit for bit (any NaN matching any NaN). Every array sits between
// guard bands of NaN sentinels; the kernel must write exactly the first
// n&^7 elements of its outputs and leave their last n%8 elements, the
// guards and its inputs alone.

// flushRef is the optimizers' flush of tiny moments (momentFlush).
func flushRef(x float32) float32 {
	if math.Abs(float64(x)) < momentFlush {
		return 0
	}
	return x
}

// nearFlush returns ±momentFlush/0.9 or ±momentFlush/0.999 moved by a few
// ulp, so that β·x lands on either side of the threshold (or exactly on
// it), or ±momentFlush itself moved by a few ulp.
func nearFlush(r *rand.Rand) float32 {
	base := []float32{momentFlush, momentFlush / 0.9, momentFlush / 0.999}[r.IntN(3)]
	x := math.Float32frombits(math.Float32bits(base) + uint32(r.IntN(7)) - 3)
	if r.IntN(2) == 0 {
		x = -x
	}
	return x
}

func skipNoF32Asm(t *testing.T) {
	if !haveF32Asm {
		t.Skip("CPU lacks AVX: the element-wise assembly kernels are not used")
	}
}

// ewLens are the lengths every kernel is run with.
var ewLens = func() []int {
	var l []int
	for n := 0; n <= 70; n++ {
		l = append(l, n)
	}
	return append(l, 127, 129, 255, 1001, 4099)
}()

// ewKernel is a stream kernel under test: it has len(init) arrays, runs on
// the arrays' first n elements, and ref applies the same update to element
// i of the reference arrays.
type ewKernel struct {
	name string
	// init returns the initial contents of the arrays for length n.
	init func(r *rand.Rand, n int) [][]float32
	run  func(n int, a [][]float32)
	ref  func(a [][]float32, i int)
	// runZ, when set, is the kernel's AVX-512 twin, which runs on the
	// whole vectors of 16 only.
	runZ func(n int, a [][]float32)
	vec  int // elements per vector when not 8
}

func ewKernels(r *rand.Rand) []ewKernel {
	sc := func() float32 { return float32(2*r.Float64() - 1) }
	arrays := func(k int, specials bool) func(r *rand.Rand, n int) [][]float32 {
		return func(r *rand.Rand, n int) [][]float32 {
			a := make([][]float32, k)
			for j := range a {
				a[j] = ewRand(r, n, 2, specials)
			}
			return a
		}
	}
	var ks []ewKernel
	add := func(name string, nArr int, run func(n int, a [][]float32), ref func(a [][]float32, i int)) {
		ks = append(ks, ewKernel{name: name, init: arrays(nArr, true), run: run, ref: ref})
	}

	// Unary: a[0] = out, a[1] = x.
	add("Relu", 2, func(n int, a [][]float32) { f32Relu(n, ewP(a[0]), ewP(a[1])) },
		func(a [][]float32, i int) {
			v := a[1][i]
			if v < 0 {
				v = 0
			}
			a[0][i] = v
		})
	add("Neg", 2, func(n int, a [][]float32) { f32Neg(n, ewP(a[0]), ewP(a[1])) },
		func(a [][]float32, i int) { a[0][i] = -a[1][i] })
	add("Sqrt", 2, func(n int, a [][]float32) { f32Sqrt(n, ewP(a[0]), ewP(a[1])) },
		func(a [][]float32, i int) { a[0][i] = float32(math.Sqrt(float64(a[1][i]))) })

	// UnaryGrad: a[0] = dx, a[1] = y, a[2] = dy.
	add("ReluGrad", 3, func(n int, a [][]float32) { f32ReluGrad(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) {
			g := a[2][i]
			if !(a[1][i] > 0) {
				g = 0
			}
			a[0][i] = g
		})
	add("SigmoidGrad", 3, func(n int, a [][]float32) { f32SigmoidGrad(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) { v := a[1][i]; a[0][i] = float32(a[2][i]*v) * float32(1-v) })
	add("TanhGrad", 3, func(n int, a [][]float32) { f32TanhGrad(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) { v := a[1][i]; a[0][i] = a[2][i] * float32(1-float32(v*v)) })
	add("SqrtGrad", 3, func(n int, a [][]float32) { f32SqrtGrad(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) { a[0][i] = float32(a[2][i]*0.5) / a[1][i] })

	// Binary: a[0] = out, a[1] = a, a[2] = b.
	add("Add", 3, func(n int, a [][]float32) { f32Add(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) { a[0][i] = a[1][i] + a[2][i] })
	add("Sub", 3, func(n int, a [][]float32) { f32Sub(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) { a[0][i] = a[1][i] - a[2][i] })
	add("Mul", 3, func(n int, a [][]float32) { f32Mul(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) { a[0][i] = a[1][i] * a[2][i] })
	add("Div", 3, func(n int, a [][]float32) { f32Div(n, ewP(a[0]), ewP(a[1]), ewP(a[2])) },
		func(a [][]float32, i int) { a[0][i] = a[1][i] / a[2][i] })

	// BinaryScalar: a[0] = out, a[1] = a.
	for _, s := range []float32{sc(), 0, float32(math.Inf(-1))} {
		add(fmt.Sprint("AddScalar ", s), 2, func(n int, a [][]float32) { f32AddScalar(n, ewP(a[0]), ewP(a[1]), s) },
			func(a [][]float32, i int) { a[0][i] = a[1][i] + s })
		add(fmt.Sprint("SubScalar ", s), 2, func(n int, a [][]float32) { f32SubScalar(n, ewP(a[0]), ewP(a[1]), s) },
			func(a [][]float32, i int) { a[0][i] = a[1][i] - s })
		add(fmt.Sprint("ScalarSub ", s), 2, func(n int, a [][]float32) { f32ScalarSub(n, ewP(a[0]), ewP(a[1]), s) },
			func(a [][]float32, i int) { a[0][i] = s - a[1][i] })
		add(fmt.Sprint("MulScalar ", s), 2, func(n int, a [][]float32) { f32MulScalar(n, ewP(a[0]), ewP(a[1]), s) },
			func(a [][]float32, i int) { a[0][i] = a[1][i] * s })
		add(fmt.Sprint("DivScalar ", s), 2, func(n int, a [][]float32) { f32DivScalar(n, ewP(a[0]), ewP(a[1]), s) },
			func(a [][]float32, i int) { a[0][i] = a[1][i] / s })
		add(fmt.Sprint("ScalarDiv ", s), 2, func(n int, a [][]float32) { f32ScalarDiv(n, ewP(a[0]), ewP(a[1]), s) },
			func(a [][]float32, i int) { a[0][i] = s / a[1][i] })
		// Axpy: a[0] = y, a[1] = x.
		add(fmt.Sprint("Axpy ", s), 2, func(n int, a [][]float32) { f32Axpy(n, ewP(a[0]), ewP(a[1]), s) },
			func(a [][]float32, i int) { a[0][i] = a[0][i] + float32(s*a[1][i]) })
		add(fmt.Sprint("Fill ", s), 1, func(n int, a [][]float32) { f32Fill(n, ewP(a[0]), s) },
			func(a [][]float32, i int) { a[0][i] = s })
	}

	// Optimizers: a[0] = p, a[1] = grad, then the state.
	for _, wd := range []float32{0, 0.01} {
		lr, mu := float32(0.05), float32(0.9)
		add(fmt.Sprint("SGD wd=", wd), 2, func(n int, a [][]float32) { f32SGD(n, ewP(a[0]), ewP(a[1]), lr, wd) },
			func(a [][]float32, i int) { a[0][i] = a[0][i] - float32(lr*float32(a[1][i]+float32(wd*a[0][i]))) })
		for _, nesterov := range []bool{false, true} {
			add(fmt.Sprintf("SGD wd=%v nesterov=%v", wd, nesterov), 3,
				func(n int, a [][]float32) {
					if nesterov {
						f32SGDNesterov(n, ewP(a[0]), ewP(a[1]), ewP(a[2]), lr, wd, mu)
					} else {
						f32SGDMomentum(n, ewP(a[0]), ewP(a[1]), ewP(a[2]), lr, wd, mu)
					}
				},
				func(a [][]float32, i int) {
					gi := a[1][i] + float32(wd*a[0][i])
					bi := flushRef(float32(mu*a[2][i]) + gi)
					a[2][i] = bi
					if nesterov {
						bi = gi + float32(mu*bi)
					}
					a[0][i] = a[0][i] - float32(lr*bi)
				})
		}
		for _, t := range []int64{1, 2, 1000} {
			opt := &Adam[float32]{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, t: t - 1}
			c := opt.nextCoef()
			ks = append(ks, ewKernel{
				name: fmt.Sprintf("Adam wd=%v t=%d", wd, t),
				init: func(r *rand.Rand, n int) [][]float32 {
					a := arrays(4, true)(r, n)
					// Mostly non-negative second moments, with specials.
					for i, x := range a[3] {
						if x == x && r.IntN(16) != 0 {
							a[3][i] = float32(math.Abs(float64(x))) * 1e-3
						}
					}
					// Some moments and gradients around the flush threshold.
					for i := range a[0] {
						if r.IntN(4) == 0 {
							a[1][i] = 0
							a[2][i] = nearFlush(r)
							a[3][i] = float32(math.Abs(float64(nearFlush(r))))
						}
					}
					return a
				},
				run: func(n int, a [][]float32) {
					f32Adam(n, ewP(a[0]), ewP(a[1]), ewP(a[2]), ewP(a[3]),
						c.b1, c.c1, c.b2, c.c2, c.invSqrtBC2, c.eps, c.step, c.decay)
				},
				// The AVX-512 kernel, on the whole vectors of 16 (the
				// reference runs on the same elements).
				runZ: func(n int, a [][]float32) {
					f32AdamZ(n, ewP(a[0]), ewP(a[1]), ewP(a[2]), ewP(a[3]),
						c.b1, c.c1, c.b2, c.c2, c.invSqrtBC2, c.eps, c.step, c.decay)
				},
				ref: func(a [][]float32, i int) {
					g := a[1][i]
					m := flushRef(float32(c.b1*a[2][i]) + float32(c.c1*g))
					v := flushRef(float32(c.b2*a[3][i]) + float32(float32(c.c2*g)*g))
					a[2][i], a[3][i] = m, v
					denom := float32(float32(math.Sqrt(float64(v)))*c.invSqrtBC2) + c.eps
					a[0][i] = float32(a[0][i]*c.decay) - float32(c.step*float32(m/denom))
				},
			})
		}
	}
	return ks
}

func TestF32StreamKernels(t *testing.T) {
	skipNoF32Asm(t)
	r := rand.New(rand.NewPCG(21, 22))
	var ks []ewKernel
	for _, k := range ewKernels(r) {
		ks = append(ks, k)
		if k.runZ != nil && haveSgemmAVX512 {
			ks = append(ks, ewKernel{name: k.name + "Z", init: k.init, run: k.runZ, ref: k.ref, vec: 16})
		}
	}
	for _, k := range ks {
		for _, n := range ewLens {
			init := k.init(r, n)
			bufs := make([][]float32, len(init))
			mids := make([][]float32, len(init))
			want := make([][]float32, len(init))
			for j, s := range init {
				bufs[j], mids[j] = ktBuf[float32](n)
				copy(mids[j], s)
				want[j] = append([]float32(nil), s...)
			}
			k.run(n, mids)
			vec := max(k.vec, 8)
			for i := 0; i < n/vec*vec; i++ {
				k.ref(want, i)
			}
			name := fmt.Sprintf("f32%s(n=%d)", k.name, n)
			for j := range bufs {
				ktGuardsOK(t, fmt.Sprintf("%s array %d", name, j), bufs[j])
				for i, w := range want[j] {
					if g := mids[j][i]; !ewSame(g, w) {
						t.Fatalf("%s: array %d [%d] = %v (%#x), want %v (%#x) from inputs %v",
							name, j, i, g, math.Float32bits(g), w, math.Float32bits(w), ewColumn(init, i))
					}
				}
			}
		}
	}
}

func ewColumn(a [][]float32, i int) []float32 {
	c := make([]float32, len(a))
	for j := range a {
		c[j] = a[j][i]
	}
	return c
}

func TestF32SumRowsKernel(t *testing.T) {
	skipNoF32Asm(t)
	r := rand.New(rand.NewPCG(23, 24))
	for _, cols := range ewLens {
		for _, rows := range []int{0, 1, 2, 3, 7, 32} {
			ld := cols + r.IntN(3)
			in := ewRand(r, rows*ld, 2, rows > 2)
			init := ewRand(r, cols, 1, false)
			full, out := ktBuf[float32](cols)
			copy(out, init)
			scale := float32(0.25 + r.Float64())
			f32SumRows(cols, rows, ewP(out), ewP(in), ld, scale)
			want := append([]float32(nil), init...)
			for c := 0; c < cols&^7; c++ {
				for i := 0; i < rows; i++ {
					want[c] = want[c] + float32(scale*in[i*ld+c])
				}
			}
			name := fmt.Sprintf("f32SumRows(cols=%d, rows=%d, ld=%d)", cols, rows, ld)
			ktGuardsOK(t, name, full)
			for c, w := range want {
				if !ewSame(out[c], w) {
					t.Fatalf("%s: out[%d] = %v, want %v", name, c, out[c], w)
				}
			}
		}
	}
}

func TestF32RowKernels(t *testing.T) {
	skipNoF32Asm(t)
	r := rand.New(rand.NewPCG(25, 26))
	type rowKernel struct {
		name string
		run  func(rows, cols int, out, a, b *float32)
		ref  func(a, b float32) float32
	}
	kernels := []rowKernel{
		{"AddRow", f32AddRow, func(a, b float32) float32 { return a + b }},
		{"SubRow", f32SubRow, func(a, b float32) float32 { return a - b }},
		{"RowSub", f32RowSub, func(a, b float32) float32 { return b - a }},
		{"MulRow", f32MulRow, func(a, b float32) float32 { return a * b }},
		{"DivRow", f32DivRow, func(a, b float32) float32 { return a / b }},
		{"RowDiv", f32RowDiv, func(a, b float32) float32 { return b / a }},
	}
	for _, k := range kernels {
		for _, cols := range ewLens[:72] {
			for _, rows := range []int{0, 1, 2, 5} {
				a := ewRand(r, rows*cols, 2, true)
				b := ewRand(r, cols, 2, true)
				full, out := ktBuf[float32](rows * cols)
				k.run(rows, cols, ewP(out), ewP(a), ewP(b))
				name := fmt.Sprintf("f32%s(rows=%d, cols=%d)", k.name, rows, cols)
				ktGuardsOK(t, name, full)
				for i, g := range out {
					want := float32(-12345) // ktBuf's garbage: not written
					if c := i % cols; c < cols&^7 {
						want = k.ref(a[i], b[c])
					}
					if !ewSame(g, want) {
						t.Fatalf("%s: out[%d] = %v, want %v", name, i, g, want)
					}
				}
			}
		}
	}
}
