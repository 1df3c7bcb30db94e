package desc

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

func init() {
	functions["embedding"] = function{2, 2, []string{"init"},
		"embedding(tokens, dim, init=lecun_normal) with tokens an input declared [T] tokens(V): a (V, dim) table NAME.W, one row per token", lowerEmbedding}
}

func lowerEmbedding(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	a, err := args(c, []string{"tokens", "dim"})
	if err != nil {
		return nil, err
	}
	tok, err := l.lower(c.args[0])
	if err != nil {
		return nil, err
	}
	if tok.Op != ir.Label || tok.DType != ir.Int {
		return nil, errorf(c.args[0].at(), "embedding looks up token ids: declare them as input %s: [T] tokens(VOCAB)", describe(c.args[0]))
	}
	if !tok.Attrs.Tokens {
		return nil, errorf(c.args[0].at(), "embedding looks up token ids, and %s is a label, the classes the model predicts (a model that reads them sees the answer): declare the ids as an input, input NAME: [T] tokens(VOCAB)", describe(c.args[0]))
	}
	dim, err := wholeNumber(a["dim"], "the embedding's dimension", 1)
	if err != nil {
		return nil, err
	}
	init := spec.LeCunNormal // σ = 1/√vocab
	if a["init"] != nil {
		if init, err = initArg(a["init"]); err != nil {
			return nil, err
		}
	}
	w := l.layerParam("W", ir.Fixed(tok.Attrs.Classes, dim), init)
	n := l.b.Op(ir.Embedding, ir.Attrs{}, w, tok)
	return n, l.check(c.pos, fmt.Sprintf("embedding of %v", tok.Shape))
}
