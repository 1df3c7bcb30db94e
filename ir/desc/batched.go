package desc

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
)

// The primitives attention can be written with (ir/batched.go): permute,
// causal_mask and split; @ of two stacks of matrices and transpose of one
// are in functions.go and lower.go.

func init() {
	functions["permute"] = function{2, 2, nil,
		"permute(x, [0, 2, 1, 3]): axis i of the result is the listed axis of x (negative counts from the end); the batch axis stays", lowerPermute}
	functions["causal_mask"] = function{1, 1, nil,
		"causal_mask(scores) with scores (..., T, T): query i keeps keys 0..i, the rest become the most negative float32, so a softmax after it gives them 0; apply it last, just before the softmax (scaling the masked scores up would overflow)", lowerCausalMask}
	functions["split"] = function{3, 3, nil,
		"split(x, parts, i): part i (from 0) of the last axis cut into equal parts, e.g. split(qkv, 3, 1) for the keys", lowerSplit}
}

func lowerPermute(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	list, ok := c.args[1].(*listLit)
	if !ok {
		return nil, errorf(c.args[1].at(), "permute's second argument is the new order of the axes as a list, e.g. [0, 2, 1, 3]")
	}
	r := len(x.Shape)
	if r < 2 {
		return nil, errorf(c.args[0].at(), "permute needs a tensor of two axes or more, got shape %v", x.Shape)
	}
	axes := []int{}
	for _, e := range list.elems {
		v, err := wholeNumber(e, "an axis", -r)
		if err != nil {
			return nil, err
		}
		if v >= r {
			return nil, errorf(e.at(), "axis %d is out of range for %v (rank %d): axes are 0 to %d, or -%d to -1", v, x.Shape, r, r-1, r)
		}
		if v < 0 {
			v += r
		}
		axes = append(axes, v)
	}
	n := l.b.Permute(x, axes)
	return n, l.check(c.pos, fmt.Sprintf("permute %v", x.Shape))
}

func lowerCausalMask(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	n := l.b.Op(ir.CausalMask, ir.Attrs{Value: ir.MaskFill}, x)
	return n, l.check(c.pos, fmt.Sprintf("causal_mask of %v", x.Shape))
}

func lowerSplit(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	parts, err := wholeNumber(c.args[1], "the number of parts", 1)
	if err != nil {
		return nil, err
	}
	i, err := wholeNumber(c.args[2], "the part", 0)
	if err != nil {
		return nil, err
	}
	n := l.b.Op(ir.Split, ir.Attrs{Parts: parts, Index: i}, x)
	return n, l.check(c.pos, fmt.Sprintf("split of %v", x.Shape))
}
