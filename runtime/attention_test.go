package runtime

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionGrad: AttentionGrad against central finite differences of
// Σ w·Attention(qkv) in float64, causal and not; probabilities sum to 1
// and are 0 after the position under the causal mask; acc adds.
func TestAttentionGrad(t *testing.T) {
	const n, steps, C, heads = 2, 5, 6, 2
	r := rand.New(rand.NewPCG(5, 6))
	qkv := make([]float64, n*steps*3*C)
	for i := range qkv {
		qkv[i] = r.NormFloat64()
	}
	w := make([]float64, n*steps*C)
	for i := range w {
		w[i] = r.NormFloat64()
	}
	att := make([]float64, AttentionSavedSize(n, steps, heads))
	out := make([]float64, n*steps*C)
	loss := func(x []float64, causal bool) float64 {
		a := make([]float64, len(att))
		o := make([]float64, len(out))
		Attention(o, a, x, make([]float64, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, causal)
		var s float64
		for i, v := range o {
			s += v * w[i]
		}
		return s
	}
	for _, causal := range []bool{true, false} {
		Attention(out, att, qkv, make([]float64, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, causal)
		for row := range n * heads * steps {
			p := att[row*steps : (row+1)*steps]
			var sum float64
			for t2, v := range p {
				sum += v
				if causal && t2 > row%steps && v != 0 {
					t.Fatalf("causal: row %d attends to later step %d (%v)", row, t2, v)
				}
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Fatalf("row %d: probabilities sum to %v", row, sum)
			}
		}
		dq := make([]float64, len(qkv))
		AttentionGrad(dq, w, qkv, att, make([]float64, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, causal, false)
		x := append([]float64(nil), qkv...)
		for i := range x {
			const h = 1e-5
			x[i] = qkv[i] + h
			up := loss(x, causal)
			x[i] = qkv[i] - h
			down := loss(x, causal)
			x[i] = qkv[i]
			if fd := (up - down) / (2 * h); math.Abs(fd-dq[i]) > 1e-7*(1+math.Abs(fd)) {
				t.Fatalf("causal=%v: dqkv[%d] = %v, finite differences %v", causal, i, dq[i], fd)
			}
		}
		again := append([]float64(nil), dq...)
		AttentionGrad(again, w, qkv, att, make([]float64, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, causal, true)
		for i := range again {
			if math.Abs(again[i]-2*dq[i]) > 1e-12*(1+math.Abs(dq[i])) {
				t.Fatalf("acc: %v, want %v", again[i], 2*dq[i])
			}
		}
	}
}
