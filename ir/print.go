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

func formatAttrs(n *Node) string {
	var parts []string
	a := n.Attrs
	switch n.Op.Name {
	case "const":
		parts = append(parts, fmt.Sprintf("value=%g", a.Value))
	case "matmul":
		if a.TransA {
			parts = append(parts, "transA")
		}
		if a.TransB {
			parts = append(parts, "transB")
		}
	case "sum", "mean":
		parts = append(parts, fmt.Sprintf("axes=%v", a.Axes))
		if a.KeepDims {
			parts = append(parts, "keepdims")
		}
	case "broadcast_to":
		if a.Mean {
			parts = append(parts, "mean")
		}
	case "param":
		parts = append(parts, "init="+a.Init)
	case "label":
		parts = append(parts, fmt.Sprintf("classes=%d", a.Classes))
	case "acc_grad":
		parts = append(parts, "into=d"+a.Param.Name)
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
