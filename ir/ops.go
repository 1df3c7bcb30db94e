package ir

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// OpDef is everything the compiler knows about one op, in one place: its
// arity, its shape rule, its simplifications and its adjoint (vector-Jacobian
// product) rule, and the properties the passes ask about. Every op is one
// exported *OpDef (MatMul, Relu, ...), as JAX has one primitive object per
// op: the compiler knows an op by its identity (n.Op == MatMul), never by
// its name, which is for people (the text form, errors). The emitter keeps
// a matching table of kernels, keyed by the same pointers.
type OpDef struct {
	Name  string
	Arity int // number of arguments; leaves have 0
	Leaf  bool

	// Shape returns the result shape of n from n.Args and n.Attrs.
	Shape func(n *Node) (Shape, error)

	// Simplify may return an equivalent existing or new node instead of n
	// (which is not yet in any graph), or nil to keep n.
	Simplify func(b *Builder, n *Node) *Node

	// Grad returns, for each argument of n, its gradient contribution
	// given dy (the gradient of the loss with respect to n), or nil for an
	// argument that gets none. It builds with b; derive stamps positions.
	Grad func(b *Builder, n, dy *Node) []*Node

	// NoGrad explains why an op has no adjoint rule. Every op has exactly
	// one of Grad and NoGrad (TestEveryOpHasAdjoint).
	NoGrad string

	// Alias marks ops whose result shares storage with Args[0] (views).
	Alias bool

	// Scratch, when set, is the number of work elements the op's kernel
	// needs while it runs (im2col buffers); the memory plan provides them.
	// ScratchName is the buffer's Go field suffix and ScratchDoc what its
	// comment calls it (default "Work" and "work buffer").
	Scratch     func(n *Node) int
	ScratchName string
	ScratchDoc  string

	// Aux, when set, is the number of int32 elements the op records in the
	// forward pass for its gradient to read (max pooling's argmax).
	Aux func(n *Node) int

	// Saved, when set, is the number of float elements the op records in
	// the forward pass for its gradient (a recurrent layer's gates).
	Saved func(n *Node) int

	// Accumulates marks ops whose kernel can add into its output, so an
	// acc_grad of the result folds into it (dW += xᵀ·dz is one GEMM).
	Accumulates bool

	// FusesBias marks the elementwise activations whose adjoint reads only
	// their output (relu, sigmoid, tanh): derive folds a bias add before
	// them into one bias_act (or a product's epilogue), since the sum is
	// not needed by the backward pass.
	FusesBias bool

	// FusesBiasGrad marks the gradients of those activations (dy ⊙ act'(y),
	// one elementwise pass) and of GELU (dy ⊙ gelu'(x)): the memory plan
	// lets their kernel also take the column sums that make a bias
	// gradient.
	FusesBiasGrad bool

	// CommutesWithMax marks the activations that are non-decreasing in
	// floating point too (relu), so that max(act(x)) == act(max(x)) bit for
	// bit: derive moves them after a max pool, onto 1/(window) of the
	// elements (see derive's commutePools).
	CommutesWithMax bool

	// AccumulatesSlice, for an op whose result is handed out in slice
	// views (rnn_grad), reports whether its kernel adds into the part that
	// slice s of node n covers instead of overwriting it, so an acc_grad
	// of that view folds into it.
	AccumulatesSlice func(n, s *Node) bool

	// Flops, when set, is the op's floating-point operations at the
	// maximum batch (2 per multiply-add), for cost estimates such as the
	// generated gradient check's budget; without it an op counts one per
	// element of its result.
	Flops func(n *Node) int

	// ScalarOperands marks ops whose kernel takes a scalar constant
	// argument inline, so the constant needs no buffer.
	ScalarOperands bool

	// Bound, when set, bounds every element of n's result in exact
	// arithmetic: its magnitude is at most coef times the product of the
	// largest magnitudes of the arguments listed in args, and it is a sum
	// of at most terms rounded products (for the rounding margin). Measured
	// right after the kernel that writes a parameter's gradient, such a
	// bound proves the gradient finite without reading it (derive's
	// GradCheck, TrainStep's check before the optimizer).
	Bound func(n *Node) (coef float64, args []int, terms int)

	// FileAxes, when set, gives for the parameter read as argument arg the
	// axis order checkpoints store it in (file axis i is tensor axis
	// FileAxes(arg)[i]), or nil: conv kernels are (KH, KW, C, F) in memory
	// and PyTorch's (F, C, KH, KW) in files. Every op that reads a kernel
	// says so, fused ones included, so no layer is saved transposed.
	FileAxes func(arg int) []int

	// Unary, on an element-wise op and on the gradient of one, is the
	// runtime's operator that computes it (Unary, UnaryGrad, BiasAct and
	// the fused kernels take it).
	Unary *spec.UnaryOp

	// Fold, on an element-wise unary op, computes it on one number, so
	// that the op of a scalar constant (sqrt(64) in a description) folds
	// to a constant.
	Fold func(v float64) float64

	// Binary, on an element-wise binary op, is the runtime's operator.
	Binary *spec.BinaryOp

	// Formula, when set, writes n as math for the comments of generated
	// code, from its arguments as arg(i) writes them; without it, n is
	// written as name(args).
	Formula func(n *Node, arg func(i int) string) string

	// Window, on an op over a convolution or pooling window (and its
	// gradients), returns the forward input and output shapes, which with
	// the window make the runtime's geometry.
	Window func(n *Node) (x, y Shape)

	// BiasAct, on an op whose result a bias add and an activation can
	// follow in its kernel's epilogue, returns the fused op for n (matmul:
	// MatMulBiasAct for a plain product), or nil; derive fuses
	// act(n + b) into it.
	BiasAct func(n *Node) *OpDef

	// Infer, on an op whose forward pass differs between the modes, builds
	// what computes n's value in inference mode (Infer and Predict), from
	// n's arguments: batch norm's running statistics instead of the
	// batch's, the identity instead of a dropout mask. nil means n does not
	// run in inference mode at all (an update of state). Ops without Infer
	// run the same in both modes.
	Infer func(b *Builder, n *Node) *Node

	// Effect marks ops that update state (a leaf made with State) rather
	// than make a result: dead-code elimination keeps them, and they need
	// no storage.
	Effect bool

	// Random marks ops that draw random numbers keyed by the model's seed
	// and training-step count (dropout's masks): a model with one keeps
	// both and saves them in checkpoints.
	Random bool

	// ScalesColumns marks products linear in their weight (argument 1)
	// whose result's last axis is the weight's last axis, so that scaling
	// column c of the weight scales channel c of the result: an
	// inference-mode batch norm after such a product folds into its
	// weight and bias (derive's foldBatchNorms). On a fused product
	// (weight, then bias as argument 2) it holds when its activation is
	// the identity.
	ScalesColumns bool

	// MinCount, when set, is a count per row of the batch that the op
	// needs at least 2 of in training mode (batch norm: the values of a
	// channel, H·W per image); Forward refuses a batch with fewer.
	MinCount func(n *Node) int

	// Step says how the op runs one position of a sequence at a time (a
	// generated Decoder, derive's Decode); nil is StepNone.
	Step func(n *Node) StepKind
}

