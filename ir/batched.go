package ir

import (
	"fmt"
	"slices"
)

// The primitives attention is written with: products of stacks of
// matrices, axis permutations that split and merge heads, a causal mask,
// and a split of the last axis (queries, keys and values side by side).
// The fused attention op computes the same; these let users write
// variants of it.
var (
	BatchMatMul = newOp("batch_matmul") // (..., M, K) · (..., K, P) → (..., M, P), transposes folded in
	Permute     = newOp("permute")      // axes reordered (a copy)
	CausalMask  = newOp("causal_mask")  // (..., T, T): elements above the diagonal replaced by a fill value
	Split       = newOp("split")        // part i of p equal parts of the last axis
	SplitGrad   = newOp("split_grad")   // dy placed into part i of a zero tensor of the split's argument
)

// MaskFill is what causal_mask writes above the diagonal in the forward
// pass: the most negative float32, so that a softmax after it gives those
// positions exactly 0, as -Inf would, while every value stays finite (the
// finite checks and anomaly mode read forward values too).
const MaskFill = -3.4028234663852886e38

func init() {
	define(BatchMatMul, &OpDef{Arity: 2, Shape: batchMatMulShape, Simplify: absorbSwaps, Accumulates: true,
		Formula: func(n *Node, arg func(int) string) string {
			return arg(0) + tick(n.Attrs.TransA) + "·" + arg(1) + tick(n.Attrs.TransB)
		},
		Flops: func(n *Node) int { return 2 * n.Shape.Elems() * batchContracted(n) },
		Bound: func(n *Node) (float64, []int, int) {
			k := batchContracted(n)
			return float64(k), []int{0, 1}, k
		},
		Grad: func(b *Builder, n, dy *Node) []*Node {
			return productGrad(b, n, dy, b.BatchMatMul)
		}})
	define(Permute, &OpDef{Arity: 1, Shape: permuteShape, Accumulates: true,
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("permute(%s, %v)", arg(0), n.Attrs.Axes)
		},
		Bound: func(n *Node) (float64, []int, int) { return 1, []int{0}, 1 },
		Simplify: func(b *Builder, n *Node) *Node {
			x := n.Attrs.Axes
			if isIdentity(x) {
				return n.Args[0]
			}
			if a := n.Args[0]; a.Op == Permute { // permute(permute(v, p), q) = permute(v, p∘q)
				return b.Permute(a.Args[0], composePerm(a.Attrs.Axes, x))
			}
			return nil
		},
		Grad: func(b *Builder, n, dy *Node) []*Node {
			inv := inversePerm(n.Attrs.Axes)
			b.Note("d%s = permute(%s, %v), the inverse order", n.Args[0].Label(), dy.Label(), inv)
			return []*Node{b.Permute(dy, inv)}
		}})
	define(CausalMask, &OpDef{Arity: 1, Shape: causalMaskShape,
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("causal_mask(%s, fill=%g)", arg(0), n.Attrs.Value)
		},
		// No Bound: the forward form writes MaskFill, far above its input.
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s with the masked positions zeroed (they do not depend on %s)", n.Args[0].Label(), dy.Label(), n.Args[0].Label())
			return []*Node{b.Op(CausalMask, Attrs{Value: 0}, dy)}
		}})
	define(Split, &OpDef{Arity: 1, Shape: splitShape,
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("split(%s, %d)[%d]", arg(0), n.Attrs.Parts, n.Attrs.Index)
		},
		Bound: func(n *Node) (float64, []int, int) { return 1, []int{0}, 1 },
		Grad: func(b *Builder, n, dy *Node) []*Node {
			x := n.Args[0]
			b.Note("d%s = %s in part %d of %d of the last axis, 0 elsewhere", x.Label(), dy.Label(), n.Attrs.Index, n.Attrs.Parts)
			return []*Node{b.Op(SplitGrad, Attrs{Parts: n.Attrs.Parts, Index: n.Attrs.Index, To: x.Shape}, dy)}
		}})
	define(SplitGrad, &OpDef{Arity: 1, NoGrad: backwardOnly, Accumulates: true,
		Bound: func(n *Node) (float64, []int, int) { return 1, []int{0}, 1 },
		Shape: func(n *Node) (Shape, error) {
			to, p := n.Attrs.To, n.Attrs.Parts
			if len(to) == 0 || p < 1 || to[len(to)-1].Size%p != 0 {
				return nil, fmt.Errorf("split_grad to %v in %d parts", to, p)
			}
			want := append(to[:len(to)-1].Clone(), Dim{Size: to[len(to)-1].Size / p})
			if !n.Args[0].Shape.Equal(want) {
				return nil, fmt.Errorf("split_grad of %v, want %v", n.Args[0].Shape, want)
			}
			return to, nil
		}})
}

