package desc

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

// function is one built-in of the description language: primitives map to
// one op, layers and losses lower to several.
type function struct {
	minArgs, maxArgs int
	keywords         []string
	usage            string
	lower            func(l *lowerer, c *callExpr) (*ir.Node, *Error)
}

var functions = map[string]function{}

func functionNames() []string {
	names := make([]string, 0, len(functions))
	for k := range functions {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// activations maps an activation name to the op it applies (nil = none).
var activations = map[string]*ir.OpDef{
	"linear": nil, "none": nil, "relu": ir.Relu, "sigmoid": ir.Sigmoid, "tanh": ir.Tanh, "gelu": ir.Gelu, "gelu_erf": ir.GeluErf,
	"softmax": ir.Softmax, "log_softmax": ir.LogSoftmax,
}

func init() {
	unary := func(op *ir.OpDef) function {
		return function{1, 1, nil, op.Name + "(x)", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			x, err := l.tensorArg(c, 0)
			if err != nil {
				return nil, err
			}
			return l.b.Op(op, ir.Attrs{}, x), nil
		}}
	}
	for name, f := range map[string]function{
		"relu": unary(ir.Relu), "sigmoid": unary(ir.Sigmoid), "tanh": unary(ir.Tanh),
		"gelu": unary(ir.Gelu), "gelu_erf": unary(ir.GeluErf),
		"exp": unary(ir.Exp), "log": unary(ir.Log), "sqrt": unary(ir.Sqrt),
		"softmax": unary(ir.Softmax), "log_softmax": unary(ir.LogSoftmax),
		"transpose": {1, 1, nil, "transpose(x): a matrix transposed, or each matrix of a stack (the last two axes swapped)", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			x, err := l.tensorArg(c, 0)
			if err != nil {
				return nil, err
			}
			n := l.b.SwapLast(x)
			return n, l.check(c.pos, fmt.Sprintf("transpose of %v", x.Shape))
		}},
		"matmul": {2, 2, nil, "matmul(a, b), the same as a @ b", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			a, b, err := l.twoTensors(c)
			if err != nil {
				return nil, err
			}
			n := l.b.Product(a, b)
			return n, l.check(c.pos, fmt.Sprintf("shape mismatch in matmul(%v, %v)", a.Shape, b.Shape))
		}},
		"sum":  reduction(ir.Sum),
		"mean": reduction(ir.Mean),
		"reshape": {2, 2, nil, "reshape(x, [batch, 28, 28]); `batch` stands for the batch dimension", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			x, err := l.tensorArg(c, 0)
			if err != nil {
				return nil, err
			}
			list, ok := c.args[1].(*listLit)
			if !ok {
				return nil, errorf(c.args[1].at(), "reshape's second argument is the new shape as a list, e.g. [batch, 784]")
			}
			var to ir.Shape
			for _, e := range list.elems {
				if r, ok := e.(*nameRef); ok && r.name == "batch" {
					to = append(to, ir.Dim{Size: l.g.Batch, Batch: true})
					continue
				}
				v, err := wholeNumber(e, "a dimension", 1)
				if err != nil {
					return nil, err
				}
				to = append(to, ir.Dim{Size: v})
			}
			n := l.b.Reshape(x, to)
			return n, l.check(c.pos, fmt.Sprintf("reshape %v to %v", x.Shape, to))
		}},
		"dense": {2, 3, []string{"activation", "init", "bias"},
			"dense(x, units, activation, init=glorot_uniform, bias=true) with x of shape (N, in) or (N, steps, in)", lowerDense},
		"softmax_cross_entropy": {2, 2, nil, "softmax_cross_entropy(logits, labels) with logits (N, C) and labels declared as class(C)",
			func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
				logits, err := l.tensorArg(c, 0)
				if err != nil {
					return nil, err
				}
				labels, err := l.lower(c.args[1])
				if err != nil {
					return nil, err
				}
				if labels.DType != ir.Int {
					return nil, errorf(c.args[1].at(), "softmax_cross_entropy's second argument must be class labels (declare `label y: class(C)`), got a float tensor of shape %v", labels.Shape)
				}
				l.lossPred = logits
				n := l.b.Op(ir.SoftmaxCrossEntropy, ir.Attrs{}, logits, labels)
				return n, l.check(c.pos, fmt.Sprintf("softmax_cross_entropy(%v, %v)", logits.Shape, labels.Shape))
			}},
		"mse": {2, 2, nil, "mse(prediction, target): mean of squared differences", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			p, t, err := l.sameShape(c)
			if err != nil {
				return nil, err
			}
			l.lossPred = p
			d := l.b.Sub(p, t)
			return l.b.Op(ir.Mean, ir.Attrs{}, l.b.Mul(d, d)), nil
		}},
		"bce": {2, 2, nil, "bce(probability, target): binary cross-entropy of probabilities in (0, 1), e.g. from sigmoid", func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			p, t, err := l.sameShape(c)
			if err != nil {
				return nil, err
			}
			l.lossPred = p
			b := l.b
			one := b.Const(1)
			// -mean(t·log p + (1-t)·log(1-p))
			ll := b.Add(b.Mul(t, b.Op(ir.Log, ir.Attrs{}, p)), b.Mul(b.Sub(one, t), b.Op(ir.Log, ir.Attrs{}, b.Sub(one, p))))
			return b.Neg(b.Op(ir.Mean, ir.Attrs{}, ll)), nil
		}},
	} {
		functions[name] = f
	}
}

