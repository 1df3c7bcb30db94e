package desc

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Recurrent layers over sequences (N, steps, features), with PyTorch's gate
// math and order (LSTM: i, f, g, o; GRU: r, z, n) and its two biases.

func init() {
	for _, cell := range spec.Cells() {
		initial := "initial=h0"
		if cell.CellState() {
			initial = "initial=[h0, c0]"
		}
		functions[cell.String()] = function{2, 3, []string{"return_sequences", "initial", "init", "recurrent_init"},
			fmt.Sprintf("%s(x, units, return_sequences=false, %s, init=glorot_uniform, recurrent_init=glorot_uniform) with x of shape (N, steps, features)", cell, initial),
			func(l *lowerer, c *callExpr) (*ir.Node, *Error) { return lowerRNN(l, c, cell) }}
	}
}

func lowerRNN(l *lowerer, c *callExpr, cell spec.RNNCell) (*ir.Node, *Error) {
	a, err := args(c, []string{"x", "units", "return_sequences"})
	if err != nil {
		return nil, err
	}
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) != 3 || !x.Shape[0].Batch {
		return nil, errorf(c.args[0].at(), "%s needs a sequence (N, steps, features), got %v; declare it as input x: [steps, features]", cell, x.Shape)
	}
	units, err := wholeNumber(a["units"], "the number of units", 1)
	if err != nil {
		return nil, err
	}
	seq := false
	if e := a["return_sequences"]; e != nil {
		if seq, err = boolArg(e, "return_sequences"); err != nil {
			return nil, err
		}
	}
	wInit, err := initArg(a["init"])
	if err != nil {
		return nil, err
	}
	uInit, err := initArg(a["recurrent_init"])
	if err != nil {
		return nil, err
	}
	gates := cell.Gates()
	state := ir.Shape{x.Shape[0], {Size: units}}
	var initial []*ir.Node
	if e := a["initial"]; e != nil {
		elems := []expr{e}
		if list, ok := e.(*listLit); ok {
			elems = list.elems
		}
		want := 1
		if cell.CellState() {
			want = 2
		}
		if len(elems) != want {
			return nil, errorf(e.at(), "%s takes %d initial state(s): initial=%s", cell, want, map[bool]string{true: "[h0, c0]", false: "h0"}[want == 2])
		}
		for _, s := range elems {
			n, err := l.lower(s)
			if err != nil {
				return nil, err
			}
			if n.Name == "" || n.DType != ir.Float {
				return nil, errorf(s.at(), "initial state %s must name a float tensor of shape %v, such as an input declared as input h0: [%d]", describe(s), state, units)
			}
			if !n.Shape.Equal(state) {
				return nil, errorf(s.at(), "initial state %s has shape %v, want %v (declare it as input %s: [%d])", n.Name, n.Shape, state, n.Name, units)
			}
			initial = append(initial, n)
		}
	}
	b := l.b
	name := l.stmt
	d := x.Shape[2].Size
	w := l.layerParam("W", ir.Fixed(d, gates*units), wInit)
	u := l.layerParam("U", ir.Fixed(units, gates*units), uInit)
	bi := l.layerParam("b", ir.Fixed(gates*units), spec.Zeros)
	bh := l.layerParam("bh", ir.Fixed(gates*units), spec.Zeros)
	r := &ir.Recurrent{Cell: cell, HasH0: len(initial) > 0, HasC0: len(initial) > 1}
	hs := b.Op(ir.RNN, ir.Attrs{RNN: r}, append([]*ir.Node{x, w, u, bi, bh}, initial...)...)
	if err := l.check(c.pos, cell.String()); err != nil {
		return nil, err
	}
	if seq {
		return hs, nil
	}
	hs.Name = name + ".seq"
	return b.Op(ir.TimeLast, ir.Attrs{}, hs), nil
}
