package ir

import "fmt"

// Normalization and dropout: the ops whose forward pass differs between
// training and inference (OpDef.Infer), and the first with state.
//
// batch_norm(x, gamma, beta, running_mean, running_var) normalizes each
// channel (the last axis) with the batch's statistics in training mode and
// saves them (mean, rstd, variance: 3C floats); batch_norm_stats, an effect,
// then moves the running statistics (state leaves) toward them. In
// inference mode batch_norm_infer uses the running statistics, or, after a
// product whose weight scales its channels, the product takes the batch
// norm folded into its weight and bias (batch_norm_fold; derive's
// foldBatchNorms). layer_norm normalizes each row over the last axis and
// saves its mean and rstd (2 floats a row). dropout drops elements with
// the masks of a counter-based RNG, which its gradient computes again, and
// is the identity in inference mode.

// The layouts of the gradient buffers of batch_norm_grad and
// layer_norm_grad, by argument of the forward op: the parameter gradients
// (static sizes) first, then dx.
const (
	normGradGamma = iota
	normGradBeta
	normGradX
)

// NormGradLayout returns the offsets of dgamma, dbeta and dx in the
// gradient buffer of a batch_norm or layer_norm node with C channels, and
// its size at the maximum batch.
func NormGradLayout(fwd *Node) (gamma, beta, x, total int) {
	C := fwd.Args[1].Shape.Elems()
	return 0, C, 2 * C, 2*C + fwd.Args[0].Shape.Elems()
}

// normChannels is the size of x's last axis, the channels of a batch norm
// or the row of a layer norm.
func normChannels(n *Node) int {
	x := n.Args[0].Shape
	return x[len(x)-1].Size
}

// normShape checks x (N, ..., C) and per-channel parameters (C) for the
// first k arguments after x.
func normShape(n *Node, k int) (Shape, error) {
	x := n.Args[0].Shape
	if len(x) < 2 || !x[0].Batch || x[len(x)-1].Batch {
		return nil, fmt.Errorf("needs (N, ..., channels), got %v", x)
	}
	for _, a := range n.Args[1 : 1+k] {
		if !a.Shape.Equal(Shape{x[len(x)-1]}) {
			return nil, fmt.Errorf("%s has shape %v, want (%d), one per channel of %v", a.Label(), a.Shape, x[len(x)-1].Size, x)
		}
	}
	return x, nil
}

// normGrad builds the gradient of a batch_norm or layer_norm node: one
// grad op making dgamma, dbeta and dx in one buffer, handed out in slices.
func normGrad(b *Builder, n, dy *Node, grad *OpDef) []*Node {
	x, gamma, beta := n.Args[0], n.Args[1], n.Args[2]
	b.Note("d%s, d%s, d%s of %s from %s (two reductions and one pass)", x.Label(), gamma.Label(), beta.Label(), n.Label(), dy.Label())
	og, ob, ox, total := NormGradLayout(n)
	all := b.Op(grad, Attrs{To: Fixed(total), Eps: n.Attrs.Eps}, dy, x, gamma, n)
	all.Name = "d" + n.Label() + ".all"
	grads := make([]*Node, len(n.Args)) // none for the running statistics
	for i, off := range []int{ox, og, ob} {
		a := n.Args[i]
		b.Note("d%s = %s[%d:%d]", a.Label(), all.Name, off, off+a.Shape.Elems())
		grads[i] = b.Op(Slice, Attrs{Offset: off, To: a.Shape}, all)
	}
	return grads
}

// normGradShape is the shape rule of the grad ops: (dy, x, gamma, fwd).
func normGradShape(fwd *OpDef) func(n *Node) (Shape, error) {
	return func(n *Node) (Shape, error) {
		if n.Args[3].Op != fwd || !n.Args[0].Shape.Equal(n.Args[3].Shape) {
			return nil, fmt.Errorf("%s takes the gradient of a %s's output, its input, gamma and the %s", n.Op.Name, fwd.Name, fwd.Name)
		}
		return n.Attrs.To, nil
	}
}

// normAccumulates: the grad kernels add into dgamma and dbeta (the slices
// at offsets 0 and C), and write dx.
func normAccumulates(n, s *Node) bool {
	og, ob, _, _ := NormGradLayout(n.Args[3])
	return s.Attrs.Offset == og || s.Attrs.Offset == ob && s.Shape.Elems() == n.Args[2].Shape.Elems()
}

