package desc

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
)

func init() {
	functions["attention"] = function{2, 2, []string{"causal"},
		"attention(qkv, heads, causal=true) with qkv of shape (N, T, 3C), queries, keys and values side by side: (N, T, C)", lowerAttention}
}

func lowerAttention(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	a, err := args(c, []string{"qkv", "heads"})
	if err != nil {
		return nil, err
	}
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	heads, err := wholeNumber(a["heads"], "the number of heads", 1)
	if err != nil {
		return nil, err
	}
	causal, err := boolDefault(a["causal"], "causal", true)
	if err != nil {
		return nil, err
	}
	n := l.b.Op(ir.Attention, ir.Attrs{Heads: heads, Causal: causal}, x)
	return n, l.check(c.pos, fmt.Sprintf("attention over %v in %d heads", x.Shape, heads))
}