var opTable = map[string]*OpDef{}

// newOp declares an op by name; its definition follows in an init
// function, since definitions refer to each other (and to themselves),
// which package-level initializers cannot.
func newOp(name string) *OpDef {
	if _, dup := opTable[name]; dup {
		panic("ir: duplicate op " + name)
	}
	d := &OpDef{Name: name}
	opTable[name] = d
	return d
}

// define fills in the definition of d.
func define(d *OpDef, def *OpDef) {
	def.Name = d.Name
	*d = *def
}

// The ops. Leaves: derive treats params (and inputs, when asked) as
// gradient sinks; labels and constants carry no gradient.
var (
	Input = newOp("input")
	Param = newOp("param")
	State = newOp("state") // updated by effects, never trained
	Label = newOp("label")
	Const = newOp("const")

	// Element-wise.
	Relu, ReluGrad       = newOp("relu"), newOp("relu_grad")
	Sigmoid, SigmoidGrad = newOp("sigmoid"), newOp("sigmoid_grad")
	Tanh, TanhGrad       = newOp("tanh"), newOp("tanh_grad")
	Sqrt, SqrtGrad       = newOp("sqrt"), newOp("sqrt_grad")
	Gelu, GeluGrad       = newOp("gelu"), newOp("gelu_grad")
	GeluErf, GeluErfGrad = newOp("gelu_erf"), newOp("gelu_erf_grad")
	Identity             = newOp("identity")
	Exp                  = newOp("exp")
	Log                  = newOp("log")
	Neg                  = newOp("neg")
	Add                  = newOp("add")
	Sub                  = newOp("sub")
	Mul                  = newOp("mul")
	Div                  = newOp("div")

	// Products, views and reductions.
	MatMul      = newOp("matmul")
	Transpose   = newOp("transpose")
	Reshape     = newOp("reshape")
	Sum         = newOp("sum")
	Mean        = newOp("mean")
	BroadcastTo = newOp("broadcast_to")
	Slice       = newOp("slice")

	// Row-wise softmax family and the loss.
	Softmax, SoftmaxGrad                         = newOp("softmax"), newOp("softmax_grad")
	LogSoftmax, LogSoftmaxGrad                   = newOp("log_softmax"), newOp("log_softmax_grad")
	SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad = newOp("softmax_cross_entropy"), newOp("softmax_cross_entropy_grad")

	// Fused after derivation.
	BiasAct       = newOp("bias_act")
	MatMulBiasAct = newOp("matmul_bias_act")
	MatMulBiasAdd = newOp("matmul_bias_add")

	// The end of every backward chain.
	AccGrad = newOp("acc_grad")

	// Convolution and pooling (conv.go).
	Conv2D, Conv2DBiasAct             = newOp("conv2d"), newOp("conv2d_bias_act")
	Conv2DGradInput, Conv2DGradFilter = newOp("conv2d_grad_input"), newOp("conv2d_grad_filter")
	MaxPool2D, MaxPool2DGrad          = newOp("maxpool2d"), newOp("maxpool2d_grad")
	AvgPool2D, AvgPool2DGrad          = newOp("avgpool2d"), newOp("avgpool2d_grad")

	// Normalization and dropout (norm.go).
	BatchNorm, BatchNormGrad      = newOp("batch_norm"), newOp("batch_norm_grad")
	BatchNormStats                = newOp("batch_norm_stats")
	BatchNormInfer, BatchNormFold = newOp("batch_norm_infer"), newOp("batch_norm_fold")
	LayerNorm, LayerNormGrad      = newOp("layer_norm"), newOp("layer_norm_grad")
	Dropout, DropoutGrad          = newOp("dropout"), newOp("dropout_grad")

	// Recurrent layers (rnn.go).
	RNN, RNNGrad           = newOp("rnn"), newOp("rnn_grad")
	TimeLast, TimeLastGrad = newOp("time_last"), newOp("time_last_grad")
)

