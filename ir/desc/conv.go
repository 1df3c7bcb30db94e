package desc

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
)

// Convolution layers over NHWC inputs (batch, height, width, channels), with
// Keras' semantics for padding=valid and padding=same.

func init() {
	functions["conv2d"] = function{2, 6, []string{"kernel", "stride", "padding", "activation", "dilation", "init", "bias"},
		"conv2d(x, filters, kernel, stride=1, padding=valid, activation=linear, dilation=1, init=glorot_uniform, bias=true) with x of shape (N, height, width, channels)",
		lowerConv}
	functions["maxpool2d"] = poolFunction(ir.MaxPool2D)
	functions["avgpool2d"] = poolFunction(ir.AvgPool2D)
	functions["flatten"] = function{1, 1, nil, "flatten(x): (N, d1, d2, ...) → (N, d1·d2·...)", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
		x, err := l.tensorArg(c, 0)
		if err != nil {
			return nil, err
		}
		if len(x.Shape) < 1 || !x.Shape[0].Batch {
			return nil, errorf(c.pos, "flatten needs a batched input (N, ...), got %v", x.Shape)
		}
		return l.b.Reshape(x, ir.Shape{x.Shape[0], {Size: x.Shape.Elems() / x.Shape[0].Size}}), nil
	}}
	functions["global_avg_pool"] = function{1, 1, nil, "global_avg_pool(x): (N, H, W, C) → (N, C), the mean over height and width", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
		x, err := l.tensorArg(c, 0)
		if err != nil {
			return nil, err
		}
		if len(x.Shape) != 4 {
			return nil, errorf(c.pos, "global_avg_pool needs an (N, height, width, channels) input, got %v", x.Shape)
		}
		return l.b.Op(ir.Mean, ir.Attrs{Axes: []int{1, 2}}, x), nil
	}}
}

// args collects positional and keyword arguments by name.
func args(c *callExpr, positional []string) (map[string]expr, *Error) {
	out := map[string]expr{}
	for i, a := range c.args {
		out[positional[i]] = a
	}
	for _, kw := range c.kw {
		if _, dup := out[kw.name]; dup {
			return nil, errorf(kw.pos, "%s given twice", kw.name)
		}
		out[kw.name] = kw.val
	}
	return out, nil
}

// pair reads an int or a [a, b] list, each ≥ lo; def when absent.
func pair(e expr, what string, lo int, def [2]int) ([2]int, *Error) {
	if e == nil {
		return def, nil
	}
	if list, ok := e.(*listLit); ok {
		if len(list.elems) != 2 {
			return def, errorf(e.at(), "%s takes one number or [height, width]", what)
		}
		a, err := wholeNumber(list.elems[0], what, lo)
		if err != nil {
			return def, err
		}
		b, err := wholeNumber(list.elems[1], what, lo)
		return [2]int{a, b}, err
	}
	v, err := wholeNumber(e, what, lo)
	return [2]int{v, v}, err
}

// window builds the geometry for an input of shape x, with Keras padding:
// valid pads nothing; same pads so that out = ceil(in/stride), the extra
// cell going to the bottom/right.
func window(x ir.Shape, k, s, d [2]int, pad expr) (*ir.Window, *Error) {
	w := &ir.Window{KH: k[0], KW: k[1], SH: s[0], SW: s[1], DH: d[0], DW: d[1]}
	mode := "valid"
	if pad != nil {
		r, ok := pad.(*nameRef)
		if !ok || (r.name != "valid" && r.name != "same") {
			return nil, errorf(pad.at(), "padding must be valid or same, found %s", describe(pad))
		}
		mode = r.name
	}
	if mode == "same" && len(x) == 4 {
		padFor := func(in, k, s, d int) (int, int) {
			out := (in + s - 1) / s
			total := max((out-1)*s+(k-1)*d+1-in, 0)
			return total / 2, total - total/2
		}
		w.PadT, w.PadB = padFor(x[1].Size, k[0], s[0], d[0])
		w.PadL, w.PadR = padFor(x[2].Size, k[1], s[1], d[1])
	}
	return w, nil
}

func lowerConv(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	a, err := args(c, []string{"x", "filters", "kernel", "stride", "padding", "activation"})
	if err != nil {
		return nil, err
	}
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) != 4 || !x.Shape[0].Batch {
		return nil, errorf(c.args[0].at(), "conv2d needs an (N, height, width, channels) input, got %v; declare images as input x: [height, width, channels]", x.Shape)
	}
	filters, err := wholeNumber(a["filters"], "the number of filters", 1)
	if err != nil {
		return nil, err
	}
	if a["kernel"] == nil {
		return nil, errorf(c.pos, "conv2d needs a kernel size: conv2d(x, %d, 3) or kernel=[3, 3]", filters)
	}
	k, err := pair(a["kernel"], "the kernel size", 1, [2]int{})
	if err != nil {
		return nil, err
	}
	s, err := pair(a["stride"], "the stride", 1, [2]int{1, 1})
	if err != nil {
		return nil, err
	}
	d, err := pair(a["dilation"], "the dilation", 1, [2]int{1, 1})
	if err != nil {
		return nil, err
	}
	win, err := window(x.Shape, k, s, d, a["padding"])
	if err != nil {
		return nil, err
	}
	init, err := initArg(a["init"])
	if err != nil {
		return nil, err
	}
	bias, err := boolDefault(a["bias"], "bias", true)
	if err != nil {
		return nil, err
	}
	act, err := activationArg(a["activation"])
	if err != nil {
		return nil, err
	}
	w := l.layerParam("W", ir.Fixed(k[0], k[1], x.Shape[3].Size, filters), init)
	z := l.b.Op(ir.Conv2D, ir.Attrs{Window: win}, x, w)
	if err := l.check(c.pos, fmt.Sprintf("conv2d of input %v with kernel %v", x.Shape, w.Shape)); err != nil {
		return nil, err
	}
	z.Name = l.stmt + ".conv"
	return l.biasAndActivation(z, filters, bias, act), nil
}

func poolFunction(op *ir.OpDef) function {
	return function{1, 4, []string{"pool", "stride", "padding"},
		op.Name + "(x, pool=2, stride=pool, padding=valid) with x of shape (N, height, width, channels)",
		func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			a, err := args(c, []string{"x", "pool", "stride", "padding"})
			if err != nil {
				return nil, err
			}
			x, err := l.tensorArg(c, 0)
			if err != nil {
				return nil, err
			}
			if len(x.Shape) != 4 || !x.Shape[0].Batch {
				return nil, errorf(c.args[0].at(), "%s needs an (N, height, width, channels) input, got %v", op.Name, x.Shape)
			}
			p, err := pair(a["pool"], "the pool size", 1, [2]int{2, 2})
			if err != nil {
				return nil, err
			}
			s, err := pair(a["stride"], "the stride", 1, p)
			if err != nil {
				return nil, err
			}
			win, err := window(x.Shape, p, s, [2]int{1, 1}, a["padding"])
			if err != nil {
				return nil, err
			}
			n := l.b.Op(op, ir.Attrs{Window: win}, x)
			return n, l.check(c.pos, fmt.Sprintf("%s %dx%d over input %v", op.Name, p[0], p[1], x.Shape))
		}}
}
