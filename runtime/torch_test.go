package runtime

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"testing"
)

// torchReference is testdata/torch_reference.json, PyTorch's results
// written by testdata/torch_reference.py.
type torchReference struct {
	BatchNorm struct {
		Rows, C                                 int
		Eps, Momentum                           float64
		X, W, Gamma, Beta, Y, DX, DGamma, DBeta []float64
		RunningMean                             []float64 `json:"running_mean"`
		RunningVar                              []float64 `json:"running_var"`
		XInfer                                  []float64 `json:"x_infer"`
		YInfer                                  []float64 `json:"y_infer"`
	} `json:"batch_norm"`
	LayerNorm struct {
		Rows, C                                 int
		Eps                                     float64
		X, W, Gamma, Beta, Y, DX, DGamma, DBeta []float64
	} `json:"layer_norm"`
	AdamW struct {
		LR          float64
		WeightDecay float64 `json:"weight_decay"`
		Params      []float64
		Grads       [][]float64
		After       []float64
	} `json:"adamw"`
	Gelu struct {
		X      []float64
		YErf   []float64 `json:"y_erf"`
		DXErf  []float64 `json:"dx_erf"`
		YTanh  []float64 `json:"y_tanh"`
		DXTanh []float64 `json:"dx_tanh"`
	} `json:"gelu"`
	Attention struct {
		N, T, C, Heads int
		QKV            []float64 `json:"qkv"`
		W, Y           []float64
		DQKV           []float64 `json:"dqkv"`
	} `json:"attention"`
	Embedding struct {
		Vocab, Dim  int
		Tokens      []int32
		Table, W, Y []float64
		DTable      []float64 `json:"dtable"`
	} `json:"embedding"`
}

func closeTo(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %v, PyTorch %v", what, i, got[i], want[i])
		}
	}
}

// TestMatchesPyTorch compares batch norm (training mode: output,
// gradients, running statistics; then inference mode), layer norm, AdamW
// both GELUs, causal attention and embedding with what PyTorch 1.13 computed in float64 on the same inputs.
func TestMatchesPyTorch(t *testing.T) {
	data, err := os.ReadFile("testdata/torch_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref torchReference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	const tol = 1e-12

	bn := ref.BatchNorm
	rows, C := bn.Rows, bn.C
	y, saved := make([]float64, rows*C), make([]float64, BatchNormSavedSize(C))
	BatchNorm(y, saved, bn.X, bn.Gamma, bn.Beta, rows, C, bn.Eps)
	closeTo(t, "batch_norm y", y, bn.Y, tol)
	dx, dg, db := make([]float64, rows*C), make([]float64, C), make([]float64, C)
	BatchNormGrad(dx, dg, db, bn.W, bn.X, bn.Gamma, saved, rows, C, false)
	closeTo(t, "batch_norm dx", dx, bn.DX, 1e-10)
	closeTo(t, "batch_norm dgamma", dg, bn.DGamma, tol)
	closeTo(t, "batch_norm dbeta", db, bn.DBeta, tol)
	rm, rv := make([]float64, C), make([]float64, C)
	for c := range rv {
		rv[c] = 1 // PyTorch's initial running statistics
	}
	BatchNormUpdate(rm, rv, saved, C, rows, bn.Momentum)
	closeTo(t, "batch_norm running_mean", rm, bn.RunningMean, tol)
	closeTo(t, "batch_norm running_var", rv, bn.RunningVar, tol)
	yi := make([]float64, rows*C)
	BatchNormInfer(yi, bn.XInfer, bn.Gamma, bn.Beta, rm, rv, rows, C, bn.Eps)
	closeTo(t, "batch_norm (eval) y", yi, bn.YInfer, tol)

	ln := ref.LayerNorm
	rows, C = ln.Rows, ln.C
	y, saved = make([]float64, rows*C), make([]float64, LayerNormSavedSize(rows))
	LayerNorm(y, saved, ln.X, ln.Gamma, ln.Beta, rows, C, ln.Eps)
	closeTo(t, "layer_norm y", y, ln.Y, tol)
	dx, dg, db = make([]float64, rows*C), make([]float64, C), make([]float64, C)
	LayerNormGrad(dx, dg, db, ln.W, ln.X, ln.Gamma, saved, rows, C, false)
	closeTo(t, "layer_norm dx", dx, ln.DX, 1e-10)
	closeTo(t, "layer_norm dgamma", dg, ln.DGamma, tol)
	closeTo(t, "layer_norm dbeta", db, ln.DBeta, tol)

	aw := ref.AdamW
	p := append([]float64(nil), aw.Params...)
	opt := NewAdamW[float64](len(p), aw.LR)
	opt.WeightDecay = aw.WeightDecay
	for _, g := range aw.Grads {
		opt.Step(p, g)
	}
	closeTo(t, "adamw params", p, aw.After, 1e-12)

	ge := ref.Gelu
	ones := make([]float64, len(ge.X))
	for i := range ones {
		ones[i] = 1
	}
	for _, c := range []struct {
		name  string
		op    UnaryOp
		y, dx []float64
	}{{"gelu_erf", GeluErf, ge.YErf, ge.DXErf}, {"gelu", Gelu, ge.YTanh, ge.DXTanh}} {
		y, dx := make([]float64, len(ge.X)), make([]float64, len(ge.X))
		Unary(c.op, y, ge.X)
		UnaryGrad(c.op, dx, ge.X, ones)
		closeTo(t, c.name+" y", y, c.y, tol)
		closeTo(t, c.name+" dx", dx, c.dx, tol)
	}

	at := ref.Attention
	ya := make([]float64, at.N*at.T*at.C)
	probs := make([]float64, AttentionSavedSize(at.N, at.T, at.Heads))
	Attention(ya, probs, at.QKV, make([]float64, AttentionScratchSize(at.T, at.C, at.Heads)), at.N, at.T, at.C, at.Heads, true)
	closeTo(t, "attention y", ya, at.Y, tol)
	dqkv := make([]float64, len(at.QKV))
	AttentionGrad(dqkv, at.W, at.QKV, probs, make([]float64, AttentionGradScratchSize(at.T, at.C, at.Heads)), at.N, at.T, at.C, at.Heads, true, false)
	closeTo(t, "attention dqkv", dqkv, at.DQKV, 1e-11)

	em := ref.Embedding
	ye := make([]float64, len(em.Tokens)*em.Dim)
	Embedding(ye, em.Table, em.Tokens, len(em.Tokens), em.Dim)
	closeTo(t, "embedding y", ye, em.Y, 0)
	dt := make([]float64, len(em.Table))
	EmbeddingGrad(dt, em.W, em.Tokens, len(em.Tokens), em.Dim, false)
	closeTo(t, "embedding dtable", dt, em.DTable, tol)
}

// TestPyTorchReferenceCurrent reruns testdata/torch_reference.py where
// PyTorch is installed (make bench-compare installs it) and requires the
// checked-in results.
func TestPyTorchReferenceCurrent(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		t.Skip("PyTorch is not installed (apt-get install python3-torch); TestMatchesPyTorch uses the checked-in results")
	}
	out, err := exec.Command("/usr/bin/python3", "testdata/torch_reference.py").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("testdata/torch_reference.json")
	if !bytes.Equal(out, want) {
		t.Error("testdata/torch_reference.json differs from what PyTorch computes now; rerun python3 runtime/testdata/torch_reference.py > runtime/testdata/torch_reference.json")
	}
}
