// Package baselines holds two hand-written implementations of the training
// step of generated/mlp (784-128-64-10 MLP, ReLU, ReLU, softmax cross-entropy,
// batch 32, Adam, float32), to compare ns/step with the generated code:
//
//   - Gonum (gonum.go): every GEMM through gonum's float32 BLAS (blas32.Gemm,
//     backed by gonum.Implementation's Sgemm and its SSE axpy/dot kernels).
//   - Naive (naive.go): plain i-k-j triple loops, no blocking.
//
// Everything that is not a GEMM (bias add + ReLU, softmax cross-entropy and
// its gradient, bias gradients, ReLU masks, Adam) is the same plain Go loops
// for both, in this file, so the two differ only in their matrix products.
//
// One step does what generated/mlp's TrainStep does: zero the gradients,
// forward, loss, backward, one Adam step over all 109386 parameters
// (lr 1e-3, β1 0.9, β2 0.999, eps 1e-8, PyTorch bias correction). Unlike the
// generated step it does not validate labels or check the loss for NaN
// (both cost ~32 and 1 comparisons).
//
// Run the comparison single-threaded:
//
//	go test -run XXX -bench TrainStep -cpu 1 ./examples/baselines/ ./generated/mlp/
//
// gonum's Sgemm goes parallel (goroutines + channels, hence allocations)
// when C has at least 4 blocks of 64×64; only dW1 (784×128) is that large.
// Gonum.TrainStep splits it into 64-row panels so every Sgemm call stays
// serial on the calling goroutine and the step allocates nothing; -cpu 1
// additionally pins GOMAXPROCS so the runtime (GC workers) cannot use the
// second shared core either.
package baselines

import (
	"math"
	"math/rand/v2"
)

// Layer sizes, batch and parameter count of generated/mlp.
const (
	Batch     = 32
	In        = 784
	H1        = 128
	H2        = 64
	Out       = 10
	NumParams = In*H1 + H1 + H1*H2 + H2 + H2*Out + Out // 109386
)

// Adam hyperparameters (PyTorch defaults with lr 1e-3).
const (
	LR    = 1e-3
	Beta1 = 0.9
	Beta2 = 0.999
	Eps   = 1e-8
)

// net is the state shared by both baselines: parameters, gradients, Adam
// moments, inputs and activations, all allocated once by newNet.
// Weights are row-major (fan_in, fan_out), so a layer is Y = X·W + b.
type net struct {
	Params []float32 // W1 | B1 | W2 | B2 | W3 | B3, the layout of generated/mlp
	Grads  []float32 // same layout
	M, V   []float32 // Adam moments
	T      int       // Adam step count

	W1, B1, W2, B2, W3, B3       []float32 // views into Params
	DW1, DB1, DW2, DB2, DW3, DB3 []float32 // views into Grads

	X []float32 // (Batch, In)
	Y []int32   // (Batch) classes in [0, Out)

	h1      []float32 // relu(X·W1 + B1)  (Batch, H1)
	h2      []float32 // relu(h1·W2 + B2) (Batch, H2)
	logits  []float32 // h2·W3 + B3       (Batch, Out)
	dlogits []float32 // (Batch, Out)
	dh2     []float32 // dloss/dh2, then in place dloss/dz2 (Batch, H2)
	dh1     []float32 // dloss/dh1, then in place dloss/dz1 (Batch, H1)

	Loss float32 // loss of the last step's forward pass
}

func newNet() net {
	var n net
	n.Params = make([]float32, NumParams)
	n.Grads = make([]float32, NumParams)
	n.M = make([]float32, NumParams)
	n.V = make([]float32, NumParams)
	split := func(s []float32) (w1, b1, w2, b2, w3, b3 []float32) {
		sizes := [...]int{In * H1, H1, H1 * H2, H2, H2 * Out, Out}
		var v [6][]float32
		off := 0
		for i, sz := range sizes {
			v[i] = s[off : off+sz : off+sz]
			off += sz
		}
		return v[0], v[1], v[2], v[3], v[4], v[5]
	}
	n.W1, n.B1, n.W2, n.B2, n.W3, n.B3 = split(n.Params)
	n.DW1, n.DB1, n.DW2, n.DB2, n.DW3, n.DB3 = split(n.Grads)
	n.X = make([]float32, Batch*In)
	n.Y = make([]int32, Batch)
	n.h1 = make([]float32, Batch*H1)
	n.h2 = make([]float32, Batch*H2)
	n.logits = make([]float32, Batch*Out)
	n.dlogits = make([]float32, Batch*Out)
	n.dh2 = make([]float32, Batch*H2)
	n.dh1 = make([]float32, Batch*H1)
	return n
}

