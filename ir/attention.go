package ir

import "fmt"

// Multi-head attention, fused as llm.c writes it: scaled scores, the
// (causally) masked softmax and the weighted sum in one forward kernel that
// records the probabilities (n, heads, T, T), and one backward kernel
// through them.
var (
	Attention     = newOp("attention")      // qkv (N, T, 3C) → (N, T, C)
	AttentionGrad = newOp("attention_grad") // (dy, qkv, attention) → dqkv (N, T, 3C)
)

func init() {
	define(Attention, &OpDef{Arity: 1, Shape: attentionShape,
		Formula: func(n *Node, arg func(int) string) string {
			mask := ", causal"
			if !n.Attrs.Causal {
				mask = ""
			}
			return fmt.Sprintf("attention(%s, %d heads%s)", arg(0), n.Attrs.Heads, mask)
		},
		Saved: func(n *Node) int { return n.Shape[0].Size * n.Attrs.Heads * n.Shape[1].Size * n.Shape[1].Size },
		// A causal step's query reads the keys and values of the earlier
		// positions, which the Decoder keeps; without the mask it would
		// read later ones, which a step has not seen.
		Step: func(n *Node) StepKind {
			if !n.Attrs.Causal {
				return StepNone
			}
			return StepCached
		},
		// One head's queries, keys, values and outputs (runtime.AttentionScratchSize).
		Scratch:    func(n *Node) int { return 4 * n.Shape[1].Size * n.Shape[2].Size / n.Attrs.Heads },
		ScratchDoc: "one head's queries, keys, values and outputs",
		// q·kᵀ and p·v: 2·T·T·C multiply-adds per row.
		Flops: func(n *Node) int { s := n.Shape; return 4 * s[0].Size * s[1].Size * s[1].Size * s[2].Size },
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = attention's adjoint: dv = pᵀ·dy, through the softmax ds = p ⊙ (dy·vᵀ − Σ p ⊙ dy·vᵀ), dq = ds·k/√d, dk = dsᵀ·q/√d", n.Args[0].Label())
			return []*Node{b.Op(AttentionGrad, Attrs{Heads: n.Attrs.Heads, Causal: n.Attrs.Causal}, dy, n.Args[0], n)}
		}})
	define(AttentionGrad, &OpDef{Arity: 3, NoGrad: backwardOnly, Accumulates: true,
		// runtime.AttentionGradScratchSize: five of a head's (T, C/heads)
		// blocks and its (T, T) score gradients.
		ScratchDoc: "one head's queries, keys, values, output gradient, a gradient being made and score gradients",
		Scratch: func(n *Node) int {
			T, C := n.Args[0].Shape[1].Size, n.Args[0].Shape[2].Size
			return 5*T*C/n.Attrs.Heads + T*T
		},
		Flops: func(n *Node) int { s := n.Args[0].Shape; return 8 * s[0].Size * s[1].Size * s[1].Size * s[2].Size },
		Shape: func(n *Node) (Shape, error) {
			if n.Args[2].Op != Attention {
				return nil, fmt.Errorf("attention_grad reads the probabilities of an attention, got %s", n.Args[2].Op.Name)
			}
			return n.Args[1].Shape, nil
		}})
}

// attentionShape: qkv is (N, T, 3C), C a multiple of the heads.
func attentionShape(n *Node) (Shape, error) {
	x := n.Args[0].Shape
	if len(x) != 3 || !x[0].Batch || x[1].Batch || x[2].Batch {
		return nil, fmt.Errorf("attention needs a sequence (N, steps, 3·channels), got %v", x)
	}
	if x[2].Size%3 != 0 {
		return nil, fmt.Errorf("attention's input %v holds queries, keys and values side by side: its last axis must be 3·channels (make it with a dense layer of 3·C units)", x)
	}
	C, h := x[2].Size/3, n.Attrs.Heads
	if h < 1 || C%h != 0 {
		return nil, fmt.Errorf("%d channels (a third of the last axis) do not split into %d heads: use a number of heads that divides %d", C, h, C)
	}
	return Shape{x[0], x[1], {Size: C}}, nil
}
