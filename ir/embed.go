package ir

import "fmt"

// Token embeddings: a table of one row per token of a vocabulary, looked up
// by integer token ids (an input declared [T] tokens(V), a Label leaf).
var (
	Embedding     = newOp("embedding")      // (W (V, D), tokens (N, ...)) → (N, ..., D)
	EmbeddingGrad = newOp("embedding_grad") // (dy (N, ..., D), tokens) → dW (V, D), a scatter-add
)

func init() {
	define(Embedding, &OpDef{Arity: 2, Shape: embeddingShape, Step: stepRows,
		Flops: func(n *Node) int { return n.Shape.Elems() }, // a copy per element
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s[%s] += %s: each position's gradient row added to its token's row", n.Args[0].Label(), n.Args[1].Label(), dy.Label())
			return []*Node{b.Op(EmbeddingGrad, Attrs{To: n.Args[0].Shape}, dy, n.Args[1]), nil}
		}})
	define(EmbeddingGrad, &OpDef{Arity: 2, NoGrad: backwardOnly, Accumulates: true,
		Shape: func(n *Node) (Shape, error) {
			if n.Attrs.To == nil {
				return nil, fmt.Errorf("embedding_grad needs the table's shape")
			}
			return n.Attrs.To, nil
		},
		// A row of dW sums at most every position's row of dy.
		Bound: func(n *Node) (float64, []int, int) {
			rows := n.Args[1].Shape.Elems()
			return float64(rows), []int{0}, rows
		}})
}

// embeddingShape: W is (V, D) with V the tokens' vocabulary; the result is
// the tokens' shape with D appended.
func embeddingShape(n *Node) (Shape, error) {
	w, tok := n.Args[0], n.Args[1]
	if tok.Op != Label || tok.DType != Int {
		return nil, fmt.Errorf("embedding looks up token ids (an input declared [T] tokens(V)), got %s", tok.Label())
	}
	if len(w.Shape) != 2 || w.Shape.HasBatch() {
		return nil, fmt.Errorf("embedding table %v must be (vocabulary, dim)", w.Shape)
	}
	if w.Shape[0].Size != tok.Attrs.Classes {
		return nil, fmt.Errorf("embedding table has %d rows for a vocabulary of %d tokens", w.Shape[0].Size, tok.Attrs.Classes)
	}
	return append(append(Shape{}, tok.Shape...), w.Shape[1]), nil
}
