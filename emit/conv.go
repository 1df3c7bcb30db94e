package emit

import (
	"fmt"
	"reflect"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

// geomVar is a package-level runtime.Conv2DGeom (spec.Conv2DGeom) shared by a window op and
// its gradients.
type geomVar struct {
	name, of string
	key      string
	value    *jen.Statement
}

// geometry returns the forward input and output shapes of a window op or
// of one of its gradients (the op table's Window rule).
func geometry(n *ir.Node) (x, y ir.Shape) { return n.Op.Window(n) }

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
		v := specLiteral(spec.Conv2DGeom{
			H: x[1].Size, W: x[2].Size, C: x[3].Size, KH: w.KH, KW: w.KW, F: y[3].Size, OH: y[1].Size, OW: y[2].Size,
			SH: w.SH, SW: w.SW, DH: w.DH, DW: w.DW, PadT: w.PadT, PadL: w.PadL,
		})
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
	kernels[ir.Conv2D] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2D").Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.col(n), jen.Id("n"), g.geom(n))
	}
	kernels[ir.Conv2DBiasAct] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2DBiasAct").Call(unary(n.Attrs.Act), g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.in(n.Args[2]), g.col(n), jen.Id("n"), g.geom(n))
	}
	kernels[ir.Conv2DGradInput] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2DGradInput").Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.col(n), jen.Id("n"), g.geom(n), g.acc(n))
	}
	kernels[ir.Conv2DGradFilter] = func(g *gen, n *ir.Node) jen.Code {
		return rt("Conv2DGradFilter").Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.col(n), jen.Id("n"), g.geom(n), g.acc(n))
	}
	kernels[ir.MaxPool2D] = func(g *gen, n *ir.Node) jen.Code {
		return rt("MaxPool2D").Call(g.out(n), jen.Id("m").Dot(g.aux[n]), g.in(n.Args[0]), jen.Id("n"), g.geom(n))
	}
	kernels[ir.MaxPool2DGrad] = func(g *gen, n *ir.Node) jen.Code {
		return rt("MaxPool2DGrad").Call(g.out(n), g.in(n.Args[0]), jen.Id("m").Dot(g.aux[n.Args[1]]), jen.Id("n"), g.geom(n), g.acc(n))
	}
	kernels[ir.AvgPool2D] = func(g *gen, n *ir.Node) jen.Code {
		return rt("AvgPool2D").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), g.geom(n))
	}
	kernels[ir.AvgPool2DGrad] = func(g *gen, n *ir.Node) jen.Code {
		return rt("AvgPool2DGrad").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), g.geom(n), g.acc(n))
	}
}

// specLiteral writes v, a value of a spec struct type, as a composite
// literal of package runtime's alias of that type, field by field, so that
// the field names come from the type itself rather than from strings.
func specLiteral(v any) *jen.Statement {
	rv := reflect.ValueOf(v)
	t := rv.Type()
	return rt(t.Name()).Values(jen.DictFunc(func(d jen.Dict) {
		for i := range t.NumField() {
			f := rv.Field(i)
			switch x := f.Interface().(type) {
			case spec.RNNCell:
				d[jen.Id(t.Field(i).Name)] = rt(x.GoName())
			default:
				d[jen.Id(t.Field(i).Name)] = jen.Lit(f.Interface())
			}
		}
	}))
}