func reduction(op *ir.OpDef) function {
	return function{1, 2, []string{"axis", "keepdims"}, op.Name + "(x, axis=[0, 1], keepdims=false); without axis it reduces every axis",
		func(l *lowerer, c *callExpr) (*ir.Node, *Error) {
			x, err := l.tensorArg(c, 0)
			if err != nil {
				return nil, err
			}
			attrs := ir.Attrs{}
			var axisExpr expr
			if len(c.args) == 2 {
				axisExpr = c.args[1]
			}
			for _, kw := range c.kw {
				switch kw.name {
				case "axis":
					if axisExpr != nil {
						return nil, errorf(kw.pos, "axis given twice")
					}
					axisExpr = kw.val
				case "keepdims":
					v, err := boolArg(kw.val, "keepdims")
					if err != nil {
						return nil, err
					}
					attrs.KeepDims = v
				}
			}
			if axisExpr != nil {
				elems := []expr{axisExpr}
				if list, ok := axisExpr.(*listLit); ok {
					elems = list.elems
				}
				attrs.Axes = []int{}
				for _, e := range elems {
					v, err := wholeNumber(e, "an axis", -4)
					if err != nil {
						return nil, err
					}
					attrs.Axes = append(attrs.Axes, v)
				}
			}
			n := l.b.Op(op, attrs, x)
			return n, l.check(c.pos, fmt.Sprintf("%s over %v", op.Name, x.Shape))
		}}
}

func lowerDense(l *lowerer, c *callExpr) (*ir.Node, *Error) {
	a, err := args(c, []string{"x", "units", "activation"})
	if err != nil {
		return nil, err
	}
	x, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) < 2 || len(x.Shape) > 3 || !x.Shape[0].Batch {
		if len(x.Shape) == 4 && x.Shape[0].Batch {
			return nil, errorf(c.args[0].at(), "dense needs (N, features) or a sequence (N, steps, features), got shape %v; flatten it first with flatten(x)", x.Shape)
		}
		return nil, errorf(c.args[0].at(), "dense needs (N, features) or a sequence (N, steps, features), got shape %v", x.Shape)
	}
	units, err := wholeNumber(a["units"], "the number of units", 1)
	if err != nil {
		return nil, err
	}
	init, err := initArg(a["init"])
	if err != nil {
		return nil, err
	}
	act, err := activationArg(a["activation"])
	if err != nil {
		return nil, err
	}
	bias, err := boolDefault(a["bias"], "bias", true)
	if err != nil {
		return nil, err
	}
	in := x.Shape[len(x.Shape)-1]
	if in.Batch {
		return nil, errorf(c.args[0].at(), "dense's input features cannot be the batch dimension (shape %v)", x.Shape)
	}
	w := l.layerParam("W", ir.Fixed(in.Size, units), init)
	z := l.b.MatMul(x, w, false, false)
	z.Name = l.stmt + ".xW"
	return l.biasAndActivation(z, units, bias, act), nil
}

// layerParam declares the parameter NAME.suffix that the layer on the line
// assigning NAME creates, so later lines can refer to it.
func (l *lowerer) layerParam(suffix string, shape ir.Shape, init spec.Init) *ir.Node {
	l.layerName(suffix)
	p := l.b.Leaf(ir.Param, l.stmt+"."+suffix, shape, ir.Attrs{Init: init})
	l.g.Params = append(l.g.Params, p)
	l.names[p.Name], l.defined[p.Name] = p, l.stmtPos
	return p
}

// layerName reports (through the builder) a second layer on one line: both
// would create NAME.suffix.
func (l *lowerer) layerName(suffix string) {
	if at, dup := l.defined[l.stmt+"."+suffix]; dup {
		l.b.Fail("%s.%s is already defined at line %d: a line holds one layer; give each its own line (a = dense(x, 3), then b = dense(a, 3))", l.stmt, suffix, at.Line)
	}
}