// Ops returns every op definition, sorted by name.
func Ops() []*OpDef {
	out := make([]*OpDef, 0, len(opTable))
	for _, d := range opTable {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the op named name, or nil: for tools and tests that read
// op names, never for the compiler's own decisions.
func Lookup(name string) *OpDef { return opTable[name] }

func unaryKernel(u spec.UnaryOp) *spec.UnaryOp    { return &u }
func binaryKernel(b spec.BinaryOp) *spec.BinaryOp { return &b }

const backwardOnly = "backward-only op: backpropgen derives first-order gradients"

func init() {
	// Leaves. derive treats params (and inputs, when asked) as gradient
	// sinks; labels and constants carry no gradient.
	leaf := func(n *Node) (Shape, error) { return n.Shape, nil }
	define(Input, &OpDef{Leaf: true, Shape: leaf, NoGrad: "leaf: its gradient is a sink, not a rule"})
	define(Param, &OpDef{Leaf: true, Shape: leaf, NoGrad: "leaf: its gradient is a sink, not a rule"})
	define(State, &OpDef{Leaf: true, Shape: leaf, NoGrad: "state is updated, not trained"})
	define(Label, &OpDef{Leaf: true, Shape: leaf, NoGrad: "integer class labels are not differentiable"})
	define(Const, &OpDef{Formula: func(n *Node, arg func(int) string) string { return fmt.Sprint(n.Attrs.Value) }, Shape: func(n *Node) (Shape, error) {
		if n.Attrs.To == nil {
			return Scalar, nil
		}
		return n.Attrs.To, nil
	}, NoGrad: "constants carry no gradient"})

	// Elementwise unary ops. The rules that use the output y let the
	// input's buffer die after the forward pass.
	unary := func(d *OpDef, u spec.UnaryOp, grad func(b *Builder, n, dy *Node) []*Node) *OpDef {
		define(d, &OpDef{Arity: 1, Shape: sameAsArg, Grad: grad, Simplify: foldUnary, Unary: unaryKernel(u), Step: stepRows})
		return d
	}
	// Activations whose adjoint reads only their output, and whose
	// gradient op (name_grad) is one elementwise pass.
	activation := func(d, dgrad *OpDef, u spec.UnaryOp, grad func(b *Builder, n, dy *Node) []*Node) *OpDef {
		define(d, &OpDef{Arity: 1, Shape: sameAsArg, Grad: grad, Simplify: foldUnary, FusesBias: true, Unary: unaryKernel(u), Step: stepRows})
		define(dgrad, &OpDef{Arity: 2, Shape: sameShapes, NoGrad: backwardOnly, FusesBiasGrad: true, Unary: unaryKernel(u)})
		return d
	}
	activation(Relu, ReluGrad, spec.Relu, func(b *Builder, n, dy *Node) []*Node {
		b.Note("d%s = %s ⊙ [%s > 0]", n.Args[0].Label(), dy.Label(), n.Label())
		return []*Node{b.Op(ReluGrad, Attrs{}, n, dy)}
	}).CommutesWithMax = true
	activation(Sigmoid, SigmoidGrad, spec.Sigmoid, func(b *Builder, n, dy *Node) []*Node {
		b.Note("d%s = %s ⊙ %s(1 - %s)", n.Args[0].Label(), dy.Label(), n.Label(), n.Label())
		return []*Node{b.Op(SigmoidGrad, Attrs{}, n, dy)}
	})
	activation(Tanh, TanhGrad, spec.Tanh, func(b *Builder, n, dy *Node) []*Node {
		b.Note("d%s = %s ⊙ (1 - %s²)", n.Args[0].Label(), dy.Label(), n.Label())
		return []*Node{b.Op(TanhGrad, Attrs{}, n, dy)}
	})
	unary(Sqrt, spec.Sqrt, func(b *Builder, n, dy *Node) []*Node {
		b.Note("d%s = %s ⊙ 1/(2·%s)", n.Args[0].Label(), dy.Label(), n.Label())
		return []*Node{b.Op(SqrtGrad, Attrs{}, n, dy)}
	})
	unary(Exp, spec.Exp, func(b *Builder, n, dy *Node) []*Node {
		b.Note("d%s = %s ⊙ %s", n.Args[0].Label(), dy.Label(), n.Label())
		return []*Node{b.Mul(dy, n)}
	})
	unary(Log, spec.Log, func(b *Builder, n, dy *Node) []*Node {
		b.Note("d%s = %s / %s", n.Args[0].Label(), dy.Label(), n.Args[0].Label())
		return []*Node{b.Div(dy, n.Args[0])}
	})
	unary(Neg, spec.Neg, func(b *Builder, n, dy *Node) []*Node {
		b.Note("d%s = -%s", n.Args[0].Label(), dy.Label())
		return []*Node{b.Neg(dy)}
	}).Bound = func(n *Node) (float64, []int, int) { return 1, []int{0}, 1 }
	Neg.Fold = func(v float64) float64 { return -v }
	Sqrt.Fold, Exp.Fold, Log.Fold = math.Sqrt, math.Exp, math.Log
	// identity copies its argument: the inference form of dropout, and the
	// epilogue of a product that has a bias but no activation.
	define(Identity, &OpDef{Arity: 1, Shape: sameAsArg, Unary: unaryKernel(spec.Linear), NoGrad: "made in inference mode only", Step: stepRows})
	define(SqrtGrad, &OpDef{Arity: 2, Shape: sameShapes, NoGrad: backwardOnly, Unary: unaryKernel(spec.Sqrt)})
	// GELU (GPT-2's tanh approximation, and the exact x·Φ(x)): the
	// derivative is not a function of the output, so the gradient op reads
	// the input (which then lives until the backward pass).
	gelu := func(d, dgrad *OpDef, u spec.UnaryOp, form string) {
		unary(d, u, func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s ⊙ %s'(%s)  (%s)", n.Args[0].Label(), dy.Label(), d.Name, n.Args[0].Label(), form)
			return []*Node{b.Op(dgrad, Attrs{}, n.Args[0], dy)}
		})
		// One elementwise pass like the activations' gradients, so it
		// takes the bias gradient's column sums on the way too.
		define(dgrad, &OpDef{Arity: 2, Shape: sameShapes, NoGrad: backwardOnly, FusesBiasGrad: true, Unary: unaryKernel(u)})
	}
	gelu(Gelu, GeluGrad, spec.Gelu, "tanh approximation")
	gelu(GeluErf, GeluErfGrad, spec.GeluErf, "x·Φ(x)")
	for _, d := range []*OpDef{SoftmaxGrad, LogSoftmaxGrad} {
		define(d, &OpDef{Arity: 2, Shape: sameShapes, NoGrad: backwardOnly})
	}

	// Elementwise binary ops with numpy broadcasting; the adjoint of the
	// broadcast is a sum back to the operand's shape.
	binary := func(d *OpDef, k spec.BinaryOp, sym string, grad func(b *Builder, n, dy *Node) []*Node) *OpDef {
		define(d, &OpDef{Arity: 2, Shape: broadcastArgs, Grad: grad, Simplify: simplifyBinary, ScalarOperands: true, Binary: binaryKernel(k), Step: stepBroadcast,
			Formula: func(n *Node, arg func(int) string) string { return arg(0) + " " + sym + " " + arg(1) }})
		return d
	}
	binary(Add, spec.Add, "+", func(b *Builder, n, dy *Node) []*Node {
		x, y := n.Args[0], n.Args[1]
		b.Note("d%s = %s", x.Label(), dy.Label())
		dx := b.SumTo(dy, x.Shape)
		b.Note("d%s = %s", y.Label(), dy.Label())
		return []*Node{dx, b.SumTo(dy, y.Shape)}
	})
	binary(Sub, spec.Sub, "-", func(b *Builder, n, dy *Node) []*Node {
		x, y := n.Args[0], n.Args[1]
		b.Note("d%s = %s", x.Label(), dy.Label())
		dx := b.SumTo(dy, x.Shape)
		b.Note("d%s = -%s", y.Label(), dy.Label())
		return []*Node{dx, b.Neg(b.SumTo(dy, y.Shape))}
	})
	binary(Mul, spec.Mul, "⊙", func(b *Builder, n, dy *Node) []*Node {
		x, y := n.Args[0], n.Args[1]
		if x == y { // x², one contribution instead of two
			b.Note("d%s = 2·%s ⊙ %s", x.Label(), dy.Label(), x.Label())
			return []*Node{b.SumTo(b.Mul(b.Mul(dy, x), b.Const(2)), x.Shape), nil}
		}
		b.Note("d%s = %s ⊙ %s", x.Label(), dy.Label(), y.Label())
		dx := b.SumTo(b.Mul(dy, y), x.Shape)
		b.Note("d%s = %s ⊙ %s", y.Label(), dy.Label(), x.Label())
		return []*Node{dx, b.SumTo(b.Mul(dy, x), y.Shape)}
	}).Bound = func(n *Node) (float64, []int, int) { return 1, []int{0, 1}, 1 }
	binary(Div, spec.Div, "/", func(b *Builder, n, dy *Node) []*Node {
		x, y := n.Args[0], n.Args[1]
		b.Note("d%s = %s / %s", x.Label(), dy.Label(), y.Label())
		dx := b.SumTo(b.Div(dy, y), x.Shape)
		b.Note("d%s = -%s ⊙ %s / %s", y.Label(), dy.Label(), n.Label(), y.Label())
		return []*Node{dx, b.Neg(b.SumTo(b.Div(b.Mul(dy, n), y), y.Shape))}
	})

	// matmul: y = op(A)·op(B) for 2-D operands. The adjoints are matmuls
	// whose transpose flags absorb every transpose, so none is materialized.
	define(MatMul, &OpDef{Arity: 2, Shape: matmulShape, Simplify: absorbTransposes, Accumulates: true, ScalesColumns: true,
		// Rows of A times a whole weight: each position on its own.
		Step: func(n *Node) StepKind {
			if n.Attrs.TransA || len(n.Args[1].Shape) != 2 || n.Args[1].Shape.HasBatch() {
				return StepNone
			}
			return StepRows
		},
		Formula: func(n *Node, arg func(int) string) string {
			return arg(0) + tick(n.Attrs.TransA) + "·" + arg(1) + tick(n.Attrs.TransB)
		},
		// A plain product (no transposes, a 2-D weight) takes the bias add
		// and the activation as the epilogue of its kernel.
		BiasAct: func(n *Node) *OpDef {
			if n.Attrs.TransA || n.Attrs.TransB || len(n.Args[1].Shape) != 2 {
				return nil
			}
			return MatMulBiasAct
		},
		Flops: func(n *Node) int { return 2 * n.Shape.Elems() * contracted(n) },
		Bound: func(n *Node) (float64, []int, int) {
			k := contracted(n)
			return float64(k), []int{0, 1}, k
		},
		Grad: func(b *Builder, n, dy *Node) []*Node {
			return productGrad(b, n, dy, b.MatMul)
		}})
	define(Transpose, &OpDef{Arity: 1, Formula: func(n *Node, arg func(int) string) string { return arg(0) + "ᵀ" },
		Shape: func(n *Node) (Shape, error) {
			x := n.Args[0].Shape
			if len(x) != 2 {
				return nil, fmt.Errorf("needs a 2-D tensor, got %v", x)
			}
			return Shape{x[1], x[0]}, nil
		},
		Simplify: func(b *Builder, n *Node) *Node {
			if x := n.Args[0]; x.Op == Transpose {
				return x.Args[0] // (xᵀ)ᵀ = x
			}
			return nil
		},
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %sᵀ", n.Args[0].Label(), dy.Label())
			return []*Node{b.Transpose(dy)}
		}})

	// reshape is a view: same elements, new shape, no copy.
	define(Reshape, &OpDef{Arity: 1, Alias: true, Shape: reshapeShape,
		Simplify: func(b *Builder, n *Node) *Node {
			x := n.Args[0]
			if x.Shape.Equal(n.Shape) {
				return x
			}
			if x.Op == Reshape {
				return b.Reshape(x.Args[0], n.Shape)
			}
			if x.Op == Const {
				return b.Op(Const, Attrs{Value: x.Attrs.Value, To: n.Shape})
			}
			return nil
		},
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = reshape(%s, %v)", n.Args[0].Label(), dy.Label(), n.Args[0].Shape)
			return []*Node{b.Reshape(dy, n.Args[0].Shape)}
		}})

	// Reductions. Their adjoint broadcasts the gradient back; mean's also
	// divides by the count (which involves n when the batch axis is reduced).
	reduce := func(d *OpDef, mean bool) {
		define(d, &OpDef{Arity: 1, Shape: reduceShape, Accumulates: true,
			Formula: func(n *Node, arg func(int) string) string {
				return fmt.Sprintf("%s(%s, axes=%v)", d.Name, arg(0), n.Attrs.Axes)
			},
			Bound: func(n *Node) (float64, []int, int) {
				count := n.Args[0].Shape.Elems() / n.Shape.Elems()
				if mean {
					return 1, []int{0}, count
				}
				return float64(count), []int{0}, count
			},
			Grad: func(b *Builder, n, dy *Node) []*Node {
				x := n.Args[0]
				if mean {
					b.Note("d%s = broadcast(%s)/count", x.Label(), dy.Label())
				} else {
					b.Note("d%s = broadcast(%s)", x.Label(), dy.Label())
				}
				kept := keptShape(x.Shape, n.Attrs.Axes)
				return []*Node{b.BroadcastTo(b.Reshape(dy, kept), x.Shape, mean)}
			}})
	}
	reduce(Sum, false)
	reduce(Mean, true)
	// broadcast_to only appears in backward passes (the adjoint of sum and
	// mean), so it needs no adjoint of its own.
	define(BroadcastTo, &OpDef{Arity: 1, NoGrad: backwardOnly, Accumulates: true,
		Bound: func(n *Node) (float64, []int, int) {
			return 1, []int{0}, 1 // a copy, or a copy divided by a count (the mean's adjoint)
		},
		Simplify: func(b *Builder, n *Node) *Node {
			x := n.Args[0]
			if x.Op != Const {
				return nil
			}
			v := x.Attrs.Value
			if n.Attrs.Mean {
				if n.Shape.HasBatch() && !x.Shape.HasBatch() {
					return nil // the count depends on n
				}
				v /= float64(n.Shape.Elems() / x.Shape.Elems())
			}
			return b.Op(Const, Attrs{Value: v, To: n.Shape})
		},
		Shape: func(n *Node) (Shape, error) {
			x, to := n.Args[0].Shape, n.Attrs.To
			if len(x) != len(to) {
				return nil, fmt.Errorf("cannot broadcast %v to %v: ranks differ", x, to)
			}
			s, err := Broadcast(x, to)
			if err != nil || !s.Equal(to) {
				return nil, fmt.Errorf("cannot broadcast %v to %v", x, to)
			}
			return to, nil
		}})

	// Row-wise softmax family over the last axis.
	define(Softmax, &OpDef{Arity: 1, Shape: lastAxisStatic, Step: stepRows,
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s ⊙ (%s - Σ %s⊙%s)", n.Args[0].Label(), n.Label(), dy.Label(), dy.Label(), n.Label())
			return []*Node{b.Op(SoftmaxGrad, Attrs{}, n, dy)}
		}})
	define(LogSoftmax, &OpDef{Arity: 1, Shape: lastAxisStatic, Step: stepRows,
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s - exp(%s) ⊙ Σ %s", n.Args[0].Label(), dy.Label(), n.Label(), dy.Label())
			return []*Node{b.Op(LogSoftmaxGrad, Attrs{}, n, dy)}
		}})

	// softmax_cross_entropy: mean over rows of -log softmax(logits)[label].
	// Its adjoint is the fused (softmax - onehot)·dloss/n, never the chain
	// through an explicit softmax and log.
	define(SoftmaxCrossEntropy, &OpDef{Arity: 2, Shape: sceShape,
		Grad: func(b *Builder, n, dy *Node) []*Node {
			logits, labels := n.Args[0], n.Args[1]
			b.Note("d%s = (softmax(%s) - onehot(%s))·%s/n", logits.Label(), logits.Label(), labels.Label(), dy.Label())
			return []*Node{b.Op(SoftmaxCrossEntropyGrad, Attrs{}, logits, labels, dy), nil}
		}})
	define(SoftmaxCrossEntropyGrad, &OpDef{Arity: 3, NoGrad: backwardOnly, ScalarOperands: true,
		Shape: func(n *Node) (Shape, error) {
			if _, err := sceShape(n); err != nil {
				return nil, err
			}
			if !n.Args[2].Shape.IsScalar() {
				return nil, fmt.Errorf("upstream gradient must be scalar, got %v", n.Args[2].Shape)
			}
			return n.Args[0].Shape, nil
		}})

	// bias_act is act(x + b) with b broadcast along the last axis, in one
	// pass. derive fuses it after differentiation (the adjoints read the
	// activation's output, never the sum), so it needs no rule of its own.
	define(BiasAct, &OpDef{Arity: 2, NoGrad: "fused after derivation; never differentiated", Step: stepRows,
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("%s(%s + %s)", n.Attrs.Act.Name, arg(0), arg(1))
		},
		Shape: func(n *Node) (Shape, error) {
			x, b := n.Args[0].Shape, n.Args[1].Shape
			if len(x) < 2 || len(b) != 1 || b[0] != x[len(x)-1] {
				return nil, fmt.Errorf("bias %v does not fit the last axis of %v", b, x)
			}
			return x, nil
		}})

	// matmul_bias_act is act(x·W + b), a plain product (no transposes;
	// leading axes of x flatten into rows) with the bias add and the
	// activation as its epilogue: derive fuses it from a bias_act whose
	// sum operand is a product read by nothing else.
	define(MatMulBiasAct, &OpDef{Arity: 3, NoGrad: "fused after derivation; never differentiated", ScalesColumns: true, Step: stepRows,
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("%s(%s·%s + %s)", n.Attrs.Act.Name, arg(0), arg(1), arg(2))
		},
		Flops: func(n *Node) int { return 2 * n.Shape.Elems() * n.Args[1].Shape[0].Size },
		Shape: func(n *Node) (Shape, error) {
			x, w, b := n.Args[0].Shape, n.Args[1].Shape, n.Args[2].Shape
			if len(x) < 2 || len(w) != 2 || x[len(x)-1] != w[0] {
				return nil, fmt.Errorf("cannot multiply %v by %v", x, w)
			}
			if len(b) != 1 || b[0] != w[1] {
				return nil, fmt.Errorf("bias %v does not fit the last axis of %v", b, w)
			}
			return append(append(Shape{}, x[:len(x)-1]...), w[1]), nil
		}})

	// matmul_bias_add is x·W + b + r, a residual connection around a dense
	// layer: derive fuses it from an add of a tensor r of the sum's shape
	// and a matmul_bias_act without activation read by nothing else (the
	// adjoint of an add reads neither operand), so the residual is added in
	// the product's epilogue instead of a pass of its own. Not
	// ScalesColumns: scaling the product's columns would scale r too.
	define(MatMulBiasAdd, &OpDef{Arity: 4, NoGrad: "fused after derivation; never differentiated", Step: stepRows,
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("%s + (%s·%s + %s)", arg(3), arg(0), arg(1), arg(2))
		},
		Flops: func(n *Node) int { return 2 * n.Shape.Elems() * n.Args[1].Shape[0].Size },
		Shape: func(n *Node) (Shape, error) {
			x, w, b, r := n.Args[0].Shape, n.Args[1].Shape, n.Args[2].Shape, n.Args[3].Shape
			if len(x) < 2 || len(w) != 2 || x[len(x)-1] != w[0] {
				return nil, fmt.Errorf("cannot multiply %v by %v", x, w)
			}
			if len(b) != 1 || b[0] != w[1] {
				return nil, fmt.Errorf("bias %v does not fit the last axis of %v", b, w)
			}
			out := append(append(Shape{}, x[:len(x)-1]...), w[1])
			if !r.Equal(out) {
				return nil, fmt.Errorf("residual %v does not match the product %v", r, out)
			}
			return out, nil
		}})

	// acc_grad adds a contribution into a parameter's (or input's)
	// gradient buffer: the end of every backward chain.
	define(AccGrad, &OpDef{Arity: 1, NoGrad: backwardOnly,
		Shape: func(n *Node) (Shape, error) {
			p := n.Attrs.Param
			if p == nil {
				return nil, errors.New("acc_grad needs a target")
			}
			if !p.Shape.Equal(n.Args[0].Shape) {
				return nil, fmt.Errorf("gradient shape %v does not match %s's shape %v", n.Args[0].Shape, p.Name, p.Shape)
			}
			return p.Shape, nil
		}})
}

