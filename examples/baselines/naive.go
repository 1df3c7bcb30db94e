package baselines

// Naive is the MLP training step with every matrix product a plain i-k-j
// triple loop (no blocking, no unrolling, bounds checks left in) and plain
// loops everywhere else (those of common.go, shared with Gonum).
// TrainStep allocates nothing.
type Naive struct {
	net
}

// NewNaive returns a Naive baseline initialized from seed, with synthetic
// inputs from seed+1 (the same values as NewGonum(seed)).
func NewNaive(seed uint64) *Naive {
	n := &Naive{net: newNet()}
	n.Init(seed)
	n.FillInputs(seed + 1)
	return n
}

// matmulNN: C (m×n) += A (m×k) · B (k×n).
func matmulNN(m, n, k int, a, b, c []float32) {
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			aip := a[i*k+p]
			for j := 0; j < n; j++ {
				c[i*n+j] += aip * b[p*n+j]
			}
		}
	}
}

// matmulTN: C (m×n) += Aᵀ · B with A stored k×m and B k×n.
func matmulTN(m, n, k int, a, b, c []float32) {
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			api := a[p*m+i]
			for j := 0; j < n; j++ {
				c[i*n+j] += api * b[p*n+j]
			}
		}
	}
}

// matmulNT: C (m×n) += A · Bᵀ with A stored m×k and B n×k. Kept in i-k-j
// order like the others, so the inner loop reads B with stride k.
func matmulNT(m, n, k int, a, b, c []float32) {
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			aip := a[i*k+p]
			for j := 0; j < n; j++ {
				c[i*n+j] += aip * b[j*k+p]
			}
		}
	}
}

// TrainStep runs one training step on the Batch rows of X and Y and returns
// the loss of its forward pass.
func (n *Naive) TrainStep() float32 {
	clear(n.Grads)

	// Forward.
	clear(n.h1)
	matmulNN(Batch, H1, In, n.X, n.W1, n.h1)
	biasReLU(n.h1, n.B1, Batch, H1)
	clear(n.h2)
	matmulNN(Batch, H2, H1, n.h1, n.W2, n.h2)
	biasReLU(n.h2, n.B2, Batch, H2)
	clear(n.logits)
	matmulNN(Batch, Out, H2, n.h2, n.W3, n.logits)
	addBias(n.logits, n.B3, Batch, Out)
	n.Loss = softmaxCE(n.logits, n.Y, Batch, Out)

	// Backward.
	softmaxCEGrad(n.dlogits, n.logits, n.Y, Batch, Out)
	sumRows(n.DB3, n.dlogits, Batch, Out)
	clear(n.dh2)
	matmulNT(Batch, H2, Out, n.dlogits, n.W3, n.dh2) // dh2 = dlogits·W3ᵀ
	matmulTN(H2, Out, Batch, n.h2, n.dlogits, n.DW3) // dW3 += h2ᵀ·dlogits

	reluMask(n.dh2, n.h2) // dz2
	sumRows(n.DB2, n.dh2, Batch, H2)
	clear(n.dh1)
	matmulNT(Batch, H1, H2, n.dh2, n.W2, n.dh1) // dh1 = dz2·W2ᵀ
	matmulTN(H1, H2, Batch, n.h1, n.dh2, n.DW2) // dW2 += h1ᵀ·dz2

	reluMask(n.dh1, n.h1) // dz1
	sumRows(n.DB1, n.dh1, Batch, H1)
	matmulTN(In, H1, Batch, n.X, n.dh1, n.DW1) // dW1 += Xᵀ·dz1

	n.adam()
	return n.Loss
}
