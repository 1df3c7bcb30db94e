package ir

import "fmt"

// Convolution and pooling over NHWC tensors (batch, height, width, channels),
// the layout of Keras; kernels are (KH, KW, C, F). Each op's shape rule and
// adjoint rule sit together here, like the rest of the table.

// kernelFileAxes is the file layout of a convolution's kernel (argument 1):
// PyTorch's nn.Conv2d.weight, (F, C, KH, KW).
func kernelFileAxes(arg int) []int {
	if arg == 1 {
		return []int{3, 2, 0, 1}
	}
	return nil
}

// The forward input and output shapes of the window ops (OpDef.Window):
// a forward op reads x and makes y; a gradient op knows them from its
// operands and its result shape (To).
func forwardWindow(n *Node) (x, y Shape)    { return n.Args[0].Shape, n.Shape }
func gradInputWindow(n *Node) (x, y Shape)  { return n.Attrs.To, n.Args[0].Shape }
func gradFilterWindow(n *Node) (x, y Shape) { return n.Args[0].Shape, n.Args[1].Shape }

func init() {
	define(Conv2D, &OpDef{Arity: 2, Shape: convShape, Scratch: colSize, ScratchName: "Col", ScratchDoc: im2colDoc, Flops: convFlops, FileAxes: kernelFileAxes, Window: forwardWindow, ScalesColumns: true,
		BiasAct: func(n *Node) *OpDef { return Conv2DBiasAct },
		Grad: func(b *Builder, n, dy *Node) []*Node {
			x, w := n.Args[0], n.Args[1]
			win := n.Attrs.Window
			b.Note("d%s = conv2dᵀ(%s, %s): col2im(%s·%sᵀ)", x.Label(), dy.Label(), w.Label(), dy.Label(), w.Label())
			dx := b.Op(Conv2DGradInput, Attrs{Window: win, To: x.Shape}, dy, w)
			b.Note("d%s = im2col(%s)ᵀ·%s", w.Label(), x.Label(), dy.Label())
			dw := b.Op(Conv2DGradFilter, Attrs{Window: win, To: w.Shape}, x, dy)
			return []*Node{dx, dw}
		}})
	// conv2d_bias_act is act(conv2d(x, w) + b), the convolution with the
	// bias add and the activation as the epilogue of its product, fused by
	// derive like matmul_bias_act.
	define(Conv2DBiasAct, &OpDef{Arity: 3, NoGrad: "fused after derivation; never differentiated", ScalesColumns: true, Scratch: colSize, ScratchName: "Col", ScratchDoc: im2colDoc, Flops: convFlops, FileAxes: kernelFileAxes, Window: forwardWindow,
		Formula: func(n *Node, arg func(int) string) string {
			return fmt.Sprintf("%s(conv2d(%s, %s) + %s)", n.Attrs.Act.Name, arg(0), arg(1), arg(2))
		},
		Shape: func(n *Node) (Shape, error) {
			y, err := convShape(n)
			if err != nil {
				return nil, err
			}
			if b := n.Args[2].Shape; len(b) != 1 || b[0] != y[3] {
				return nil, fmt.Errorf("bias %v does not fit the channels of %v", b, y)
			}
			return y, nil
		}})
	define(Conv2DGradInput, &OpDef{Arity: 2, NoGrad: backwardOnly, Accumulates: true, Window: gradInputWindow, Scratch: gradColSize(gradInputWindow), ScratchName: "Col", ScratchDoc: im2colDoc,
		Shape: func(n *Node) (Shape, error) { return checkGradShape(n, n.Args[0]) }})
	define(Conv2DGradFilter, &OpDef{Arity: 2, NoGrad: backwardOnly, Accumulates: true, Window: gradFilterWindow, Scratch: gradColSize(gradFilterWindow), ScratchName: "Col", ScratchDoc: im2colDoc,
		Shape: func(n *Node) (Shape, error) { return checkGradShape(n, n.Args[1]) },
		// Each tap of the filter sums x·dy over every output pixel of
		// every row; padding contributes zeros.
		Bound: func(n *Node) (float64, []int, int) {
			dy := n.Args[1].Shape
			k := dy[0].Size * dy[1].Size * dy[2].Size
			return float64(k), []int{0, 1}, k
		}})

	define(MaxPool2D, &OpDef{Arity: 1, Shape: poolShape, Window: forwardWindow,
		Aux: func(n *Node) int { return n.Shape.Elems() },
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s routed to each window's argmax", n.Args[0].Label(), dy.Label())
			return []*Node{b.Op(MaxPool2DGrad, Attrs{Window: n.Attrs.Window, To: n.Args[0].Shape}, dy, n)}
		}})
	define(MaxPool2DGrad, &OpDef{Arity: 2, NoGrad: backwardOnly, Accumulates: true, Window: gradInputWindow,
		Shape: func(n *Node) (Shape, error) {
			if n.Args[1].Op != MaxPool2D {
				return nil, fmt.Errorf("maxpool2d_grad reads the argmax of a maxpool2d, got %s", n.Args[1].Op.Name)
			}
			return checkGradShape(n, n.Args[0])
		}})
	define(AvgPool2D, &OpDef{Arity: 1, Shape: poolShape, Window: forwardWindow,
		Grad: func(b *Builder, n, dy *Node) []*Node {
			b.Note("d%s = %s spread evenly over each window", n.Args[0].Label(), dy.Label())
			return []*Node{b.Op(AvgPool2DGrad, Attrs{Window: n.Attrs.Window, To: n.Args[0].Shape}, dy)}
		}})
	define(AvgPool2DGrad, &OpDef{Arity: 1, NoGrad: backwardOnly, Accumulates: true, Window: gradInputWindow,
		Shape: func(n *Node) (Shape, error) { return checkGradShape(n, n.Args[0]) }})
}