// contracted is the length of the sums of a matmul: A's last dimension, or
// with transA all its leading ones (the rows of a weight gradient).
func contracted(n *Node) int {
	a := n.Args[0].Shape
	if n.Attrs.TransA {
		return a[:len(a)-1].Elems()
	}
	return a[len(a)-1].Size
}

func tick(t bool) string {
	if t {
		return "ᵀ"
	}
	return ""
}

func sameAsArg(n *Node) (Shape, error) { return n.Args[0].Shape, nil }

func sameShapes(n *Node) (Shape, error) {
	if !n.Args[0].Shape.Equal(n.Args[1].Shape) {
		return nil, fmt.Errorf("operand shapes differ: %v and %v", n.Args[0].Shape, n.Args[1].Shape)
	}
	return n.Args[0].Shape, nil
}

func broadcastArgs(n *Node) (Shape, error) {
	if len(n.Args[0].Shape) > 4 || len(n.Args[1].Shape) > 4 {
		return nil, fmt.Errorf("rank above 4 is not supported")
	}
	return Broadcast(n.Args[0].Shape, n.Args[1].Shape)
}

// matmulShape: op(A)·op(B). A may have leading dimensions beyond 2 (a
// sequence (N, T, K) times (K, V) is (N, T, V), rows flattened); with
// transA, A and B share their leading dimensions, which are contracted
// (the weight gradient of such a product).
func matmulShape(n *Node) (Shape, error) {
	a, b := n.Args[0].Shape, n.Args[1].Shape
	tA, tB := n.Attrs.TransA, n.Attrs.TransB
	if len(a) < 2 || len(b) < 2 || len(a) > 4 {
		return nil, fmt.Errorf("needs operands of rank 2 or more, got %v and %v", a, b)
	}
	var out Shape
	switch {
	case !tA && len(b) == 2:
		k, c := b[0], b[1]
		if tB {
			k, c = b[1], b[0]
		}
		if a[len(a)-1] != k {
			return nil, fmt.Errorf("inner dimensions differ (%s vs %s): the left operand's last dimension must equal the right operand's first", dimString(a[len(a)-1]), dimString(k))
		}
		out = append(a[:len(a)-1].Clone(), c)
	case tA && (len(a) == 2 || !tB) && len(a) == len(b):
		m, c := a[len(a)-1], b[len(b)-1]
		lead, bl := a[:len(a)-1], b[:len(b)-1]
		if tB { // 2-D only: Aᵀ·Bᵀ
			c, bl = b[0], b[1:]
		}
		if !lead.Equal(bl) {
			return nil, fmt.Errorf("inner dimensions differ: %vᵀ @ %v", a, b)
		}
		out = Shape{m, c}
	default:
		return nil, fmt.Errorf("matmul of %v and %v (transA=%v, transB=%v) is not supported: the right operand must be 2-D", a, b, tA, tB)
	}
	batches := 0
	for _, d := range out {
		if d.Batch {
			batches++
		}
	}
	if batches > 1 {
		return nil, fmt.Errorf("result %v would have two batch dimensions", out)
	}
	return out, nil
}

