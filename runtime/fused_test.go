package runtime

import (
	"math"
	"testing"
)

// TestBiasAct: the fused kernel equals the bias add followed by the
// activation, including NaN propagation, and allocates nothing.
func TestBiasAct(t *testing.T) {
	rng := NewRNG(3)
	for _, act := range []UnaryOp{Relu, Sigmoid, Tanh} {
		// Shapes across several blocks of rows, and one row longer than a block.
		for _, rc := range [][2]int{{1, 1}, {3, 7}, {32, 128}, {5, 33}, {900, 32}, {301, 13}, {2, 5000}} {
			rows, cols := rc[0], rc[1]
			x := make([]float64, rows*cols)
			b := make([]float64, cols)
			for i := range x {
				x[i] = rng.NormFloat64() * 3
			}
			for i := range b {
				b[i] = rng.NormFloat64()
			}
			x[0] = math.NaN()
			want := make([]float64, len(x))
			BinaryRows(Add, want, x, b, rows, cols, false)
			Unary(act, want, want)
			guard := make([]float64, len(x)+2)
			for i := range guard {
				guard[i] = -7
			}
			got := guard[1 : len(x)+1 : len(x)+1]
			BiasAct(act, got, x, b, rows, cols)
			for i := range want {
				if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
					t.Fatalf("%v %dx%d: element %d = %v, want %v", act, rows, cols, i, got[i], want[i])
				}
			}
			if guard[0] != -7 || guard[len(guard)-1] != -7 {
				t.Fatalf("%v: wrote outside the output", act)
			}
			x32, b32, o32 := make([]float32, len(x)), make([]float32, cols), make([]float32, len(x))
			if a := testing.AllocsPerRun(5, func() { BiasAct(act, o32, x32, b32, rows, cols) }); a != 0 {
				t.Fatalf("BiasAct allocates %v times", a)
			}
		}
	}
}
