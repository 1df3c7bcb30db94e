package runtime

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestTrainingCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	w := []float32{1, 2, 3, 4}
	params := []Tensor[float32]{{Name: "W", Shape: []int{2, 2}, Data: w}}
	opt := NewAdam[float32](4, 1e-3)
	opt.Step(w, []float32{1, 1, 1, 1})
	if err := SaveTraining(path, "m", params, opt, map[string]string{"epoch": "3"}); err != nil {
		t.Fatal(err)
	}
	// Parameters only: the optimizer state in the file is skipped.
	w2 := make([]float32, 4)
	meta, err := LoadTraining(path, "m", []Tensor[float32]{{Name: "W", Shape: []int{2, 2}, Data: w2}}, nil)
	if err != nil || meta["epoch"] != "3" || w2[0] != w[0] {
		t.Fatalf("params-only load: %v %v %v", err, meta, w2)
	}
	// With the optimizer: state and step count come back.
	opt2 := NewAdam[float32](4, 1e-3)
	if _, err := LoadTraining(path, "m", []Tensor[float32]{{Name: "W", Shape: []int{2, 2}, Data: w2}}, opt2); err != nil {
		t.Fatal(err)
	}
	if opt2.StepCount() != 1 || opt2.M[0] != opt.M[0] {
		t.Errorf("optimizer state not restored: step %d", opt2.StepCount())
	}
	// Another model's name is an error, and nothing changes.
	w3 := []float32{9, 9, 9, 9}
	_, err = LoadTraining(path, "other", []Tensor[float32]{{Name: "W", Shape: []int{2, 2}, Data: w3}}, nil)
	if err == nil || !strings.Contains(err.Error(), `model "m", not "other"`) || w3[0] != 9 {
		t.Errorf("wrong model: err %v, data %v", err, w3)
	}
	// A parameters-only checkpoint cannot restore an optimizer.
	if err := SaveTraining(path, "m", params, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTraining(path, "m", params, NewAdam[float32](4, 1e-3)); err == nil {
		t.Error("loading optimizer state from a parameters-only checkpoint succeeded")
	}
	if i := FirstNonFinite([]float64{0, 1, 2}); i != -1 {
		t.Errorf("FirstNonFinite of finite values = %d", i)
	}
}

// TestFileAxes: a conv kernel (KH, KW, C, F) goes to the file as PyTorch's
// (F, C, KH, KW) and comes back unchanged.
func TestFileAxes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.safetensors")
	shape := []int{2, 3, 4, 5} // KH, KW, C, F
	w := make([]float64, 2*3*4*5)
	for i := range w {
		w[i] = float64(i)
	}
	axes := []int{3, 2, 0, 1}
	if err := SaveTraining(path, "c", []Tensor[float64]{{Name: "c.W", Shape: shape, Data: w, FileAxes: axes}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Read it raw: file element [f, c, ky, kx] is w[ky, kx, c, f].
	raw := make([]float64, len(w))
	if _, err := LoadCheckpoint(path, []Tensor[float64]{{Name: "c.W", Shape: []int{5, 4, 2, 3}, Data: raw}}); err != nil {
		t.Fatal(err)
	}
	f, c, ky, kx := 4, 1, 1, 2
	if got, want := raw[((f*4+c)*2+ky)*3+kx], w[((ky*3+kx)*4+c)*5+f]; got != want {
		t.Errorf("file element = %v, want %v", got, want)
	}
	back := make([]float64, len(w))
	if _, err := LoadTraining(path, "c", []Tensor[float64]{{Name: "c.W", Shape: shape, Data: back, FileAxes: axes}}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range w {
		if back[i] != w[i] {
			t.Fatalf("round trip changed element %d: %v → %v", i, w[i], back[i])
		}
	}
}

// TestMaxAbs puts each kind of non-finite value, and the largest
// magnitude, at every position of slices of every length around the
// kernels' blocks of 32 and 64 elements, with finite extremes (±0, the
// largest float32, denormals) elsewhere, in float32 and float64 (the
// default build runs the AVX2 or AVX-512 scan for float32, noasm and
// float64 the Go loop); FirstNonFinite must find each non-finite value.
func TestMaxAbs(t *testing.T) {
	filler := []float64{0, math.Copysign(0, -1), 1e-45, -1e-45, 1, -3.5, 0.25}
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	for n := 0; n <= 200; n++ {
		x32, x64 := make([]float32, n), make([]float64, n)
		reset := func(i int) { x32[i], x64[i] = float32(filler[i%len(filler)]), filler[i%len(filler)] }
		for i := range n {
			reset(i)
		}
		want32, want64 := 0.0, 0.0
		for i := range n {
			want32, want64 = max(want32, math.Abs(float64(x32[i]))), max(want64, math.Abs(x64[i]))
		}
		if got := MaxAbs(x32); got != want32 {
			t.Fatalf("float32 n=%d: MaxAbs = %v, want %v", n, got, want32)
		}
		if got := MaxAbs(x64); got != want64 {
			t.Fatalf("float64 n=%d: MaxAbs = %v, want %v", n, got, want64)
		}
		for at := range n {
			for _, big := range []float64{math.MaxFloat32, -math.MaxFloat32, -17} {
				x32[at], x64[at] = float32(big), big
				if got := MaxAbs(x32); got != math.Abs(big) {
					t.Fatalf("float32 n=%d: %v at %d: MaxAbs = %v", n, big, at, got)
				}
				if got := MaxAbs(x64); got != math.Abs(big) {
					t.Fatalf("float64 n=%d: %v at %d: MaxAbs = %v", n, big, at, got)
				}
			}
			for _, b := range bad {
				x32[at], x64[at] = float32(b), b
				if MaxAbs(x32) != math.Inf(1) || MaxAbs(x64) != math.Inf(1) {
					t.Fatalf("n=%d, %v at %d: MaxAbs = %v, %v, want +Inf", n, b, at, MaxAbs(x32), MaxAbs(x64))
				}
				if FirstNonFinite(x32) != at || FirstNonFinite(x64) != at {
					t.Fatalf("n=%d, %v at %d: FirstNonFinite = %d, %d", n, b, at, FirstNonFinite(x32), FirstNonFinite(x64))
				}
			}
			reset(at)
		}
		if FirstNonFinite(x32) != -1 || FirstNonFinite(x64) != -1 {
			t.Fatalf("n=%d: FirstNonFinite of finite values = %d, %d", n, FirstNonFinite(x32), FirstNonFinite(x64))
		}
	}
}

// BenchmarkMaxAbs scans as many floats as generated/mlp's inputs at its
// batch of 32 (25,088) and as its gradients (109,386).
func BenchmarkMaxAbs(b *testing.B) {
	for _, n := range []int{25088, 109386} {
		x := make([]float32, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			for b.Loop() {
				if MaxAbs(x) != 0 {
					b.Fatal("zeros have a magnitude")
				}
			}
		})
	}
}