func absorbTransposes(b *Builder, n *Node) *Node {
	x, y := n.Args[0], n.Args[1]
	tA, tB := n.Attrs.TransA, n.Attrs.TransB
	changed := false
	if x.Op == Transpose {
		x, tA, changed = x.Args[0], !tA, true
	}
	if y.Op == Transpose {
		y, tB, changed = y.Args[0], !tB, true
	}
	if !changed {
		return nil
	}
	return b.MatMul(x, y, tA, tB)
}

func reshapeShape(n *Node) (Shape, error) {
	x, to := n.Args[0].Shape, n.Attrs.To
	if len(to) > 4 {
		return nil, fmt.Errorf("rank above 4 is not supported")
	}
	static := func(s Shape) (p, batch int) {
		p = 1
		for _, d := range s {
			if d.Batch {
				batch++
			} else {
				p *= d.Size
			}
		}
		return
	}
	px, bx := static(x)
	pt, bt := static(to)
	switch {
	case bx != bt:
		return nil, fmt.Errorf("the batch dimension must stay: write batch in the new shape, as in [batch, %d]", px)
	case px != pt:
		return nil, fmt.Errorf("element counts differ: %d per row, not %d", px, pt)
	}
	return to, nil
}

func reduceShape(n *Node) (Shape, error) {
	x := n.Args[0].Shape
	axes := n.Attrs.Axes
	if axes == nil {
		axes = make([]int, len(x))
		for i := range axes {
			axes[i] = i
		}
	}
	norm, err := normAxes(axes, len(x))
	if err != nil {
		return nil, err
	}
	if len(x) > 4 {
		return nil, fmt.Errorf("rank above 4 is not supported")
	}
	n.Attrs.Axes = norm
	if n.Attrs.KeepDims {
		return keptShape(x, norm), nil
	}
	var out Shape
	for i, d := range x {
		if !slices.Contains(norm, i) {
			out = append(out, d)
		}
	}
	if out == nil {
		out = Scalar
	}
	return out, nil
}

