package emit

import (
	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/ir"
)

// Token embedding kernels (ir/embed.go).

func init() {
	kernels[ir.Embedding] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Embedding").Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), rows(n.Shape), dim(n.Shape[len(n.Shape)-1]))
	}
	kernels[ir.EmbeddingGrad] = func(g *gen, n *ir.Node) jen.Code {
		dy := n.Args[0]
		return rt("EmbeddingGrad").Call(g.out(n), g.in(dy), g.in(n.Args[1]), rows(dy.Shape), dim(dy.Shape[len(dy.Shape)-1]), g.acc(n))
	}
}
