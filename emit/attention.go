package emit

import (
	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/ir"
)

// Attention kernels (ir/attention.go).

func init() {
	kernels[ir.Attention] = func(g *gen, n *ir.Node) jen.Code {
		s := n.Shape
		return rt("Attention").Call(g.out(n), jen.Id("m").Dot(g.saved[n]), g.in(n.Args[0]), jen.Id("m").Dot(g.scratch[n]), jen.Id("n"), jen.Lit(s[1].Size), jen.Lit(s[2].Size),
			jen.Lit(n.Attrs.Heads), jen.Lit(n.Attrs.Causal))
	}
	stepKernels[ir.Attention] = func(g *gen, n *ir.Node) jen.Code {
		s := g.p.Decode.Orig[n].Shape
		return rt("AttentionStep").Call(g.out(n), jen.Id("d").Dot(g.caches[n]), g.in(n.Args[0]), jen.Id("m").Dot(g.scratch[n]), jen.Id("n"), jen.Id("pos"),
			jen.Lit(s[1].Size), jen.Lit(s[2].Size), jen.Lit(n.Attrs.Heads))
	}
	kernels[ir.AttentionGrad] = func(g *gen, n *ir.Node) jen.Code {
		dy, qkv, fwd := n.Args[0], n.Args[1], n.Args[2]
		s := fwd.Shape
		return rt("AttentionGrad").Call(g.out(n), g.in(dy), g.in(qkv), jen.Id("m").Dot(g.saved[fwd]), jen.Id("m").Dot(g.scratch[n]),
			jen.Id("n"), jen.Lit(s[1].Size), jen.Lit(s[2].Size), jen.Lit(n.Attrs.Heads), jen.Lit(n.Attrs.Causal), g.acc(n))
	}
}