// keptShape is x with the reduced axes set to 1.
func keptShape(x Shape, axes []int) Shape {
	out := x.Clone()
	for _, a := range axes {
		out[a] = Dim{Size: 1}
	}
	return out
}

func lastAxisStatic(n *Node) (Shape, error) {
	x := n.Args[0].Shape
	if len(x) == 0 || x[len(x)-1].Batch {
		return nil, fmt.Errorf("needs a last axis of static size (the classes), got %v", x)
	}
	return x, nil
}

// sceShape: logits (..., C) with one class label per row (...).
func sceShape(n *Node) (Shape, error) {
	logits, labels := n.Args[0], n.Args[1]
	r := len(logits.Shape)
	if r < 2 || logits.Shape[r-1].Batch {
		return nil, fmt.Errorf("logits must be (rows, classes) or (rows, steps, classes), got %v", logits.Shape)
	}
	if labels.DType != Int {
		return nil, fmt.Errorf("second argument must be class labels (declared with label NAME: class(C))")
	}
	if !labels.Shape.Equal(logits.Shape[:r-1]) {
		return nil, fmt.Errorf("labels %v do not match logits %v: need one label per row", labels.Shape, logits.Shape)
	}
	if c := labels.Attrs.Classes; c != logits.Shape[r-1].Size {
		return nil, fmt.Errorf("labels have %d classes but logits have %d columns (shapes %v and %v): give the last layer one unit per class", c, logits.Shape[r-1].Size, labels.Shape, logits.Shape)
	}
	return Scalar, nil
}

