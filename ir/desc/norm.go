package desc

import (
	"fmt"
	"math"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Normalization and dropout, with PyTorch's semantics: batch_norm per
// channel of the last axis (the channels of NHWC images, the units of a
// dense layer), layer_norm over the last axis, inverted dropout.

func init() {
	functions["batch_norm"] = function{1, 1, []string{"momentum", "eps"},
		"batch_norm(x, momentum=0.1, eps=1e-5) with x of shape (N, ..., channels): PyTorch's momentum (Keras' momentum 0.99 is 0.01 here)",
		lowerBatchNorm}
	functions["layer_norm"] = function{1, 1, []string{"eps"},
		"layer_norm(x, eps=1e-5) over the last axis of x (N, ..., features)", lowerLayerNorm}
	functions["dropout"] = function{2, 2, nil,
		"dropout(x, rate) with 0 ≤ rate < 1, the probability of dropping an element", lowerDropout}
}

// fraction reads a number in [lo, hi) (or [lo, hi] with closed), def when
// absent.
func fraction(e expr, what string, lo, hi float64, closed bool, def float64) (float64, *Error) {
	if e == nil {
		return def, nil
	}
	n, ok := e.(*numLit)
	if !ok {
		return 0, errorf(e.at(), "%s must be a number, found %s", what, describe(e))
	}
	if n.val < lo || n.val > hi || !closed && n.val == hi || math.IsNaN(n.val) {
		r := ")"
		if closed {
			r = "]"
		}
		return 0, errorf(e.at(), "%s must be in [%g, %g%s, found %s", what, lo, hi, r, n.txt)
	}
	return n.val, nil
}

// normInput reads x, which must be (N, ..., C) with C static.
func (l *lowerer) normInput(c *callExpr) (*ir.Node, *Error) {
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) < 2 || !x.Shape[0].Batch {
		return nil, errorf(c.args[0].at(), "%s needs a batched input (N, ..., channels), got %v", c.fn, x.Shape)
	}
	return x, nil
}

func lowerBatchNorm(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	a, err := args(c, []string{"x"})
	if err != nil {
		return nil, err
	}
	x, err := l.normInput(c)
	if err != nil {
		return nil, err
	}
	momentum, err := fraction(a["momentum"], "momentum (PyTorch's: the weight of the batch in the running statistics)", 0, 1, true, 0.1)
	if err != nil {
		return nil, err
	}
	eps, err := fraction(a["eps"], "eps", 0, 1, true, 1e-5)
	if err != nil {
		return nil, err
	}
	C := x.Shape[len(x.Shape)-1].Size
	gamma := l.layerParam("gamma", ir.Fixed(C), spec.Ones)
	beta := l.layerParam("beta", ir.Fixed(C), spec.Zeros)
	mean := l.layerState("running_mean", ir.Fixed(C), spec.Zeros)
	variance := l.layerState("running_var", ir.Fixed(C), spec.Ones)
	bn := l.b.Op(ir.BatchNorm, ir.Attrs{Eps: eps, Momentum: momentum}, x, gamma, beta, mean, variance)
	if err := l.check(c.pos, fmt.Sprintf("batch_norm over %v", x.Shape)); err != nil {
		return nil, err
	}
	stats := l.b.Op(ir.BatchNormStats, ir.Attrs{Momentum: momentum}, bn, mean, variance)
	stats.Name = l.stmt + ".stats"
	return bn, nil
}

func lowerLayerNorm(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	a, err := args(c, []string{"x"})
	if err != nil {
		return nil, err
	}
	x, err := l.normInput(c)
	if err != nil {
		return nil, err
	}
	eps, err := fraction(a["eps"], "eps", 0, 1, true, 1e-5)
	if err != nil {
		return nil, err
	}
	C := x.Shape[len(x.Shape)-1].Size
	gamma := l.layerParam("gamma", ir.Fixed(C), spec.Ones)
	beta := l.layerParam("beta", ir.Fixed(C), spec.Zeros)
	n := l.b.Op(ir.LayerNorm, ir.Attrs{Eps: eps}, x, gamma, beta)
	return n, l.check(c.pos, fmt.Sprintf("layer_norm over %v", x.Shape))
}

func lowerDropout(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	rate, err := fraction(c.args[1], "the dropout rate", 0, 1, false, 0)
	if err != nil {
		return nil, err
	}
	n := l.b.Op(ir.Dropout, ir.Attrs{Rate: rate, Key: l.dropouts}, x)
	l.dropouts++
	return n, nil
}

// layerState declares the state tensor NAME.suffix of the layer on the line
// assigning NAME: updated by the layer's effects, never trained.
func (l *lowerer) layerState(suffix string, shape ir.Shape, init spec.Init) *ir.Node {
	l.layerName(suffix)
	s := l.b.Leaf(ir.State, l.stmt+"."+suffix, shape, ir.Attrs{Init: init})
	l.g.States = append(l.g.States, s)
	l.names[s.Name], l.defined[s.Name] = s, l.stmtPos
	return s
}
