package runtime

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

func TestRNGDeterministic(t *testing.T) {
	a, b, c := NewRNG(7), NewRNG(7), NewRNG(8)
	same := true
	for i := 0; i < 100; i++ {
		x, y, z := a.Uint64(), b.Uint64(), c.Uint64()
		if x != y {
			t.Fatalf("draw %d: same seed gave %d and %d", i, x, y)
		}
		if x != z {
			same = false
		}
	}
	if same {
		t.Fatal("seeds 7 and 8 gave identical streams")
	}
	// Pin the stream so a change of algorithm (which would silently change
	// every model's initial weights) is noticed: PCG-DXSM from Go's
	// math/rand/v2, state (0, 0x9E3779B97F4A7C15).
	r := NewRNG(0)
	if x, y := r.Uint64(), r.Uint64(); x != 0x7655d15c919ef624 || y != 0xb87a4210b4edc8b7 {
		t.Fatalf("NewRNG(0) stream changed: %#x %#x", x, y)
	}
}

func TestInitializeDeterministic(t *testing.T) {
	for i := Init(0); i < spec.NumInits; i++ {
		a := make([]float32, 257)
		b := make([]float32, 257)
		Initialize(a, i, 30, 20, NewRNG(42))
		Initialize(b, i, 30, 20, NewRNG(42))
		if !slices.Equal(a, b) {
			t.Errorf("%v: same seed gave different values", i)
		}
	}
}

func TestInitNamesRoundTrip(t *testing.T) {
	want := []string{"zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"}
	if !slices.Equal(InitNames(), want) {
		t.Fatalf("InitNames() = %v", InitNames())
	}
	for i, n := range want {
		got, err := ParseInit(n)
		if err != nil || got != Init(i) || got.String() != n {
			t.Errorf("ParseInit(%q) = %v, %v", n, got, err)
		}
	}
	if got, err := ParseInit(" He_Normal "); err != nil || got != HeNormal {
		t.Errorf("ParseInit is not case/space tolerant: %v %v", got, err)
	}
	_, err := ParseInit("xavier")
	if err == nil || !strings.Contains(err.Error(), "xavier") || !strings.Contains(err.Error(), "glorot_uniform, glorot_normal") {
		t.Errorf("ParseInit(xavier) error = %v", err)
	}
	if s := Init(200).String(); s != "Init(200)" {
		t.Errorf("Init(200).String() = %q", s)
	}
}

func TestInitializeStatistics(t *testing.T) {
	const fanIn, fanOut, n = 50, 30, 200000
	cases := []struct {
		init    Init
		mean    float64
		varWant float64
		limit   float64 // uniform bound, 0 if normal
	}{
		{GlorotUniform, 0, 2.0 / (fanIn + fanOut), math.Sqrt(6.0 / (fanIn + fanOut))},
		{GlorotNormal, 0, 2.0 / (fanIn + fanOut), 0},
		{HeUniform, 0, 2.0 / fanIn, math.Sqrt(6.0 / fanIn)},
		{HeNormal, 0, 2.0 / fanIn, 0},
		{LeCunUniform, 0, 1.0 / fanIn, math.Sqrt(3.0 / fanIn)},
		{LeCunNormal, 0, 1.0 / fanIn, 0},
	}
	dst := make([]float64, n)
	for _, c := range cases {
		Initialize(dst, c.init, fanIn, fanOut, NewRNG(1))
		var sum, sq, maxAbs float64
		for _, x := range dst {
			sum += x
			sq += x * x
			maxAbs = max(maxAbs, math.Abs(x))
		}
		mean := sum / n
		variance := sq/n - mean*mean
		sd := math.Sqrt(c.varWant)
		// Standard error of the mean is sd/√n ≈ 0.0022·sd; allow 5 of them.
		if math.Abs(mean-c.mean) > 5*sd/math.Sqrt(n) {
			t.Errorf("%v: mean %g, want 0 ± %g", c.init, mean, 5*sd/math.Sqrt(n))
		}
		// Variance relative standard error is ≲ √(2/n) ≈ 0.3%; allow 2%.
		if math.Abs(variance/c.varWant-1) > 0.02 {
			t.Errorf("%v: variance %g, want %g", c.init, variance, c.varWant)
		}
		if c.limit > 0 {
			if maxAbs > c.limit {
				t.Errorf("%v: |x| up to %g exceeds limit %g", c.init, maxAbs, c.limit)
			}
			if maxAbs < 0.99*c.limit {
				t.Errorf("%v: |x| only up to %g, limit %g: not filling the range", c.init, maxAbs, c.limit)
			}
		} else {
			// Truncated at 2σ of the untruncated normal.
			bound := 2 * sd / 0.87962566103423978
			if maxAbs > bound {
				t.Errorf("%v: |x| up to %g exceeds truncation bound %g", c.init, maxAbs, bound)
			}
			if maxAbs < 0.99*bound {
				t.Errorf("%v: |x| only up to %g, bound %g", c.init, maxAbs, bound)
			}
		}
	}
}

func TestInitializeFloat32Bounds(t *testing.T) {
	dst := make([]float32, 10000)
	Initialize(dst, HeUniform, 3, 3, NewRNG(3))
	lim := float32(math.Sqrt(6.0 / 3))
	for i, x := range dst {
		if x < -lim || x > lim {
			t.Fatalf("dst[%d] = %v outside ±%v", i, x, lim)
		}
	}
}

func TestInitializeConstantsAndZeroFan(t *testing.T) {
	d := []float32{5, 5, 5}
	Initialize(d, Zeros, 0, 0, nil)
	if !slices.Equal(d, []float32{0, 0, 0}) {
		t.Errorf("Zeros: %v", d)
	}
	Initialize(d, Ones, 0, 0, nil)
	if !slices.Equal(d, []float32{1, 1, 1}) {
		t.Errorf("Ones: %v", d)
	}
	// Fan 0 is clamped to 1 as in Keras: finite values within √3.
	Initialize(d, LeCunUniform, 0, 0, NewRNG(1))
	for _, x := range d {
		if math.IsNaN(float64(x)) || math.Abs(float64(x)) > math.Sqrt(3) {
			t.Errorf("fan 0: %v", d)
		}
	}
}

func TestFanInOut(t *testing.T) {
	cases := []struct {
		shape   []int
		in, out int
	}{
		{nil, 1, 1},
		{[]int{7}, 7, 7},
		{[]int{784, 128}, 784, 128},
		{[]int{3, 3, 16, 32}, 9 * 16, 9 * 32},
		{[]int{5, 4, 8}, 5 * 4, 5 * 8},
		{[]int{2, 3, 3, 4, 6}, 18 * 4, 18 * 6},
	}
	for _, c := range cases {
		in, out := FanInOut(c.shape)
		if in != c.in || out != c.out {
			t.Errorf("FanInOut(%v) = %d, %d; want %d, %d", c.shape, in, out, c.in, c.out)
		}
	}
}
