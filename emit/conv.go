package emit

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/ir"
)

// geomVar is a package-level runtime.Conv2DGeom shared by a window op and
// its gradients.
type geomVar struct {
	name, of string
	key      string
	value    *jen.Statement
}

// geometry returns the forward input and output shapes of a window op or
// of one of its gradients.
func geometry(n *ir.Node) (x, y ir.Shape) {
	switch n.Op.Name {
	case "conv2d", "conv2d_bias_act", "maxpool2d", "avgpool2d":
		return n.Args[0].Shape, n.Shape
	case "conv2d_grad_filter":
		return n.Args[0].Shape, n.Args[1].Shape
	default: // conv2d_grad_input, maxpool2d_grad, avgpool2d_grad
		return n.Attrs.To, n.Args[0].Shape
	}
}

func geomKey(n *ir.Node) string {
	x, y := geometry(n)
	return fmt.Sprintf("%v %v %+v", x, y, *n.Attrs.Window)
}

// collectGeoms names each distinct window geometry after the forward op
// that first uses it.
func (g *gen) collectGeoms() {
	seen := map[string]bool{}
	names := newNamer()
	for _, n := range g.order() {
		if n.Attrs.Window == nil || seen[geomKey(n)] {
			continue
		}
		seen[geomKey(n)] = true
		x, y := geometry(n)
		w := n.Attrs.Window
		v := jen.Qual(rtPath, "Conv2DGeom").Values(jen.DictFunc(func(d jen.Dict) {
			set := func(k string, v int) { d[jen.Id(k)] = jen.Lit(v) }
			set("H", x[1].Size)
			set("W", x[2].Size)
			set("C", x[3].Size)
			set("KH", w.KH)
			set("KW", w.KW)
			set("F", y[3].Size)
			set("OH", y[1].Size)
			set("OW", y[2].Size)
			set("SH", w.SH)
			set("SW", w.SW)
			set("DH", w.DH)
			set("DW", w.DW)
			set("PadT", w.PadT)
			set("PadL", w.PadL)
		}))
		g.geoms = append(g.geoms, geomVar{name: names.get(goIdent(label(n), false) + "Geom"), of: label(n), key: geomKey(n), value: v})
	}
}

func (g *gen) geom(n *ir.Node) jen.Code {
	k := geomKey(n)
	for _, gv := range g.geoms {
		if gv.key == k {
			return jen.Id(gv.name)
		}
	}
	panic("emit: no geometry for " + label(n))
}

func (g *gen) col(n *ir.Node) jen.Code { return jen.Id("m").Dot(g.scratch[n]) }

func init() {
	kernels["conv2d"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2D").Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.col(n), jen.Id("n"), g.geom(n))
	}
	kernels["conv2d_bias_act"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2DBiasAct").Call(rt(unaryConst[n.Attrs.Act]), g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.in(n.Args[2]), g.col(n), jen.Id("n"), g.geom(n))
	}
	kernels["conv2d_grad_input"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2DGradInput").Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.col(n), jen.Id("n"), g.geom(n), g.acc(n))
	}
	kernels["conv2d_grad_filter"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2DGradFilter").Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.col(n), jen.Id("n"), g.geom(n), g.acc(n))
	}
	kernels["maxpool2d"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("MaxPool2D").Call(g.out(n), jen.Id("m").Dot(g.aux[n]), g.in(n.Args[0]), jen.Id("n"), g.geom(n))
	}
	kernels["maxpool2d_grad"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("MaxPool2DGrad").Call(g.out(n), g.in(n.Args[0]), jen.Id("m").Dot(g.aux[n.Args[1]]), jen.Id("n"), g.geom(n), g.acc(n))
	}
	kernels["avgpool2d"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("AvgPool2D").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), g.geom(n))
	}
	kernels["avgpool2d_grad"] = func(g *gen, n *ir.Node) jen.Code {
		return rt("AvgPool2DGrad").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), g.geom(n), g.acc(n))
	}
}
