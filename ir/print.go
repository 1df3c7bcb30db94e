package ir

import (
	"fmt"
	"io"
	"strings"
)

// Format writes nodes in the text form, one per line:
//
//	%3 h1.xW (N, 128) = matmul %0 x, %1 h1.W          mlp.bpg:6
//
// The form is deterministic: it depends only on the nodes, never on maps or
// pointers, so golden files can hold it.
func Format(w io.Writer, nodes []*Node) {
	for _, n := range nodes {
		fmt.Fprintln(w, FormatNode(n))
	}
}

// FormatNode returns the text form of one node.
func FormatNode(n *Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %s %v", n, n.Label(), n.Shape)
	if n.DType == Int {
		b.WriteString(" int32")
	}
	fmt.Fprintf(&b, " = %s", n.Op.Name)
	for i, a := range n.Args {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %v %s", a, a.Label())
	}
	if s := formatAttrs(n); s != "" {
		b.WriteString(" [" + s + "]")
	}
	if n.Pos.Line > 0 {
		fmt.Fprintf(&b, "  @%d", n.Pos.Line)
	}
	if n.Step != "" {
		b.WriteString("  ; " + n.Step)
	}
	return b.String()
}

// formatAttrs writes every attribute n has set, in a fixed order, so that
// a golden file sees any change to one (an activation, a window, a cell).
func formatAttrs(n *Node) string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	a := n.Attrs
	if n.Op == Const || n.Op == CausalMask || a.Value != 0 {
		add("value=%g", a.Value)
	}
	if a.TransA {
		add("transA")
	}
	if a.TransB {
		add("transB")
	}
	if a.Axes != nil {
		add("axes=%v", a.Axes)
	}
	if a.KeepDims {
		add("keepdims")
	}
	if a.To != nil && n.Op != Const {
		add("to=%v", a.To)
	}
	if a.Mean {
		add("mean")
	}
	if n.Op == Param {
		add("init=%v", a.Init)
	}
	if a.Classes != 0 {
		add("classes=%d", a.Classes)
	}
	if a.Tokens {
		add("tokens")
	}
	if a.Param != nil {
		add("into=d%s", a.Param.Name)
	}
	if w := a.Window; w != nil {
		add("window=%dx%d stride=%dx%d dilation=%dx%d pad=%d,%d,%d,%d", w.KH, w.KW, w.SH, w.SW, w.DH, w.DW, w.PadT, w.PadB, w.PadL, w.PadR)
	}
	if r := a.RNN; r != nil {
		add("cell=%v", r.Cell)
		if r.HasH0 {
			add("h0")
		}
		if r.HasC0 {
			add("c0")
		}
	}
	if a.Offset != 0 || n.Op == Slice {
		add("offset=%d", a.Offset)
	}
	if a.Act != nil {
		add("act=%s", a.Act.Name)
	}
	if a.Heads != 0 {
		add("heads=%d", a.Heads)
	}
	if a.Causal {
		add("causal")
	}
	if a.Parts != 0 {
		add("part=%d/%d", a.Index, a.Parts)
	}
	return strings.Join(parts, " ")
}

// String returns the graph's text form: a header, then every node.
func (g *Graph) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %s batch %d (from %s)\n", g.Model, g.Batch, g.File)
	Format(&b, g.Nodes)
	fmt.Fprintf(&b, "loss %v %s\n", g.Loss, g.Loss.Label())
	fmt.Fprintf(&b, "output %v %s\n", g.Output, g.Output.Label())
	return b.String()
}
