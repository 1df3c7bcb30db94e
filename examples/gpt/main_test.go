package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/examples/internal/gospec"
	"github.com/backpropgen/backpropgen/generated/gpt"
)

// smallText is a repetitive text the model learns in a few steps.
func smallText() []byte {
	return bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog; "), 400)
}

// TestTrainAndSample: a short run lowers the validation loss below the
// uniform 5.55 nats (log 256), the checkpoint reloads (-epochs 0) to the
// same sample, and greedy sampling is deterministic.
func TestTrainAndSample(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "gpt.safetensors")
	cfg := Config{Epochs: 2, Steps: 25, LR: 2e-3, Clip: 1, Seed: 1, Checkpoint: ckpt, Quiet: true}
	var out bytes.Buffer
	m, err := Train(context.Background(), cfg, smallText(), &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "epoch 2/2  loss ") {
		t.Fatalf("stdout:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "val_loss ") {
		t.Errorf("no validation loss in:\n%s", out.String())
	}
	fresh := gpt.New()
	fresh.Init(cfg.Seed)
	before, after := loss(t, fresh), loss(t, m)
	t.Logf("loss on 8 windows: %.3f before, %.3f after training", before, after)
	if !(after < 0.6*before) {
		t.Errorf("loss %.3f before, %.3f after 50 steps on a repeated sentence", before, after)
	}
	a := Sample(m, []byte("the "), 40, 0, 0, rand.New(rand.NewPCG(1, 1)))
	cfg.Epochs = 0
	loaded, err := Train(context.Background(), cfg, smallText(), &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	b := Sample(loaded, []byte("the "), 40, 0, 0, rand.New(rand.NewPCG(2, 2)))
	if !bytes.Equal(a, b) {
		t.Errorf("greedy samples differ after reloading: %q, %q", a, b)
	}
	s := Sample(m, []byte("the "), 40, 1, 5, rand.New(rand.NewPCG(3, 3)))
	if len(s) != 44 {
		t.Errorf("sample of %d bytes, want 44", len(s))
	}
	// Past the context, twice over: the decoder's greedy bytes are those
	// of Infer over the same context, whole, for every byte.
	long, want := Sample(m, []byte("the "), 150, 0, 0, nil), sampleInfer(t, m, []byte("the "), 150)
	if !bytes.Equal(long, want) {
		t.Errorf("greedy sample through the decoder:\n%q\nthrough Infer:\n%q", long, want)
	}
}

// sampleInfer is Sample's greedy path the long way: for every byte, Infer
// over the whole context Sample's decoder holds then (the last 64 bytes at
// most, the last 32 once the 64 positions filled up).
func sampleInfer(t testing.TB, m *gpt.Model, prime []byte, n int) []byte {
	out := slices.Clone(prime)
	start := max(0, len(out)-ctxLen)
	for range n {
		if len(out)-start > ctxLen {
			start = len(out) - ctxLen/2
		}
		ctx := out[start:]
		clear(m.T[:ctxLen])
		for j, b := range ctx {
			m.T[j] = int32(b)
		}
		if err := m.Infer(1); err != nil {
			t.Fatal(err)
		}
		out = append(out, pick(m.Output(1)[(len(ctx)-1)*256:][:256], 0, 0, nil, nil, nil))
	}
	return out
}

// BenchmarkSample times a sampled byte through the decoder (one
// position's products and the key/value cache) and through Infer over the
// whole context, on an untrained model (the cost does not depend on the
// weights).
func BenchmarkSample(b *testing.B) {
	m := gpt.New()
	m.Init(1)
	prime := []byte("The ")
	b.Run("decoder", func(b *testing.B) {
		for b.Loop() {
			Sample(m, prime, 100, 0, 0, nil)
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "bytes/s")
	})
	b.Run("infer", func(b *testing.B) {
		for b.Loop() {
			sampleInfer(b, m, prime, 100)
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "bytes/s")
	})
}

// loss is the model's loss on the first Batch windows of smallText.
func loss(t *testing.T, m *gpt.Model) float32 {
	rows := make([]int, gpt.Batch)
	for i := range rows {
		rows[i] = i
	}
	text := smallText()
	windows{text: text, n: (len(text) - 1) / ctxLen}.Fill(m.IO(), rows, nil)
	l, err := m.Evaluate(gpt.Batch)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-topk", "300"}, "topk ≤ 256"},
		{[]string{"-lr", "0"}, "positive learning rate"},
		{[]string{"-epochs", "0", "-checkpoint", ""}, "need a -checkpoint"},
		{[]string{"-prime", ""}, "-prime is empty"},
		{[]string{"-text", "/nonexistent/file"}, "name another file with -text"},
		{[]string{"extra"}, "every setting is a flag"},
	} {
		err := run(tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := Train(context.Background(), Config{Epochs: 1, LR: 1e-3}, []byte("short"), &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "want at least") {
		t.Errorf("a short text: %v", err)
	}
}

// TestSplit checks that no training window, shifted as far as it goes,
// reads a byte the validation predicts, and that the validation windows
// predict exactly the bytes gospec.HeldOut holds out.
func TestSplit(t *testing.T) {
	text := bytes.Repeat([]byte("a"), 64*37+23)
	start, end := gospec.HeldOut(len(text), 0.1)
	for i := start + 1; i < len(text); i++ {
		text[i] = 'z' - byte(i%7) // bytes the training text does not have
	}
	training, validation, err := split(text)
	if err != nil {
		t.Fatal(err)
	}
	m := gpt.New()
	io := m.IO()
	tokens, labels := io.Labels[0].Data, io.Labels[1].Data
	rows := make([]int, training.n)
	for i := range rows {
		rows[i] = i
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		for lo := 0; lo < len(rows); lo += gpt.Batch {
			batch := rows[lo:min(lo+gpt.Batch, len(rows))]
			training.Fill(io, batch, rng)
			if i := slices.IndexFunc(labels[:len(batch)*ctxLen], func(b int32) bool { return b != 'a' }); i >= 0 {
				t.Fatalf("training row %d reads a held-out byte (%q) as a label", batch[i/ctxLen], rune(labels[i]))
			}
			if i := slices.IndexFunc(tokens[:len(batch)*ctxLen], func(b int32) bool { return b != 'a' }); i >= 0 {
				t.Fatalf("training row %d reads a held-out byte (%q) as a token", batch[i/ctxLen], rune(tokens[i]))
			}
		}
	}
	var predicted []byte
	for r := range validation.n {
		validation.Fill(io, []int{r}, nil)
		for _, b := range labels[:ctxLen] {
			predicted = append(predicted, byte(b))
		}
	}
	if !bytes.Equal(predicted, text[start+1:end]) {
		t.Errorf("the validation windows predict %d bytes, not the %d of text[%d:%d]", len(predicted), end-start-1, start+1, end)
	}
}