func init() {
	define(BatchNorm, &OpDef{Arity: 5,
		Shape: func(n *Node) (Shape, error) { return normShape(n, 4) },
		Saved: func(n *Node) int { return 3 * normChannels(n) },
		// The values of a channel: every row but the batch axis, H·W for
		// an image.
		MinCount: func(n *Node) int {
			x := n.Args[0].Shape
			return x[1 : len(x)-1].Elems()
		},
		Flops: func(n *Node) int { return 8 * n.Shape.Elems() },
		Grad: func(b *Builder, n, dy *Node) []*Node {
			return normGrad(b, n, dy, BatchNormGrad)
		},
		Infer: func(b *Builder, n *Node) *Node {
			return b.Op(BatchNormInfer, Attrs{Eps: n.Attrs.Eps}, n.Args...)
		},
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("(%s - mean)/√(var + %g)·%s + %s, the batch's statistics per channel", arg(0), n.Attrs.Eps, arg(1), arg(2))
		}})
	define(BatchNormStats, &OpDef{Arity: 3, Effect: true, NoGrad: "an update of state, not differentiated",
		Shape: func(n *Node) (Shape, error) {
			if n.Args[0].Op != BatchNorm {
				return nil, fmt.Errorf("batch_norm_stats reads a batch_norm's statistics")
			}
			return Scalar, nil
		},
		Infer: func(b *Builder, n *Node) *Node { return nil }, // training only
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("%s, %s ← %g·batch + %g·themselves (variance unbiased)", arg(1), arg(2), n.Attrs.Momentum, 1-n.Attrs.Momentum)
		}})
	define(BatchNormGrad, &OpDef{Arity: 4, NoGrad: backwardOnly, Shape: normGradShape(BatchNorm), AccumulatesSlice: normAccumulates})
	define(BatchNormInfer, &OpDef{Arity: 5, NoGrad: "inference only",
		Shape: func(n *Node) (Shape, error) { return normShape(n, 4) },
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("(%s - %s)/√(%s + %g)·%s + %s", arg(0), arg(3), arg(4), n.Attrs.Eps, arg(1), arg(2))
		}})
	// batch_norm_fold(W, gamma, beta, running_mean, running_var[, b]) makes
	// the weight and bias (W' then b', in one buffer) of a product with the
	// inference-mode batch norm after it folded in.
	define(BatchNormFold, &OpDef{Arity: -1, NoGrad: "inference only",
		Shape: func(n *Node) (Shape, error) {
			w := n.Args[0].Shape
			if len(n.Args) < 5 || len(n.Args) > 6 || len(w) < 2 {
				return nil, fmt.Errorf("batch_norm_fold takes a weight, the batch norm's parameters and state, and a bias")
			}
			return Fixed(w.Elems() + w[len(w)-1].Size), nil
		},
		Formula: func(n *Node, arg func(int) string) string {
			b := "0"
			if len(n.Args) == 6 {
				b = arg(5)
			}
			return fmt.Sprintf("%s·s, (%s - %s)·s + %s with s = %s/√(%s + %g)", arg(0), b, arg(3), arg(2), arg(1), arg(4), n.Attrs.Eps)
		}})

	define(LayerNorm, &OpDef{Arity: 3, Step: stepRows, // over each position's channels
		Shape: func(n *Node) (Shape, error) { return normShape(n, 2) },
		Saved: func(n *Node) int { return 2 * n.Shape.Elems() / normChannels(n) },
		Flops: func(n *Node) int { return 8 * n.Shape.Elems() },
		Grad: func(b *Builder, n, dy *Node) []*Node {
			return normGrad(b, n, dy, LayerNormGrad)
		},
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("(%s - mean)/√(var + %g)·%s + %s over each row", arg(0), n.Attrs.Eps, arg(1), arg(2))
		}})
	define(LayerNormGrad, &OpDef{Arity: 4, NoGrad: backwardOnly, Shape: normGradShape(LayerNorm), AccumulatesSlice: normAccumulates})

	define(Dropout, &OpDef{Arity: 1, Shape: sameAsArg, Random: true,
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s ⊙ mask/(1-%g), the mask computed again", n.Args[0].Label(), dy.Label(), n.Attrs.Rate)
			return []*Node{b.Op(DropoutGrad, n.Attrs, dy)}
		},
		Infer: func(b *Builder, n *Node) *Node { return b.Op(Identity, Attrs{}, n.Args[0]) },
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("%s ⊙ mask/(1-%g), each element dropped with probability %g", arg(0), n.Attrs.Rate, n.Attrs.Rate)
		}})
	define(DropoutGrad, &OpDef{Arity: 1, Shape: sameAsArg, NoGrad: backwardOnly})
}