// im2colDoc names the convolutions' scratch: the input's windows as rows.
const im2colDoc = "im2col work buffer"

// nhwc checks x is (N, H, W, C) with static H, W, C.
func nhwc(x Shape) error {
	if len(x) != 4 || !x[0].Batch || x[1].Batch || x[2].Batch || x[3].Batch {
		return fmt.Errorf("needs an (N, height, width, channels) input, got %v", x)
	}
	return nil
}

func convShape(n *Node) (Shape, error) {
	x, w, win := n.Args[0].Shape, n.Args[1].Shape, n.Attrs.Window
	if err := nhwc(x); err != nil {
		return nil, err
	}
	if win == nil {
		return nil, fmt.Errorf("conv2d without a window")
	}
	if len(w) != 4 || w[0].Size != win.KH || w[1].Size != win.KW || w[2] != x[3] {
		return nil, fmt.Errorf("kernel %v does not fit input %v: want (%d, %d, %d, filters)", w, x, win.KH, win.KW, x[3].Size)
	}
	oh, ow, err := win.Out(x[1].Size, x[2].Size)
	if err != nil {
		return nil, err
	}
	return Shape{x[0], {Size: oh}, {Size: ow}, w[3]}, nil
}

func poolShape(n *Node) (Shape, error) {
	x, win := n.Args[0].Shape, n.Attrs.Window
	if err := nhwc(x); err != nil {
		return nil, err
	}
	oh, ow, err := win.Out(x[1].Size, x[2].Size)
	if err != nil {
		return nil, err
	}
	return Shape{x[0], {Size: oh}, {Size: ow}, x[3]}, nil
}

// checkGradShape: a window gradient has the shape recorded in To, and the
// upstream gradient dy has the forward output's shape for that geometry.
func checkGradShape(n *Node, dy *Node) (Shape, error) {
	to := n.Attrs.To
	if n.Attrs.Window == nil || to == nil {
		return nil, fmt.Errorf("%s needs a window and a result shape", n.Op.Name)
	}
	return to, nil
}

// colSize is the im2col scratch of a convolution: one row per output pixel,
// one column per kernel tap and input channel.
func colSize(n *Node) int {
	x, out, win := n.Args[0].Shape, n.Shape, n.Attrs.Window
	return out[0].Size * out[1].Size * out[2].Size * win.KH * win.KW * x[3].Size
}

// gradColSize is colSize for a gradient op, from the forward shapes its
// window rule gives.
func gradColSize(window func(n *Node) (x, y Shape)) func(n *Node) int {
	return func(n *Node) int {
		x, y := window(n)
		win := n.Attrs.Window
		return y[0].Size * y[1].Size * y[2].Size * win.KH * win.KW * x[3].Size
	}
}

// convFlops is a convolution's multiply-adds: one per output element and
// element of its window.
func convFlops(n *Node) int {
	w := n.Attrs.Window
	return 2 * n.Shape.Elems() * w.KH * w.KW * n.Args[0].Shape[3].Size
}
