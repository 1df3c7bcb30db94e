package ir

import (
	"fmt"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Recurrent layers. One rnn op runs a whole sequence through a cell (a time
// loop in the runtime, never T unrolled copies) and saves what
// backpropagation through time needs; rnn_grad runs BPTT and yields every
// gradient at once in one buffer, which slice views hand out per argument.
//
// Arguments: x (N, T, D), W (D, G·H), U (H, G·H), b (G·H), bh (G·H), then
// h0 (N, H) if HasH0 and c0 (N, H) if HasC0. The result is hs (N, T, H).

// The arguments of an rnn node, by position.
const (
	RNNX  = iota // the sequence (N, T, D)
	RNNW         // input weights (D, G·H)
	RNNU         // recurrent weights (H, G·H)
	RNNB         // input bias (G·H)
	RNNBh        // recurrent bias (G·H)
	RNNH0        // initial hidden state (N, H), with HasH0
	RNNC0        // initial cell state (N, H), with HasC0
)

// RNNWeights are the arguments whose gradients RNNBackward adds into (the
// others it overwrites: dx, dh0, dc0).
var RNNWeights = []int{RNNW, RNNU, RNNB, RNNBh}

// RNNGeom returns the runtime geometry of an rnn node.
func RNNGeom(n *Node) spec.RNNGeom {
	x, u := n.Args[RNNX].Shape, n.Args[RNNU].Shape
	return spec.RNNGeom{Cell: n.Attrs.RNN.Cell, T: x[1].Size, D: x[2].Size, H: u[0].Size}
}

// RNNGradLayout returns the element offsets of each gradient inside an
// rnn_grad buffer, in argument order (x, W, U, b, bh, h0, c0), and its size.
// Static parts come first so every offset is a constant.
func RNNGradLayout(fwd *Node) (offsets []int, total int) {
	order := append(append([]int{}, RNNWeights...), RNNX, RNNH0, RNNC0)
	offsets = make([]int, len(fwd.Args))
	for _, i := range order {
		if i < len(fwd.Args) {
			offsets[i] = total
			total += fwd.Args[i].Shape.Elems()
		}
	}
	return offsets, total
}

func init() {
	define(RNN, &OpDef{Arity: -1, Shape: rnnShape,
		Flops: func(n *Node) int {
			geo := RNNGeom(n)
			return 2 * n.Shape[0].Size * geo.T * (geo.D + geo.H) * geo.Cell.Gates() * geo.H
		},
		Saved: func(n *Node) int { return RNNGeom(n).SavedSize(n.Shape[0].Size) },
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("backpropagation through time of %s from %s", n.Label(), dy.Label())
			offsets, total := RNNGradLayout(n)
			all := b.Op(RNNGrad, Attrs{RNN: n.Attrs.RNN, To: Fixed(total)}, dy, n)
			all.Name = "d" + n.Label() + ".bptt"
			grads := make([]*Node, len(n.Args))
			for i, a := range n.Args {
				b.Note("d%s = %s[%d:%d]", a.Label(), all.Name, offsets[i], offsets[i]+a.Shape.Elems())
				grads[i] = b.Op(Slice, Attrs{Offset: offsets[i], To: a.Shape}, all)
			}
			return grads
		}})
	define(RNNGrad, &OpDef{Arity: 2, NoGrad: backwardOnly,
		Scratch: func(n *Node) int { return RNNGeom(n.Args[1]).WorkSize(n.Args[1].Shape[0].Size) },
		// RNNBackward adds the weight gradients (W, U, b, bh) into what it
		// is given and overwrites those of x, h0 and c0.
		AccumulatesSlice: func(n, s *Node) bool {
			fwd := n.Args[1]
			offsets, _ := RNNGradLayout(fwd)
			for _, i := range RNNWeights {
				if s.Attrs.Offset == offsets[i] && s.Shape.Equal(fwd.Args[i].Shape) {
					return true
				}
			}
			return false
		},
		Shape: func(n *Node) (Shape, error) {
			if n.Args[1].Op != RNN || !n.Args[0].Shape.Equal(n.Args[1].Shape) {
				return nil, fmt.Errorf("rnn_grad takes the gradient of an rnn's output and the rnn")
			}
			return n.Attrs.To, nil
		}})
	// slice is a view of part of its argument (the gradients in an rnn_grad).
	define(Slice, &OpDef{Arity: 1, Alias: true, NoGrad: backwardOnly,
		Shape: func(n *Node) (Shape, error) {
			if n.Attrs.Offset < 0 || n.Attrs.Offset+n.Attrs.To.Elems() > n.Args[0].Shape.Elems() {
				return nil, fmt.Errorf("slice [%d, +%d) outside %v", n.Attrs.Offset, n.Attrs.To.Elems(), n.Args[0].Shape)
			}
			return n.Attrs.To, nil
		}})
	// time_last picks the last step of a sequence: (N, T, H) → (N, H).
	define(TimeLast, &OpDef{Arity: 1,
		Shape: func(n *Node) (Shape, error) {
			x := n.Args[0].Shape
			if len(x) != 3 || !x[0].Batch {
				return nil, fmt.Errorf("needs a sequence (N, T, H), got %v", x)
			}
			return Shape{x[0], x[2]}, nil
		},
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s at the last step, 0 before", n.Args[0].Label(), dy.Label())
			return []*Node{b.Op(TimeLastGrad, Attrs{To: n.Args[0].Shape}, dy)}
		}})
	define(TimeLastGrad, &OpDef{Arity: 1, NoGrad: backwardOnly, Accumulates: true,
		Shape: func(n *Node) (Shape, error) { return n.Attrs.To, nil }})
}

func rnnShape(n *Node) (Shape, error) {
	r := n.Attrs.RNN
	if r == nil {
		return nil, fmt.Errorf("rnn without a cell")
	}
	cell := r.Cell
	if cell.Gates() < 1 {
		return nil, fmt.Errorf("unknown cell %v", cell)
	}
	want := 5
	if r.HasH0 {
		want++
	}
	if r.HasC0 {
		want++
	}
	if len(n.Args) != want || (r.HasC0 && (!r.HasH0 || !cell.CellState())) {
		return nil, fmt.Errorf("%s takes %d arguments, got %d", r.Cell, want, len(n.Args))
	}
	x, w, u, b, bh := n.Args[RNNX].Shape, n.Args[RNNW].Shape, n.Args[RNNU].Shape, n.Args[RNNB].Shape, n.Args[RNNBh].Shape
	if len(x) != 3 || !x[0].Batch || x[1].Batch || x[2].Batch {
		return nil, fmt.Errorf("needs a sequence input (N, steps, features), got %v", x)
	}
	if len(u) != 2 {
		return nil, fmt.Errorf("recurrent kernel must be 2-D, got %v", u)
	}
	h := u[0].Size
	gh := Dim{Size: cell.Gates() * h}
	if !w.Equal(Shape{x[2], gh}) || u[1] != gh || !b.Equal(Shape{gh}) || !bh.Equal(Shape{gh}) {
		return nil, fmt.Errorf("weights %v, %v, %v, %v do not fit input %v with %d units", w, u, b, bh, x, h)
	}
	state := Shape{x[0], {Size: h}}
	for _, s := range n.Args[5:] {
		if !s.Shape.Equal(state) {
			return nil, fmt.Errorf("initial state %s has shape %v, want %v", s.Label(), s.Shape, state)
		}
	}
	return Shape{x[0], x[1], {Size: h}}, nil
}