// biasAndActivation is the tail of dense and conv2d: z + NAME.b (zeros,
// one per unit), then the activation.
func (l *lowerer) biasAndActivation(z *ir.Node, units int, bias bool, act *ir.OpDef) *ir.Node {
	if bias {
		z = l.b.Add(z, l.layerParam("b", ir.Fixed(units), spec.Zeros))
		z.Name = l.stmt + ".z"
	}
	if act != nil {
		z = l.b.Op(act, ir.Attrs{}, z)
	}
	return z
}

func (l *lowerer) tensorArg(c *callExpr, i int) (*ir.Node, *Error) {
	n, err := l.lower(c.args[i])
	if err != nil {
		return nil, err
	}
	if n.DType == ir.Int {
		what := "class labels"
		if n.Attrs.Tokens {
			what = "token ids (look them up with embedding first)"
		}
		return nil, errorf(c.args[i].at(), "%s needs a float tensor, but %s is %s", c.fn, n.Name, what)
	}
	return n, nil
}

func (l *lowerer) twoTensors(c *callExpr) (*ir.Node, *ir.Node, *Error) {
	a, err := l.tensorArg(c, 0)
	if err != nil {
		return nil, nil, err
	}
	b, err := l.tensorArg(c, 1)
	return a, b, err
}

func (l *lowerer) sameShape(c *callExpr) (*ir.Node, *ir.Node, *Error) {
	p, t, err := l.twoTensors(c)
	if err != nil {
		return nil, nil, err
	}
	if !p.Shape.Equal(t.Shape) {
		return nil, nil, errorf(c.pos, "shape mismatch in %s: prediction %v, target %v; they must be equal", c.fn, p.Shape, t.Shape)
	}
	return p, t, nil
}

// MaxDim bounds every size a description gives (dimensions, units,
// filters, kernels): far above any real layer, and small enough that
// products of a few of them are still checked exactly against ir.MaxElems.
const MaxDim = 1 << 30

func wholeNumber(e expr, what string, lo int) (int, *Error) {
	n, ok := e.(*numLit)
	switch {
	case !ok:
		return 0, errorf(e.at(), "%s must be a whole number, found %s", what, describe(e))
	case n.val != math.Trunc(n.val):
		return 0, errorf(e.at(), "%s must be a whole number, found %s", what, n.txt)
	case n.val < float64(lo):
		return 0, errorf(e.at(), "%s must be at least %d, found %s", what, lo, n.txt)
	case n.val > MaxDim:
		return 0, errorf(e.at(), "%s is %s, more than the limit of %d (2^30)", what, n.txt, MaxDim)
	}
	return int(n.val), nil
}

// describe names an expression in an error message.
func describe(e expr) string {
	switch e := e.(type) {
	case *numLit:
		return e.txt
	case *nameRef:
		return e.name
	case *listLit:
		return "a list"
	case *callExpr:
		return "a call of " + e.fn
	}
	return "an expression"
}

func boolArg(e expr, what string) (bool, *Error) {
	if r, ok := e.(*nameRef); ok && (r.name == "true" || r.name == "false") {
		return r.name == "true", nil
	}
	return false, errorf(e.at(), "%s must be true or false, found %s", what, describe(e))
}

// initArg reads an initializer name (glorot_uniform when absent).
func initArg(e expr) (spec.Init, *Error) {
	if e == nil {
		return spec.GlorotUniform, nil
	}
	r, ok := e.(*nameRef)
	if !ok {
		return 0, errorf(e.at(), "init takes an initializer name: %s", strings.Join(spec.InitNames(), ", "))
	}
	init, err := spec.ParseInit(r.name)
	if err != nil {
		return 0, errorf(r.pos, "%v", err)
	}
	return init, nil
}

// activationArg reads an activation name and returns its op (nil for none).
func activationArg(e expr) (*ir.OpDef, *Error) {
	if e == nil {
		return nil, nil
	}
	r, ok := e.(*nameRef)
	op, known := (*ir.OpDef)(nil), false
	if ok {
		op, known = activations[r.name]
	}
	if !known {
		names := make([]string, 0, len(activations))
		for k := range activations {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, errorf(e.at(), "unknown activation %s; use one of %s", describe(e), strings.Join(names, ", "))
	}
	return op, nil
}

// boolDefault reads true or false, or returns def when e is absent.
func boolDefault(e expr, what string, def bool) (bool, *Error) {
	if e == nil {
		return def, nil
	}
	return boolArg(e, what)
}