// isConst reports whether n is a scalar constant with value v.
func isConst(n *Node, v float64) bool {
	return n.Op == Const && n.Shape.IsScalar() && n.Attrs.Value == v
}

func foldUnary(b *Builder, n *Node) *Node {
	x := n.Args[0]
	if n.Op == Neg && x.Op == Neg {
		return x.Args[0]
	}
	if x.Op == Const && n.Op.Fold != nil {
		// Only to a value every element type holds (the kernel would
		// give a float32 model +Inf for exp(100), which the finite checks
		// report; a folded 2.7e43 would not compile).
		if v := n.Op.Fold(x.Attrs.Value); !math.IsNaN(v) && math.Abs(v) <= math.MaxFloat32 {
			return b.Op(Const, Attrs{Value: v, To: x.Attrs.To})
		}
	}
	return nil
}

// simplifyBinary removes x+0, x-0, x·1, x/1, folds x·0 to a zero constant,
// and folds two scalar constants.
func simplifyBinary(b *Builder, n *Node) *Node {
	x, y := n.Args[0], n.Args[1]
	op := n.Op
	keep := func(v *Node) *Node {
		if v.Shape.Equal(n.Shape) {
			return v
		}
		return nil // the identity operand would also broadcast the other
	}
	if x.Op == Const && y.Op == Const && x.Shape.IsScalar() && y.Shape.IsScalar() && len(n.Shape) == 0 {
		a, c := x.Attrs.Value, y.Attrs.Value
		var v float64
		switch op {
		case Add:
			v = a + c
		case Sub:
			v = a - c
		case Mul:
			v = a * c
		case Div:
			v = a / c
		}
		return b.Const(v)
	}
	// A constant tensor is uniform: use it as a scalar when the other
	// operand alone has the result's shape.
	if x.Op == Const && !x.Shape.IsScalar() && y.Shape.Equal(n.Shape) {
		return b.Op(op, Attrs{}, b.Const(x.Attrs.Value), y)
	}
	if y.Op == Const && !y.Shape.IsScalar() && x.Shape.Equal(n.Shape) {
		return b.Op(op, Attrs{}, x, b.Const(y.Attrs.Value))
	}
	// (a·c1)·c2 → a·(c1·c2) for scalar constants.
	if op == Mul {
		if c2, a := scalarConstOf(x, y); c2 != nil && a.Op == Mul {
			if c1, inner := scalarConstOf(a.Args[0], a.Args[1]); c1 != nil && inner.Shape.Equal(n.Shape) {
				return b.Mul(inner, b.Const(c1.Attrs.Value*c2.Attrs.Value))
			}
		}
	}
	switch op {
	case Add:
		if isConst(y, 0) {
			return keep(x)
		}
		if isConst(x, 0) {
			return keep(y)
		}
	case Sub:
		if isConst(y, 0) {
			return keep(x)
		}
	case Mul:
		if isConst(y, 1) {
			return keep(x)
		}
		if isConst(x, 1) {
			return keep(y)
		}
		if isConst(x, 0) || isConst(y, 0) {
			return b.Op(Const, Attrs{Value: 0, To: n.Shape})
		}
		if isConst(x, -1) {
			return b.Neg(y)
		}
	case Div:
		if isConst(y, 1) {
			return keep(x)
		}
	}
	return nil
}

// scalarConstOf returns the scalar constant among x and y and the other
// operand, or nil.
func scalarConstOf(x, y *Node) (c, other *Node) {
	switch {
	case x.Op == Const && x.Shape.IsScalar():
		return x, y
	case y.Op == Const && y.Shape.IsScalar():
		return y, x
	}
	return nil, nil
}
