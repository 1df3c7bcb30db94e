package emit

import (
	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
)

// Normalization and dropout kernels (ir/norm.go).

// part returns the storage the kernel of n, an op whose result is handed
// out in slice views, writes for the view at offset off: the gradient the
// view is folded into when the plan folded it (IntoGrad), else that part of
// n's own buffer, of the given shape.
func (g *gen) part(n *ir.Node, off int, shape ir.Shape) (ref *jen.Statement, into bool) {
	for _, u := range g.users[n] {
		if u.Op == ir.Slice && u.Attrs.Offset == off && g.p.Plan.Slot(u).Kind == derive.IntoGrad {
			return g.ref(u), true
		}
	}
	return g.ref(n).Index(jen.Lit(off).Op(":").Lit(off).Op("+").Add(count(shape))), false
}

// normGradKernel is the call of a batch_norm_grad or layer_norm_grad
// kernel: dgamma and dbeta are added into (into the parameters' gradients,
// or into parts of the op's buffer cleared first), dx is written.
func (g *gen) normGradKernel(fn string, n *ir.Node) jen.Code {
	dy, x, gamma, fwd := n.Args[0], n.Args[1], n.Args[2], n.Args[3]
	og, ob, ox, _ := ir.NormGradLayout(fwd)
	c := gamma.Shape
	dg, intoG := g.part(n, og, c)
	db, intoB := g.part(n, ob, c)
	dx, _ := g.part(n, ox, x.Shape)
	var code []jen.Code
	for _, p := range []struct {
		ref  *jen.Statement
		into bool
	}{{dg, intoG}, {db, intoB}} {
		if !p.into {
			code = append(code, rt("Fill").Call(p.ref, jen.Lit(0)))
		}
	}
	C := c[0].Size
	return jen.Add(code...).Add(rt(fn).Call(dx, dg, db, g.in(dy), g.in(x), g.in(gamma), jen.Id("m").Dot(g.saved[fwd]),
		rows(x.Shape), jen.Lit(C), jen.True()))
}

// dropoutKey is the key of a dropout layer's masks in this step.
func dropoutKey(n *ir.Node) jen.Code {
	return rt("DropoutKey").Call(jen.Id("m").Dot("seed"), jen.Id("m").Dot("step"), jen.Lit(n.Attrs.Key))
}

func init() {
	kernels[ir.State] = func(g *gen, n *ir.Node) jen.Code { return jen.Null() }
	kernels[ir.BatchNorm] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0]
		return rt("BatchNorm").Call(g.out(n), jen.Id("m").Dot(g.saved[n]), g.in(x), g.in(n.Args[1]), g.in(n.Args[2]),
			rows(x.Shape), dim(x.Shape[len(x.Shape)-1]), g.lit(n.Attrs.Eps))
	}
	kernels[ir.BatchNormStats] = func(g *gen, n *ir.Node) jen.Code {
		bn := n.Args[0]
		x := bn.Args[0].Shape
		return rt("BatchNormUpdate").Call(g.ref(n.Args[1]), g.ref(n.Args[2]), jen.Id("m").Dot(g.saved[bn]),
			dim(x[len(x)-1]), rows(x), g.lit(n.Attrs.Momentum))
	}
	kernels[ir.BatchNormGrad] = func(g *gen, n *ir.Node) jen.Code { return g.normGradKernel("BatchNormGrad", n) }
	kernels[ir.BatchNormInfer] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0]
		return rt("BatchNormInfer").Call(g.out(n), g.in(x), g.in(n.Args[1]), g.in(n.Args[2]), g.in(n.Args[3]), g.in(n.Args[4]),
			rows(x.Shape), dim(x.Shape[len(x.Shape)-1]), g.lit(n.Attrs.Eps))
	}
	kernels[ir.BatchNormFold] = func(g *gen, n *ir.Node) jen.Code {
		w := n.Args[0]
		K, C := w.Shape.Elems()/w.Shape[len(w.Shape)-1].Size, w.Shape[len(w.Shape)-1].Size
		bias := jen.Code(jen.Nil())
		if len(n.Args) == 6 {
			bias = g.in(n.Args[5])
		}
		all := g.ref(n)
		return rt("BatchNormFold").Call(jen.Add(all).Clone().Index(jen.Lit(0).Op(":").Lit(w.Shape.Elems())), jen.Add(all).Clone().Index(jen.Lit(w.Shape.Elems()).Op(":").Lit(w.Shape.Elems()+C)),
			g.in(w), bias, g.in(n.Args[1]), g.in(n.Args[2]), g.in(n.Args[3]), g.in(n.Args[4]), jen.Lit(K), jen.Lit(C), g.lit(n.Attrs.Eps))
	}
	kernels[ir.LayerNorm] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0]
		return rt("LayerNorm").Call(g.out(n), jen.Id("m").Dot(g.saved[n]), g.in(x), g.in(n.Args[1]), g.in(n.Args[2]),
			rows(x.Shape), dim(x.Shape[len(x.Shape)-1]), g.lit(n.Attrs.Eps))
	}
	kernels[ir.LayerNormGrad] = func(g *gen, n *ir.Node) jen.Code { return g.normGradKernel("LayerNormGrad", n) }
	kernels[ir.Dropout] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Dropout").Call(g.out(n), g.in(n.Args[0]), jen.Lit(n.Attrs.Rate), dropoutKey(n))
	}
	kernels[ir.DropoutGrad] = func(g *gen, n *ir.Node) jen.Code {
		return rt("DropoutGrad").Call(g.out(n), g.in(n.Args[0]), jen.Lit(n.Attrs.Rate), dropoutKey(n))
	}
}
