package runtime

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkGPTKernels times the float32 non-GEMM kernels of a training
// step of generated/gpt at its sizes (batch 8, 64 positions, 128 channels
// in 4 heads, an MLP of 512, 256 classes): GELU and its gradient over
// one MLP activation, causal attention and its gradient over one layer,
// the loss and its gradient, layer norm and its gradient. Compare with
// -tags noasm for the Go loops.
func BenchmarkGPTKernels(b *testing.B) {
	const n, steps, C, heads, hidden, classes = 8, 64, 128, 4, 512, 256
	rows := n * steps
	r := rand.New(rand.NewPCG(7, 8))
	act := ewRand(r, rows*hidden, 3, false)
	dact := ewRand(r, rows*hidden, 1, false)
	out := make([]float32, rows*hidden)
	qkv := ewRand(r, rows*3*C, 2, false)
	dout := ewRand(r, rows*C, 1, false)
	att := make([]float32, AttentionSavedSize(n, steps, heads))
	y := make([]float32, rows*C)
	dqkv := make([]float32, len(qkv))
	scratch := make([]float32, max(AttentionScratchSize(steps, C, heads), AttentionGradScratchSize(steps, C, heads)))
	logits := ewRand(r, rows*classes, 4, false)
	dlogits := make([]float32, len(logits))
	labels := make([]int32, rows)
	for i := range labels {
		labels[i] = int32(r.IntN(classes))
	}
	x := ewRand(r, rows*C, 2, false)
	gamma, beta := ewRand(r, C, 1, false), ewRand(r, C, 1, false)
	saved := make([]float32, LayerNormSavedSize(rows))
	dgamma, dbeta := make([]float32, C), make([]float32, C)
	LayerNorm(y, saved, x, gamma, beta, rows, C, 1e-5)
	Attention(y, att, qkv, scratch, n, steps, C, heads, true)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Gelu", func() { Unary(Gelu, out, act) }},
		{"GeluGrad", func() { UnaryGrad(Gelu, out, act, dact) }},
		{"Attention", func() { Attention(y, att, qkv, scratch, n, steps, C, heads, true) }},
		{"AttentionGrad", func() { AttentionGrad(dqkv, dout, qkv, att, scratch, n, steps, C, heads, true, false) }},
		{"SoftmaxCrossEntropy", func() { SoftmaxCrossEntropy(logits, labels, rows, classes) }},
		{"SoftmaxCrossEntropyGrad", func() { SoftmaxCrossEntropyGrad(dlogits, logits, labels, rows, classes, 1.0/float32(rows)) }},
		{"LayerNorm", func() { LayerNorm(y, saved, x, gamma, beta, rows, C, 1e-5) }},
		{"LayerNormGrad", func() { LayerNormGrad(dqkv[:rows*C], dgamma, dbeta, dout, x, gamma, saved, rows, C, false) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.f()
			}
		})
	}
}
