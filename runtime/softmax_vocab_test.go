package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ktTestCrossEntropyVocab checks the cross-entropy and its gradient over
// vocabularies of language models (bytes, 1000 words, GPT-2's 50257
// tokens) against a float64 reference, with logits of the spread trained
// models reach (σ 3, one row with a logit 60 above the rest, one with all
// equal), and the float64 gradient against central finite differences of
// the loss.
func ktTestCrossEntropyVocab[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	lossTol, gradTol := 16*ktEps[T](), 16*ktEps[T]()
	var z T
	if _, ok := any(z).(float32); ok {
		lossTol, gradTol = 1e-5, 1e-6 // float32 sums of up to 50257 exponentials
	}
	for _, cols := range []int{256, 1000, 4096, 50257} {
		const rows = 3
		n := rows * cols
		x := make([]T, n)
		for i := range x {
			x[i] = T(3 * r.NormFloat64())
		}
		labels := []int32{int32(r.IntN(cols)), int32(cols - 1), 0}
		x[cols+7] += 60 // row 1: one logit far above the rest (not the label)
		for c := range cols {
			x[2*cols+c] = 1.5 // row 2: uniform, loss log(cols)
		}
		var loss float64
		want := make([]float64, n)
		scale := T(1) / T(rows)
		for q := range rows {
			p := ktSoftmaxRef(ktF64(x[q*cols : (q+1)*cols]))
			loss -= math.Log(p[labels[q]])
			for c, v := range p {
				if c == int(labels[q]) {
					v--
				}
				want[q*cols+c] = float64(scale) * v
			}
		}
		loss /= rows
		tag := fmt.Sprintf("(V=%d)", cols)
		got := float64(SoftmaxCrossEntropy(x, labels, rows, cols))
		if math.Abs(got-loss) > lossTol*(1+loss) {
			t.Fatalf("SoftmaxCrossEntropy%s = %v, want %v", tag, got, loss)
		}
		full, dx := ktBuf[T](n)
		SoftmaxCrossEntropyGrad(dx, x, labels, rows, cols, scale)
		ktGuardsOK(t, "SoftmaxCrossEntropyGrad"+tag, full)
		ktClose(t, "SoftmaxCrossEntropyGrad"+tag, dx, want, gradTol)
		if _, ok := any(z).(float64); !ok {
			continue
		}
		// Central differences at the labels, the far logit and a few others.
		for _, i := range []int{int(labels[0]), cols + 7, cols + int(labels[1]), 2*cols + 5, r.IntN(n)} {
			const h = 1e-5
			v := x[i]
			x[i] = v + h
			up := float64(SoftmaxCrossEntropy(x, labels, rows, cols))
			x[i] = v - h
			down := float64(SoftmaxCrossEntropy(x, labels, rows, cols))
			x[i] = v
			fd := (up - down) / (2 * h)
			if math.Abs(fd-float64(dx[i])) > 1e-8*(1+math.Abs(fd)) {
				t.Fatalf("SoftmaxCrossEntropyGrad%s [%d] = %v, central difference %v", tag, i, dx[i], fd)
			}
		}
	}
}

func TestCrossEntropyVocab(t *testing.T) {
	ktRun(t, ktTestCrossEntropyVocab[float32], ktTestCrossEntropyVocab[float64])
}
