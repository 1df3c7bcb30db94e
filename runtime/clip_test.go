package runtime

import (
	"math"
	"testing"
)

func clTestNorm[T Float](t *testing.T) {
	// Above the threshold: scaled by maxNorm/(norm+1e-6).
	g := []T{3, 0, -4}
	if n := ClipGradNorm(g, 1); n != 5 {
		t.Fatalf("norm = %v, want 5", n)
	}
	s := T(1 / (5 + 1e-6))
	want := []T{3 * s, 0, -4 * s}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("clipped[%d] = %v, want %v", i, g[i], want[i])
		}
	}
	var sq float64
	for _, v := range g {
		sq += float64(v) * float64(v)
	}
	if math.Abs(math.Sqrt(sq)-1) > 1e-5 {
		t.Fatalf("norm after clipping = %v, want ≈ 1", math.Sqrt(sq))
	}

	// At or below the threshold: untouched.
	for _, maxNorm := range []float64{5, 7} {
		g = []T{3, 0, -4}
		if n := ClipGradNorm(g, maxNorm); n != 5 {
			t.Fatalf("norm = %v, want 5", n)
		}
		if g[0] != 3 || g[1] != 0 || g[2] != -4 {
			t.Fatalf("maxNorm %v: grads changed to %v", maxNorm, g)
		}
	}

	// Long vector (exercises the unrolled sum); the norm is exact in float64.
	g = make([]T, 103)
	for i := range g {
		g[i] = 2
	}
	if n := ClipGradNorm(g, 1e9); math.Abs(n-math.Sqrt(4*103)) > 1e-12 {
		t.Fatalf("norm = %v, want %v", n, math.Sqrt(4*103))
	}

	// Empty and all-zero.
	if n := ClipGradNorm([]T{}, 1); n != 0 {
		t.Fatalf("empty norm = %v", n)
	}
	if n := ClipGradNorm([]T{0, 0}, 0); n != 0 {
		t.Fatalf("zero norm = %v", n)
	}

	// NaN: returned, grads untouched.
	nan := T(math.NaN())
	g = []T{1, nan, 100}
	if n := ClipGradNorm(g, 1); !math.IsNaN(n) {
		t.Fatalf("norm with NaN = %v", n)
	}
	if g[0] != 1 || g[2] != 100 {
		t.Fatalf("grads with NaN norm changed to %v", g)
	}
	// Inf: returned.
	g = []T{1, T(math.Inf(-1))}
	if n := ClipGradNorm(g, 1); !math.IsInf(n, 1) {
		t.Fatalf("norm with Inf = %v", n)
	}
	if g[0] != 0 {
		t.Fatalf("finite grad with Inf norm = %v, want 0 (PyTorch scales by 0)", g[0])
	}
}

func TestClipGradNorm(t *testing.T) { ktRun(t, clTestNorm[float32], clTestNorm[float64]) }

// TestClipGradNormHuge: float64 squares overflow, the norm must not.
func TestClipGradNormHuge(t *testing.T) {
	g := []float64{3e200, 4e200}
	n := ClipGradNorm(g, 1)
	if math.Abs(n-5e200)/5e200 > 1e-15 {
		t.Fatalf("norm = %v, want 5e200", n)
	}
	if math.Abs(g[0]-0.6) > 1e-15 || math.Abs(g[1]-0.8) > 1e-15 {
		t.Fatalf("clipped = %v, want [0.6 0.8]", g)
	}
	// float32 squares are summed in float64 and cannot overflow.
	g32 := []float32{3e38, 3e38}
	if n := ClipGradNorm(g32, 1); math.Abs(n-3e38*math.Sqrt2)/n > 1e-7 {
		t.Fatalf("float32 norm = %v", n)
	}
}

func clTestValue[T Float](t *testing.T) {
	nan := T(math.NaN())
	g := []T{-5, -1, -0.5, 0, 0.5, 1, 5, nan, T(math.Inf(1))}
	ClipGradValue(g, 1)
	want := []T{-1, -1, -0.5, 0, 0.5, 1, 1, nan, 1}
	for i := range want {
		if !(g[i] == want[i] || math.IsNaN(float64(g[i])) && math.IsNaN(float64(want[i]))) {
			t.Fatalf("clamped[%d] = %v, want %v", i, g[i], want[i])
		}
	}
	g = []T{-2, 3}
	ClipGradValue(g, 0)
	if g[0] != 0 || g[1] != 0 {
		t.Fatalf("clip 0: %v", g)
	}
}

func TestClipGradValue(t *testing.T) { ktRun(t, clTestValue[float32], clTestValue[float64]) }

func TestClipPanicsAndAllocs(t *testing.T) {
	for name, f := range map[string]func(){
		"norm negative": func() { ClipGradNorm([]float32{1}, -1) },
		"norm NaN":      func() { ClipGradNorm([]float32{1}, math.NaN()) },
		"value neg":     func() { ClipGradValue([]float32{1}, -1) },
		"value NaN":     func() { ClipGradValue([]float64{1}, math.NaN()) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	g := make([]float32, 1000)
	for i := range g {
		g[i] = float32(i)
	}
	if a := testing.AllocsPerRun(10, func() { ClipGradNorm(g, 1) }); a != 0 {
		t.Errorf("ClipGradNorm allocates %v times per call", a)
	}
	if a := testing.AllocsPerRun(10, func() { ClipGradValue(g, 0.5) }); a != 0 {
		t.Errorf("ClipGradValue allocates %v times per call", a)
	}
}
