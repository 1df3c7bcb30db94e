package ir

import (
	"fmt"
)

// Verify checks the structural invariants every pass relies on: nodes are
// in topological order with IDs equal to their positions offset by base,
// every op is known, every argument is defined earlier, shapes agree with
// the op's shape rule, and leaf and loss declarations are consistent.
func Verify(nodes []*Node, base int, defined map[*Node]bool) error {
	if defined == nil {
		defined = map[*Node]bool{}
	}
	for i, n := range nodes {
		if n.ID != base+i {
			return fmt.Errorf("node %v at position %d: want ID %d", n, i, base+i)
		}
		if n.Op == nil || Lookup(n.Op.Name) != n.Op {
			return fmt.Errorf("node %v: unknown op", n)
		}
		if !n.Op.Leaf && n.Op.Arity >= 0 && len(n.Args) != n.Op.Arity {
			return fmt.Errorf("node %v: %s takes %d args, has %d", n, n.Op.Name, n.Op.Arity, len(n.Args))
		}
		for _, a := range n.Args {
			if !defined[a] {
				return fmt.Errorf("node %v: argument %v is not defined before it", n, a)
			}
		}
		if !n.Op.Leaf {
			s, err := n.Op.Shape(n)
			if err != nil {
				return fmt.Errorf("node %v (%s): %v", n, n.Op.Name, err)
			}
			if !s.Equal(n.Shape) {
				return fmt.Errorf("node %v (%s): shape %v, rule says %v", n, n.Op.Name, n.Shape, s)
			}
		}
		if n.Op == Reshape && n.Args[0].Shape.Elems() != n.Shape.Elems() {
			return fmt.Errorf("node %v: view changes the element count", n)
		}
		defined[n] = true
	}
	return nil
}

// Verify checks the forward graph.
func (g *Graph) Verify() error {
	defined := map[*Node]bool{}
	if err := Verify(g.Nodes, 0, defined); err != nil {
		return fmt.Errorf("%s: %v", g.File, err)
	}
	if g.Loss == nil {
		return fmt.Errorf("%s: no loss", g.File)
	}
	if !g.Loss.Shape.IsScalar() {
		return fmt.Errorf("%s: loss %s has shape %v, want a scalar", g.File, g.Loss.Name, g.Loss.Shape)
	}
	if g.Output == nil || !defined[g.Output] || !defined[g.Loss] {
		return fmt.Errorf("%s: loss or output not in the graph", g.File)
	}
	names := map[string]bool{}
	for _, n := range g.Nodes {
		if n.Name == "" {
			continue
		}
		if names[n.Name] {
			return fmt.Errorf("%s: two nodes named %q", g.File, n.Name)
		}
		names[n.Name] = true
	}
	return nil
}
