//go:build linux

package runtime

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"testing"
)

// TestF32KernelsFenced runs the float32 entry points that may use the
// element-wise assembly kernels with every operand right after or right
// before an inaccessible page, so that a read or write past either end
// faults. Values are checked elsewhere; here only that the results match
// the same call on ordinary slices.
func TestF32KernelsFenced(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	r := rand.New(rand.NewPCG(41, 42))
	const maxElems = 4 * 1024
	fs := make([]*ktFenced, 4)
	for i := range fs {
		fs[i] = newKtFenced(t, maxElems)
	}
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 33, 1001, maxElems - 1} {
		for _, atEnd := range []bool{false, true} {
			src := make([][]float32, len(fs))
			for i := range src {
				src[i] = ewRand(r, n, 1, false)
			}
			fenced := func() [][]float32 {
				a := make([][]float32, len(fs))
				for i, f := range fs {
					a[i] = f.slice(n, atEnd, src[i])
				}
				return a
			}
			plain := func() [][]float32 {
				a := make([][]float32, len(fs))
				for i := range a {
					a[i] = append([]float32(nil), src[i]...)
				}
				return a
			}
			cols := 8 + n%13
			rows := n / cols
			calls := map[string]func(a [][]float32){
				"Unary":        func(a [][]float32) { Unary(Relu, a[0], a[1]) },
				"UnarySigmoid": func(a [][]float32) { Unary(Sigmoid, a[0], a[1]) },
				"UnaryTanh":    func(a [][]float32) { Unary(Tanh, a[0], a[1]) },
				"UnaryExp":     func(a [][]float32) { Unary(Exp, a[0], a[1]) },
				"UnaryGrad":    func(a [][]float32) { UnaryGrad(Tanh, a[0], a[1], a[2]) },
				"UnaryGelu":    func(a [][]float32) { Unary(Gelu, a[0], a[1]) },
				"GeluGrad":     func(a [][]float32) { UnaryGrad(Gelu, a[0], a[1], a[2]) },
				"Softmax":      func(a [][]float32) { Softmax(a[0], a[1], 1, n) },
				"SoftmaxCrossEntropy": func(a [][]float32) {
					a[0][0] = SoftmaxCrossEntropy(a[1], []int32{int32(n - 1)}, 1, n)
				},
				"SoftmaxCrossEntropyGrad": func(a [][]float32) {
					SoftmaxCrossEntropyGrad(a[0], a[1], []int32{0}, 1, n, 0.5)
				},
				"LayerNorm": func(a [][]float32) {
					LayerNorm(a[0], make([]float32, 2), a[1], a[2], a[3], 1, n, 1e-5)
				},
				"LayerNormGrad": func(a [][]float32) {
					saved := make([]float32, 2)
					LayerNorm(make([]float32, n), saved, a[1], a[2], a[2], 1, n, 1e-5)
					LayerNormGrad(a[0], a[3], make([]float32, n), a[1], a[1], a[2], saved, 1, n, false)
				},
				"Binary":       func(a [][]float32) { Binary(Sub, a[0], a[1], a[2]) },
				"BinaryScalar": func(a [][]float32) { BinaryScalar(Div, a[0], a[1], 3, true) },
				"Axpy":         func(a [][]float32) { Axpy(a[0], a[1], 0.5) },
				"Scale":        func(a [][]float32) { Scale(a[0], a[1], 0.5) },
				"Fill":         func(a [][]float32) { Fill(a[0], 0.5) },
				"SumRows":      func(a [][]float32) { SumRows(a[0][n-cols:], a[1][:rows*cols], rows, cols, 1, true) },
				"BinaryRows": func(a [][]float32) {
					BinaryRows(Sub, a[0][n-rows*cols:], a[1][n-rows*cols:], a[2][n-cols:], rows, cols, true)
				},
				"Adam": func(a [][]float32) {
					opt := NewAdam[float32](0, 1e-3)
					opt.M, opt.V = a[2], a[3]
					for i := range a[3] {
						a[3][i] *= a[3][i]
					}
					opt.Step(a[0], a[1])
				},
				"SGD": func(a [][]float32) {
					opt := NewSGD[float32](0, 1e-3, 0.9, true)
					opt.Velocity = a[2]
					opt.Step(a[0], a[1])
				},
			}
			for name, call := range calls {
				if (name == "SumRows" || name == "BinaryRows") && rows == 0 {
					continue
				}
				got, want := fenced(), plain()
				func() {
					defer func() {
						if e := recover(); e != nil {
							t.Fatalf("fenced %s(n=%d, atEnd=%v): %v", name, n, atEnd, e)
						}
					}()
					call(got)
				}()
				call(want)
				for i := range got {
					dispCheck(t, fmt.Sprintf("fenced %s(n=%d, atEnd=%v) operand %d", name, n, atEnd, i), got[i], want[i])
				}
			}
		}
	}
}
