package baselines

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Gonum is the MLP training step with every matrix product done by gonum's
// float32 BLAS (blas32.Gemm, i.e. gonum.Implementation{}.Sgemm unless
// blas32.Use installed another implementation). Everything else is the
// plain loops of common.go. TrainStep allocates nothing.
type Gonum struct {
	net
}

// NewGonum returns a Gonum baseline initialized from seed, with synthetic
// inputs from seed+1.
func NewGonum(seed uint64) *Gonum {
	g := &Gonum{net: newNet()}
	g.Init(seed)
	g.FillInputs(seed + 1)
	return g
}

// mat views s as a compact row-major rows×cols matrix.
func mat(rows, cols int, s []float32) blas32.General {
	return blas32.General{Rows: rows, Cols: cols, Stride: cols, Data: s}
}

// gonumPanel is the most rows of C per Sgemm call for dW1 (C has H1 = 128
// columns, two 64-wide blocks): with one 64-row block of C, gonum sees 2 < 4
// blocks and runs serially on the calling goroutine, allocating nothing.
const gonumPanel = 64

// TrainStep runs one training step on the Batch rows of X and Y and returns
// the loss of its forward pass.
func (g *Gonum) TrainStep() float32 {
	const (
		N = blas.NoTrans
		T = blas.Trans
	)
	clear(g.Grads)

	// Forward.
	blas32.Gemm(N, N, 1, mat(Batch, In, g.X), mat(In, H1, g.W1), 0, mat(Batch, H1, g.h1))
	biasReLU(g.h1, g.B1, Batch, H1)
	blas32.Gemm(N, N, 1, mat(Batch, H1, g.h1), mat(H1, H2, g.W2), 0, mat(Batch, H2, g.h2))
	biasReLU(g.h2, g.B2, Batch, H2)
	blas32.Gemm(N, N, 1, mat(Batch, H2, g.h2), mat(H2, Out, g.W3), 0, mat(Batch, Out, g.logits))
	addBias(g.logits, g.B3, Batch, Out)
	g.Loss = softmaxCE(g.logits, g.Y, Batch, Out)

	// Backward. Weight gradients accumulate (beta 1) into the zeroed Grads,
	// as generated/mlp's do.
	softmaxCEGrad(g.dlogits, g.logits, g.Y, Batch, Out)
	sumRows(g.DB3, g.dlogits, Batch, Out)
	// dh2 = dlogits·W3ᵀ, dW3 += h2ᵀ·dlogits
	blas32.Gemm(N, T, 1, mat(Batch, Out, g.dlogits), mat(H2, Out, g.W3), 0, mat(Batch, H2, g.dh2))
	blas32.Gemm(T, N, 1, mat(Batch, H2, g.h2), mat(Batch, Out, g.dlogits), 1, mat(H2, Out, g.DW3))

	reluMask(g.dh2, g.h2) // dz2
	sumRows(g.DB2, g.dh2, Batch, H2)
	// dh1 = dz2·W2ᵀ, dW2 += h1ᵀ·dz2
	blas32.Gemm(N, T, 1, mat(Batch, H2, g.dh2), mat(H1, H2, g.W2), 0, mat(Batch, H1, g.dh1))
	blas32.Gemm(T, N, 1, mat(Batch, H1, g.h1), mat(Batch, H2, g.dh2), 1, mat(H1, H2, g.DW2))

	reluMask(g.dh1, g.h1) // dz1
	sumRows(g.DB1, g.dh1, Batch, H1)
	// dW1 += Xᵀ·dz1 in 64-row panels of dW1 (see gonumPanel): panel
	// rows i0..i1 are X[:, i0:i1]ᵀ·dz1, where X[:, i0:i1] is a Batch×(i1-i0)
	// view of X with stride In.
	dz1 := mat(Batch, H1, g.dh1)
	for i0 := 0; i0 < In; i0 += gonumPanel {
		rows := min(gonumPanel, In-i0)
		xs := blas32.General{Rows: Batch, Cols: rows, Stride: In, Data: g.X[i0:]}
		blas32.Gemm(T, N, 1, xs, dz1, 1, mat(rows, H1, g.DW1[i0*H1:]))
	}

	g.adam()
	return g.Loss
}
