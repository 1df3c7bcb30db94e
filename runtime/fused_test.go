package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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

// TestGemmBiasAct: the fused product equals Gemm then BiasAct bit for bit
// (float32, over shapes of several row blocks, on every kernel family),
// stays inside its output and allocates nothing.
func TestGemmBiasAct(t *testing.T) { forEachSgemmFamily(t, testGemmBiasAct) }

func testGemmBiasAct(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, act := range []UnaryOp{Relu, Sigmoid, Tanh} {
		for _, s := range [][3]int{{1, 1, 1}, {32, 128, 784}, {32, 10, 64}, {1300, 13, 27}, {700, 64, 40}, {5, 3000, 7}, {200, 300, 300}} {
			m, n, k := s[0], s[1], s[2]
			a := ktRand[float32](r, m*k, 1)
			w := ktRand[float32](r, k*n, 1)
			b := ktRand[float32](r, n, 1)
			want := make([]float32, m*n)
			Gemm(false, false, m, n, k, a, w, want, false)
			BiasAct(act, want, want, b, m, n)
			full, got := ktBuf[float32](m * n)
			GemmBiasAct(act, got, a, w, b, m, n, k)
			ktGuardsOK(t, fmt.Sprintf("GemmBiasAct %v %v", act, s), full)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v %v: element %d = %v, want %v (Gemm then BiasAct)", act, s, i, got[i], want[i])
				}
			}
			if a := testing.AllocsPerRun(3, func() { GemmBiasAct(act, got, a, w, b, m, n, k) }); a != 0 {
				t.Fatalf("GemmBiasAct allocates %v times", a)
			}
		}
	}
	// float64, through the pure-Go product.
	a, w, b := []float64{1, 2, 3, 4}, []float64{1, -1, 2, 0.5}, []float64{0.5, -10}
	got := make([]float64, 4)
	GemmBiasAct(Relu, got, a, w, b, 2, 2, 2)
	if want := []float64{5.5, 0, 11.5, 0}; !slices.Equal(got, want) {
		t.Errorf("GemmBiasAct float64 = %v, want %v", got, want)
	}
}

// TestGemmBiasAdd: the residual epilogue equals GemmBiasAct (identity)
// then Binary(Add, out, r, out) bit for bit, in and out of the row
// blocking, without allocating; float64 by hand.
func TestGemmBiasAdd(t *testing.T) { forEachSgemmFamily(t, testGemmBiasAdd) }

func testGemmBiasAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, s := range [][3]int{{1, 1, 1}, {512, 128, 128}, {512, 128, 512}, {37, 13, 27}, {5, 3000, 7}} {
		m, n, k := s[0], s[1], s[2]
		a := ktRand[float32](r, m*k, 1)
		w := ktRand[float32](r, k*n, 1)
		b := ktRand[float32](r, n, 1)
		res := ktRand[float32](r, m*n, 3)
		want := make([]float32, m*n)
		GemmBiasAct(Linear, want, a, w, b, m, n, k)
		Binary(Add, want, res, want)
		full, got := ktBuf[float32](m * n)
		GemmBiasAdd(got, a, w, b, res, m, n, k)
		ktGuardsOK(t, fmt.Sprintf("GemmBiasAdd %v", s), full)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%v: element %d = %v, want %v (GemmBiasAct then Add)", s, i, got[i], want[i])
			}
		}
		if a := testing.AllocsPerRun(3, func() { GemmBiasAdd(got, a, w, b, res, m, n, k) }); a != 0 {
			t.Fatalf("GemmBiasAdd allocates %v times", a)
		}
	}
	a, w, b, res := []float64{1, 2, 3, 4}, []float64{1, -1, 2, 0.5}, []float64{0.5, -10}, []float64{1, 2, 3, 4}
	got := make([]float64, 4)
	GemmBiasAdd(got, a, w, b, res, 2, 2, 2)
	if want := []float64{6.5, -8, 14.5, -7}; !slices.Equal(got, want) {
		t.Errorf("GemmBiasAdd float64 = %v, want %v", got, want)
	}
}

// TestConv2DBiasAct: the fused convolution equals Conv2D then BiasAct bit
// for bit, for a strided padded geometry and a pointwise one.
func TestConv2DBiasAct(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	const n = 3
	for _, g := range []Conv2DGeom{
		cvMake(9, 7, 3, 3, 3, 5, 2, 1, 1, 1, true),
		cvMake(6, 5, 4, 1, 1, 7, 1, 1, 1, 1, false),
	} {
		nx, nw, nout := cvSizes(g, n)
		x, w, b := ktRand[float32](r, nx, 1), ktRand[float32](r, nw, 1), ktRand[float32](r, g.F, 1)
		col := make([]float32, g.ColSize(n))
		want := make([]float32, nout)
		Conv2D(want, x, w, col, n, g)
		BiasAct(Tanh, want, want, b, nout/g.F, g.F)
		got := make([]float32, nout)
		Conv2DBiasAct(Tanh, got, x, w, b, col, n, g)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: element %d = %v, want %v", g, i, got[i], want[i])
			}
		}
	}
}

// TestUnaryGradSumRows: the fused pass equals UnaryGrad then SumRows bit
// for bit, with and without accumulation, over several blocks of rows.
func TestUnaryGradSumRows(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, op := range []UnaryOp{Relu, Sigmoid, Tanh} {
		for _, s := range [][2]int{{1, 1}, {32, 10}, {900, 32}, {301, 13}, {3, 5000}} {
			rows, cols := s[0], s[1]
			y := ktRand[float32](r, rows*cols, 1)
			dy := ktRand[float32](r, rows*cols, 1)
			db0 := ktRand[float32](r, cols, 1)
			for _, acc := range []bool{false, true} {
				wantDx := make([]float32, rows*cols)
				wantDb := append([]float32(nil), db0...)
				UnaryGrad(op, wantDx, y, dy)
				SumRows(wantDb, wantDx, rows, cols, 1, acc)
				full, dx := ktBuf[float32](rows * cols)
				db := append([]float32(nil), db0...)
				UnaryGradSumRows(op, dx, y, dy, db, rows, cols, acc)
				ktGuardsOK(t, fmt.Sprintf("UnaryGradSumRows %v %v", op, s), full)
				for i := range wantDx {
					if math.Float32bits(dx[i]) != math.Float32bits(wantDx[i]) {
						t.Fatalf("%v %v acc=%v: dx[%d] = %v, want %v", op, s, acc, i, dx[i], wantDx[i])
					}
				}
				for i := range wantDb {
					if math.Float32bits(db[i]) != math.Float32bits(wantDb[i]) {
						t.Fatalf("%v %v acc=%v: db[%d] = %v, want %v", op, s, acc, i, db[i], wantDb[i])
					}
				}
				if a := testing.AllocsPerRun(3, func() { UnaryGradSumRows(op, dx, y, dy, db, rows, cols, acc) }); a != 0 {
					t.Fatalf("UnaryGradSumRows allocates %v times", a)
				}
			}
		}
	}
}