// BatchMatMul builds op(x)·op(y) over stacks of matrices.
func (b *Builder) BatchMatMul(x, y *Node, transA, transB bool) *Node {
	return b.Op(BatchMatMul, Attrs{TransA: transA, TransB: transB}, x, y)
}

// Permute builds x with its axes reordered: axis i of the result is axis
// axes[i] of x.
func (b *Builder) Permute(x *Node, axes []int) *Node {
	return b.Op(Permute, Attrs{Axes: axes}, x)
}

// Product builds x @ y: a stack of products when both operands are stacks
// of matrices (rank 3 or 4), otherwise matmul's rows-times-matrix form.
func (b *Builder) Product(x, y *Node) *Node {
	if len(x.Shape) >= 3 && len(y.Shape) >= 3 {
		return b.BatchMatMul(x, y, false, false)
	}
	return b.MatMul(x, y, false, false)
}

// SwapLast builds x with its last two axes swapped: a 2-D transpose, or a
// permute of a stack of matrices (which a product folds in).
func (b *Builder) SwapLast(x *Node) *Node {
	r := len(x.Shape)
	if r <= 2 {
		return b.Transpose(x)
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	axes[r-1], axes[r-2] = r-2, r-1
	return b.Permute(x, axes)
}

// productGrad is the adjoint of C = op(A)·op(B), for matmul and
// batch_matmul alike (mm builds the product of the same kind).
func productGrad(b *Builder, n, dy *Node, mm func(x, y *Node, tA, tB bool) *Node) []*Node {
	a, w := n.Args[0], n.Args[1]
	tA, tB := n.Attrs.TransA, n.Attrs.TransB
	var da, dw *Node
	if !tA {
		b.Note("d%s = %s·%s%s", a.Label(), dy.Label(), w.Label(), tick(!tB))
		da = mm(dy, w, false, !tB)
	} else {
		b.Note("d%s = %s%s·%sᵀ", a.Label(), w.Label(), tick(tB), dy.Label())
		da = mm(w, dy, tB, true)
	}
	if !tB {
		b.Note("d%s = %s%s·%s", w.Label(), a.Label(), tick(!tA), dy.Label())
		dw = mm(a, dy, !tA, false)
	} else {
		b.Note("d%s = %sᵀ·%s%s", w.Label(), dy.Label(), a.Label(), tick(tA))
		dw = mm(dy, a, true, tA)
	}
	return []*Node{da, dw}
}

// BatchDims returns the stack count (the leading dimensions), the rows M,
// columns P and contracted size K of a batch_matmul.
func BatchDims(n *Node) (lead Shape, m, p, k int) {
	a := n.Args[0].Shape
	r := len(a)
	lead = a[:r-2]
	m, k = a[r-2].Size, a[r-1].Size
	if n.Attrs.TransA {
		m, k = k, m
	}
	return lead, m, n.Shape[r-1].Size, k
}

func batchContracted(n *Node) int { _, _, _, k := BatchDims(n); return k }

func batchMatMulShape(n *Node) (Shape, error) {
	a, b := n.Args[0].Shape, n.Args[1].Shape
	if len(a) < 3 || len(b) < 3 || len(a) > 4 || len(b) > 4 {
		return nil, fmt.Errorf("a product of stacks of matrices needs operands of rank 3 or 4, got %v and %v", a, b)
	}
	if len(a) != len(b) {
		hint := ""
		if a.HasBatch() != b.HasBatch() {
			hint = " (a parameter has no batch axis; a weight shared by every row is 2-D)"
		}
		return nil, fmt.Errorf("the stacks %v and %v differ: both operands need the same leading dimensions%s", a[:len(a)-2], b[:len(b)-2], hint)
	}
	r := len(a)
	for _, s := range []Shape{a, b} {
		if s[r-2].Batch || s[r-1].Batch {
			return nil, fmt.Errorf("the batch dimension of %v must be a leading (stack) axis, not one of the last two", s)
		}
	}
	if !a[:r-2].Equal(b[:r-2]) {
		return nil, fmt.Errorf("leading (stack) dimensions differ: %v vs %v", a[:r-2], b[:r-2])
	}
	m, k := a[r-2], a[r-1]
	if n.Attrs.TransA {
		m, k = k, m
	}
	k2, p := b[r-2], b[r-1]
	if n.Attrs.TransB {
		k2, p = p, k2
	}
	if k != k2 {
		return nil, fmt.Errorf("inner dimensions differ (%s vs %s): the left matrices' columns must equal the right matrices' rows", dimString(k), dimString(k2))
	}
	return append(a[:r-2].Clone(), m, p), nil
}

// absorbSwaps folds a permute that swaps the last two axes of an operand
// into the product's transpose flags. A permute that moves the last axis
// into the second-to-last place (k's (N, H, D, T) from permute(k, [0, 2, 3,
// 1]), a head split and a transpose composed) becomes the permute that
// keeps the last axis in place, with the flag flipped: its copy reads rows
// and is often a node that already exists (k itself).
func absorbSwaps(b *Builder, n *Node) *Node {
	x, y := n.Args[0], n.Args[1]
	tA, tB := n.Attrs.TransA, n.Attrs.TransB
	changed := false
	if v, ok := unswapped(b, x); ok {
		x, tA, changed = v, !tA, true
	}
	if v, ok := unswapped(b, y); ok {
		y, tB, changed = v, !tB, true
	}
	if !changed {
		return nil
	}
	return b.BatchMatMul(x, y, tA, tB)
}

// unswapped returns x with its last two axes swapped back, when x is a
// permute that moved its argument's last axis to the second-to-last place.
func unswapped(b *Builder, x *Node) (*Node, bool) {
	if x.Op != Permute {
		return nil, false
	}
	p := slices.Clone(x.Attrs.Axes)
	r := len(p)
	if r < 3 || p[r-2] != r-1 {
		return nil, false
	}
	p[r-2], p[r-1] = p[r-1], p[r-2]
	v := x.Args[0]
	// The permute already built (k, before its transpose), or a new one.
	for _, n := range b.Nodes {
		if n.Op == Permute && n.Args[0] == v && slices.Equal(n.Attrs.Axes, p) {
			return n, true
		}
	}
	return b.Permute(v, p), true
}

func permuteShape(n *Node) (Shape, error) {
	x, p := n.Args[0].Shape, n.Attrs.Axes
	if len(p) != len(x) {
		return nil, fmt.Errorf("permute of a tensor of rank %d needs %d axes, got %v", len(x), len(x), p)
	}
	if len(x) > 4 {
		return nil, fmt.Errorf("rank above 4 is not supported")
	}
	seen := make([]bool, len(p))
	out := make(Shape, len(p))
	for i, a := range p {
		if a < 0 || a >= len(p) || seen[a] {
			return nil, fmt.Errorf("axes %v are not an order of 0..%d: list every axis once", p, len(p)-1)
		}
		seen[a] = true
		if (x[a].Batch || x[i].Batch) && a != i {
			return nil, fmt.Errorf("the batch axis (axis %d) must stay where it is", batchAxis(x))
		}
		out[i] = x[a]
	}
	return out, nil
}

func batchAxis(s Shape) int {
	return slices.IndexFunc(s, func(d Dim) bool { return d.Batch })
}

func isIdentity(p []int) bool {
	for i, a := range p {
		if a != i {
			return false
		}
	}
	return true
}

// composePerm returns the order of permute(permute(v, p), q): axis i of
// the result is axis p[q[i]] of v.
func composePerm(p, q []int) []int {
	out := make([]int, len(q))
	for i, a := range q {
		out[i] = p[a]
	}
	return out
}

func inversePerm(p []int) []int {
	inv := make([]int, len(p))
	for i, a := range p {
		inv[a] = i
	}
	return inv
}

func causalMaskShape(n *Node) (Shape, error) {
	x := n.Args[0].Shape
	r := len(x)
	if r < 2 || x[r-1].Batch || x[r-2].Batch || x[r-1].Size != x[r-2].Size {
		return nil, fmt.Errorf("causal_mask needs square matrices in its last two axes (scores of T queries over T keys), got %v", x)
	}
	return x, nil
}

func splitShape(n *Node) (Shape, error) {
	x, p, i := n.Args[0].Shape, n.Attrs.Parts, n.Attrs.Index
	if len(x) == 0 {
		return nil, fmt.Errorf("split needs a tensor with a last axis to cut, got a scalar")
	}
	if x[len(x)-1].Batch {
		return nil, fmt.Errorf("split needs a last axis of static size, got %v", x)
	}
	last := x[len(x)-1].Size
	if p < 1 || last%p != 0 {
		return nil, fmt.Errorf("the last axis of %v (%d) does not split into %d equal parts", x, last, p)
	}
	if i < 0 || i >= p {
		return nil, fmt.Errorf("part %d of %d is out of range: parts are numbered 0 to %d", i, p, p-1)
	}
	return append(x[:len(x)-1].Clone(), Dim{Size: last / p}), nil
}
