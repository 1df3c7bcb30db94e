package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/examples/internal/mnistdata"
	"github.com/backpropgen/backpropgen/generated/mlp"
	"github.com/backpropgen/backpropgen/runtime"
)

// smallData returns 512 training and 256 test images: the first ones of the
// real MNIST files when they can be located, else a synthetic learnable set
// (digit k lights up rows 2k..2k+2, plus noise).
func smallData(t *testing.T) (train, test *mnistdata.Set) {
	t.Helper()
	if dir, err := mnistdata.Dir(); err == nil {
		if train, test, err := mnistdata.Load(dir); err == nil {
			return train.Head(512), test.Head(256)
		} else {
			t.Logf("real MNIST not loadable (%v); using synthetic data", err)
		}
	} else {
		t.Logf("real MNIST not found (%v); using synthetic data", err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	synth := func(n int) *mnistdata.Set {
		s := &mnistdata.Set{Images: make([]float32, n*mnistdata.Pixels), Labels: make([]int32, n), N: n}
		for i := range n {
			k := rng.IntN(10)
			s.Labels[i] = int32(k)
			img := s.Image(i)
			for p := range img {
				img[p] = 0.3 * rng.Float32()
			}
			for p := 2 * k * mnistdata.Cols; p < (2*k+3)*mnistdata.Cols; p++ {
				img[p] = 1
			}
		}
		return s
	}
	return synth(512), synth(256)
}

// meanLoss is the model's mean loss over set.
func meanLoss(t *testing.T, m *mlp.Model, set *mnistdata.Set) float64 {
	t.Helper()
	var sum float64
	for lo := 0; lo < set.N; lo += mlp.Batch {
		n := min(mlp.Batch, set.N-lo)
		copy(m.X, set.Images[lo*mnistdata.Pixels:(lo+n)*mnistdata.Pixels])
		copy(m.Y, set.Labels[lo:lo+n])
		loss, err := m.Forward(n)
		if err != nil {
			t.Fatal(err)
		}
		sum += float64(loss) * float64(n)
	}
	return sum / float64(set.N)
}

func TestTrainAndResume(t *testing.T) {
	train, test := smallData(t)
	ckpt := filepath.Join(t.TempDir(), "mlp.safetensors")
	cfg := Config{Epochs: 1, LR: 1e-3, Schedule: "constant", Seed: 1, Checkpoint: ckpt}

	fresh := mlp.New()
	fresh.Init(cfg.Seed)
	before := meanLoss(t, fresh, train)

	var out, bar bytes.Buffer
	res, err := Train(cfg, train, test, &out, &bar)
	if err != nil {
		t.Fatal(err)
	}
	after1 := meanLoss(t, res.Model, train)
	t.Logf("loss %.4f before, %.4f after epoch 1; epoch mean %.4f; accuracy %.2f%%",
		before, after1, res.Epochs[0].TrainLoss, 100*res.TestAccuracy)
	if !(after1 < 0.8*before) || !(res.Epochs[0].TrainLoss < before) {
		t.Errorf("loss did not fall: %.4f before, %.4f after (epoch mean %.4f)", before, after1, res.Epochs[0].TrainLoss)
	}
	if !strings.Contains(out.String(), "epoch 1/1  train loss") || !strings.Contains(out.String(), "after 1 epoch\n") {
		t.Errorf("stdout:\n%s", out.String())
	}
	if s := bar.String(); !strings.Contains(s, "\repoch 1/1 [") || !strings.Contains(s, "100% loss") {
		t.Errorf("no progress bar on stderr: %q", s)
	}
	if _, err := os.Stat(ckpt); err != nil {
		t.Fatalf("no checkpoint: %v", err)
	}

	// Resume for a second epoch: the epoch counter continues.
	cfg.Epochs, cfg.Resume, cfg.Quiet = 2, true, true
	out.Reset()
	bar.Reset()
	res2, err := Train(cfg, train, test, &out, &bar)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Resumed != 1 || len(res2.Epochs) != 1 || res2.Epochs[0].Epoch != 2 {
		t.Fatalf("resumed %d, epochs %+v; want epoch 2 after 1", res2.Resumed, res2.Epochs)
	}
	if s := out.String(); !strings.Contains(s, "resumed from "+ckpt+" after epoch 1") || !strings.Contains(s, "epoch 2/2") {
		t.Errorf("stdout:\n%s", s)
	}
	if bar.Len() != 0 {
		t.Errorf("-quiet still wrote %q", bar.String())
	}
	if after2 := meanLoss(t, res2.Model, train); !(after2 < after1) {
		t.Errorf("loss did not fall in the resumed epoch: %.4f, then %.4f", after1, after2)
	}
	meta, err := mlp.New().LoadCheckpoint(ckpt, runtime.NewAdam[float32](mlp.NumParams, 0))
	if err != nil || meta["epoch"] != "2" {
		t.Fatalf("checkpoint after resume: epoch %q, %v; want 2", meta["epoch"], err)
	}

	// 1 + 1 resumed epochs give exactly the parameters of 2 uninterrupted
	// ones: shuffling and the Adam state are restored.
	cfg.Resume, cfg.Checkpoint = false, ""
	res3, err := Train(cfg, train, test, &out, &bar)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res2.Model.Params, res3.Model.Params) {
		t.Error("resumed run differs from an uninterrupted one")
	}
}

func TestResumeMissingCheckpoint(t *testing.T) {
	tiny := &mnistdata.Set{Images: make([]float32, mnistdata.Pixels), Labels: []int32{3}, N: 1}
	path := filepath.Join(t.TempDir(), "none.safetensors")
	cfg := Config{Epochs: 1, LR: 1e-3, Schedule: "cosine", Checkpoint: path, Resume: true, Quiet: true}
	_, err := Train(cfg, tiny, tiny, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), path+" does not exist") {
		t.Fatalf("got %v, want an error saying %s does not exist", err, path)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-epochs", "0"},
		{"-lr", "-1"},
		{"-schedule", "linear"},
		{"-resume", "-checkpoint", ""},
		{"extra"},
	} {
		var stderr bytes.Buffer
		if err := run(args, &bytes.Buffer{}, &stderr); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
