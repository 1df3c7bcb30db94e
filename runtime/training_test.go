package runtime

import (
	"path/filepath"
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
