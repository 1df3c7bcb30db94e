package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"iter"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/backpropgen/backpropgen/generated/gpt"
)

var (
	torchRun    = flag.Bool("torch", false, "TestMatchesPyTorch: run testdata/torch_gpt.py (/usr/bin/python3 with torch) and compare every gradient with it")
	torchUpdate = flag.Bool("update", false, "with -torch: rewrite testdata/torch_gpt.json from PyTorch's results")
)

// torchSummary is testdata/torch_gpt.json: PyTorch's loss and, per
// parameter, the L2 norm of its gradient and the gradient at a few
// elements (every 1/16 of the tensor and its largest), from
// testdata/torch_gpt.py on the parameters and batch of gptBatch.
type torchSummary struct {
	Torch   string                 `json:"torch"`
	Loss    float64                `json:"loss"`
	Tensors map[string]torchTensor `json:"tensors"`
}

type torchTensor struct {
	Norm    float64         `json:"norm"`
	Samples map[int]float64 `json:"samples"`
}

// Bounds of TestMatchesPyTorch, float32 Go against float64 PyTorch: the
// loss relative, and a gradient element against its tensor's largest.
// The largest differences seen are 1e-8 and 1.1e-6 (amd64, and noasm);
// with the erf GELU in PyTorch in place of the tanh one, every tensor
// differs by 2e-4 of its largest element or more.
const torchLossTol, torchGradTol = 1e-6, 2e-5

// gptBatch returns a model initialized with seed 7 and a full batch of
// random token ids and labels, its loss and its gradients.
func gptBatch(t *testing.T) (*gpt.Model, float64) {
	m := gpt.New()
	m.Init(7)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range m.T {
		m.T[i] = int32(rng.IntN(256))
	}
	for i := range m.Y {
		m.Y[i] = int32(rng.IntN(256))
	}
	loss, err := m.Gradients(gpt.Batch)
	if err != nil {
		t.Fatal(err)
	}
	return m, float64(loss)
}

// TestMatchesPyTorch: the generated GPT's loss and gradients are PyTorch's
// for the same parameters and batch (nn.Embedding, nn.LayerNorm,
// nn.Linear, GELU(approximate="tanh"), masked softmax attention, the
// output tied to the token table, cross_entropy), which the layer tests
// check one op at a time. With -torch it runs PyTorch and compares every
// element; without, the elements of testdata/torch_gpt.json.
func TestMatchesPyTorch(t *testing.T) {
	m, loss := gptBatch(t)
	grads := map[string][]float32{}
	for _, name := range gpt.ParamNames {
		grads[name] = m.Grad(name)
	}
	var ref torchSummary
	worst := 0.0 // the largest difference of an element, relative to its tensor's largest
	if *torchRun {
		full := runTorch(t, m)
		ref = summarize(full)
		for name, r := range full.Grads {
			worst = max(worst, compareGrad(t, name, grads[name], slices.All(r), maxAbs(r)))
		}
		if *torchUpdate {
			b, err := json.MarshalIndent(ref, "", " ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile("testdata/torch_gpt.json", append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		b, err := os.ReadFile("testdata/torch_gpt.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		for name, r := range ref.Tensors {
			largest := 0.0
			for _, v := range r.Samples {
				largest = max(largest, math.Abs(v))
			}
			worst = max(worst, compareGrad(t, name, grads[name], maps.All(r.Samples), largest))
			var norm float64
			for _, v := range grads[name] {
				norm += float64(v) * float64(v)
			}
			if d := math.Abs(math.Sqrt(norm) - r.Norm); d > torchGradTol*r.Norm {
				t.Errorf("%s: gradient norm %.7g, PyTorch %.7g", name, math.Sqrt(norm), r.Norm)
			}
		}
	}
	if len(ref.Tensors) != len(gpt.ParamNames) {
		t.Errorf("PyTorch's results cover %d parameters, the model has %d", len(ref.Tensors), len(gpt.ParamNames))
	}
	if d := math.Abs(loss - ref.Loss); d > torchLossTol*ref.Loss {
		t.Errorf("loss %.9g, PyTorch %s %.9g", loss, ref.Torch, ref.Loss)
	}
	t.Logf("loss %.9g, PyTorch %s %.9g; gradients within %.2g of each tensor's largest element", loss, ref.Torch, ref.Loss, worst)
}

// compareGrad checks the elements ref yields of a gradient against got,
// relative to the largest element of the reference.
func compareGrad(t *testing.T, name string, got []float32, ref iter.Seq2[int, float64], largest float64) float64 {
	t.Helper()
	worst, at := 0.0, -1
	for i, r := range ref {
		if i < 0 || i >= len(got) {
			t.Errorf("%s: element %d of PyTorch's gradient is outside the model's %d", name, i, len(got))
			return math.Inf(1)
		}
		if d := math.Abs(float64(got[i]) - r); d > worst {
			worst, at = d, i
		}
	}
	if worst > torchGradTol*largest {
		t.Errorf("%s: gradient element %d differs from PyTorch's by %.3g, %.2g of the largest (bound %.0e)", name, at, worst, worst/largest, torchGradTol)
	}
	return worst / largest
}

func maxAbs(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = max(m, math.Abs(v))
	}
	return m
}

// torchFull is what testdata/torch_gpt.py writes.
type torchFull struct {
	Torch string               `json:"torch"`
	Loss  float64              `json:"loss"`
	Grads map[string][]float64 `json:"grads"`
}

// runTorch writes m's parameters and batch, runs testdata/torch_gpt.py on
// them and returns its results.
func runTorch(t *testing.T, m *gpt.Model) torchFull {
	dir := t.TempDir()
	shapes := map[string][]int{}
	for _, x := range m.Tensors() {
		shapes[x.Name] = x.Shape
	}
	man := map[string]any{"vocab": 256, "T": 64, "C": 128, "layers": 4, "heads": 4, "tokens": m.T, "labels": m.Y}
	var names []string
	var offsets []int
	var shp [][]int
	for i, name := range gpt.ParamNames {
		names, offsets, shp = append(names, name), append(offsets, gpt.ParamOffsets[i]), append(shp, shapes[name])
	}
	man["names"], man["offsets"], man["shapes"] = names, offsets, shp
	b, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 4*len(m.Params))
	for i, v := range m.Params {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(filepath.Join(dir, "params.f32"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/python3", "testdata/torch_gpt.py", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("testdata/torch_gpt.py: %v\n%s(apt-get install python3-torch)", err, out)
	}
	b, err = os.ReadFile(filepath.Join(dir, "torch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var full torchFull
	if err := json.Unmarshal(b, &full); err != nil {
		t.Fatal(err)
	}
	return full
}

// summarize keeps of PyTorch's results what testdata/torch_gpt.json holds.
func summarize(full torchFull) torchSummary {
	s := torchSummary{Torch: full.Torch, Loss: full.Loss, Tensors: map[string]torchTensor{}}
	for name, g := range full.Grads {
		tt := torchTensor{Samples: map[int]float64{}}
		big := 0
		for i, v := range g {
			tt.Norm += v * v
			if math.Abs(v) > math.Abs(g[big]) {
				big = i
			}
		}
		tt.Norm = math.Sqrt(tt.Norm)
		for k := range 16 {
			i := k * len(g) / 16
			tt.Samples[i] = g[i]
		}
		tt.Samples[big] = g[big]
		s.Tensors[name] = tt
	}
	return s
}