// Init sets the parameters as generated/mlp's initializers do (He uniform
// for W1 and W2, Glorot uniform for W3, zero biases), from a PCG seeded with
// seed, and resets Adam. The random stream differs from the generated
// code's, so the values do too.
func (n *net) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	uniform := func(w []float32, limit float64) {
		for i := range w {
			w[i] = float32((2*rng.Float64() - 1) * limit)
		}
	}
	uniform(n.W1, math.Sqrt(6.0/In))
	uniform(n.W2, math.Sqrt(6.0/H1))
	uniform(n.W3, math.Sqrt(6.0/(H2+Out)))
	clear(n.B1)
	clear(n.B2)
	clear(n.B3)
	clear(n.M)
	clear(n.V)
	n.T = 0
}

// FillInputs sets X to values in [0.05, 0.95] and Y to classes in [0, 10).
func (n *net) FillInputs(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	for i := range n.X {
		n.X[i] = float32(0.05 + 0.9*rng.Float64())
	}
	for i := range n.Y {
		n.Y[i] = int32(rng.IntN(Out))
	}
}

// biasReLU computes h[r,c] = max(h[r,c] + b[c], 0) in place.
func biasReLU(h, b []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := h[r*cols : r*cols+cols]
		for c := range row {
			v := row[c] + b[c]
			if v < 0 {
				v = 0
			}
			row[c] = v
		}
	}
}

// addBias computes h[r,c] += b[c].
func addBias(h, b []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := h[r*cols : r*cols+cols]
		for c := range row {
			row[c] += b[c]
		}
	}
}

// reluMask computes d[i] = 0 where h[i] (the ReLU's output) is 0.
func reluMask(d, h []float32) {
	for i := range d {
		if h[i] <= 0 {
			d[i] = 0
		}
	}
}

// sumRows adds the column sums of d (rows×cols) into db.
func sumRows(db, d []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := d[r*cols : r*cols+cols]
		for c := range row {
			db[c] += row[c]
		}
	}
}

// softmaxCE returns the mean over rows of logsumexp(logits[r]) - logits[r][y[r]],
// accumulated in float64 like generated/mlp's runtime.
func softmaxCE(logits []float32, y []int32, rows, cols int) float32 {
	var loss float64
	for r := 0; r < rows; r++ {
		row := logits[r*cols : r*cols+cols]
		mx := row[0]
		for _, v := range row[1:] {
			mx = max(mx, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v - mx))
		}
		loss += math.Log(s) + float64(mx) - float64(row[y[r]])
	}
	return float32(loss / float64(rows))
}

// softmaxCEGrad sets d[r,c] = (softmax(logits[r])[c] - [c == y[r]]) / rows,
// the gradient of softmaxCE.
func softmaxCEGrad(d, logits []float32, y []int32, rows, cols int) {
	scale := 1 / float64(rows)
	for r := 0; r < rows; r++ {
		row := logits[r*cols : r*cols+cols]
		dr := d[r*cols : r*cols+cols]
		mx := row[0]
		for _, v := range row[1:] {
			mx = max(mx, v)
		}
		var s float64
		for c, v := range row {
			e := math.Exp(float64(v - mx))
			s += e
			dr[c] = float32(e)
		}
		k := float32(scale / s)
		for c := range dr {
			dr[c] *= k
		}
		dr[y[r]] -= float32(scale)
	}
}

// adam applies one Adam step with PyTorch's bias correction:
//
//	m ← β1·m + (1-β1)·g,  v ← β2·v + (1-β2)·g²
//	p ← p - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + eps)
func (n *net) adam() {
	n.T++
	bc1 := 1 - math.Pow(Beta1, float64(n.T))
	bc2 := 1 - math.Pow(Beta2, float64(n.T))
	step := float32(LR / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	const b1, b2 = float32(Beta1), float32(Beta2)
	const c1, c2 = 1 - b1, 1 - b2
	const eps = float32(Eps)
	p := n.Params
	g := n.Grads[:len(p)]
	m := n.M[:len(p)]
	v := n.V[:len(p)]
	for i := range p {
		gi := g[i]
		mi := b1*m[i] + c1*gi
		vi := b2*v[i] + c2*gi*gi
		m[i] = mi
		v[i] = vi
		p[i] -= step * (mi / (float32(math.Sqrt(float64(vi)))/sqrtBC2 + eps))
	}
}
