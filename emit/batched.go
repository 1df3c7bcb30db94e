package emit

import (
	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/ir"
)

// Kernels of the batched primitives (ir/batched.go).

func init() {
	kernels[ir.BatchMatMul] = func(g *gen, n *ir.Node) jen.Code {
		lead, m, p, k := ir.BatchDims(n)
		return rt("BatchGemm").Call(jen.Lit(n.Attrs.TransA), jen.Lit(n.Attrs.TransB), count(lead), jen.Lit(m), jen.Lit(p), jen.Lit(k),
			g.in(n.Args[0]), g.in(n.Args[1]), g.out(n), g.acc(n))
	}
	kernels[ir.Permute] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0]
		pad := 4 - len(x.Shape)
		var perm [4]*jen.Statement
		for i := range pad {
			perm[i] = jen.Lit(i)
		}
		for i, a := range n.Attrs.Axes {
			perm[pad+i] = jen.Lit(pad + a)
		}
		return rt("Permute").Call(g.out(n), g.in(x), dims4(pad4(x.Shape)), array4(perm), g.acc(n))
	}
	kernels[ir.CausalMask] = func(g *gen, n *ir.Node) jen.Code {
		s := n.Shape
		return rt("CausalMask").Call(g.out(n), g.in(n.Args[0]), count(s[:len(s)-2]), jen.Lit(s[len(s)-1].Size), g.lit(n.Attrs.Value))
	}
	kernels[ir.Split] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0]
		return rt("Split").Call(g.out(n), g.in(x), rows(x.Shape), dim(x.Shape[len(x.Shape)-1]), jen.Lit(n.Attrs.Parts), jen.Lit(n.Attrs.Index))
	}
	kernels[ir.SplitGrad] = func(g *gen, n *ir.Node) jen.Code {
		return rt("SplitGrad").Call(g.out(n), g.in(n.Args[0]), rows(n.Shape), dim(n.Shape[len(n.Shape)-1]), jen.Lit(n.Attrs.Parts), jen.Lit(n.Attrs.Index), g.acc(n))
	}
}
