package emit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/ir"
)

// TestModelNamesReserved: every field and method a generated Model has
// that is not named after a tensor or a statement of its description is in
// modelNames, so that no tensor can be named like it (see
// TestOpGradients's reserved_names case).
func TestModelNamesReserved(t *testing.T) {
	files, _ := filepath.Glob("../generated/*/*.bpg")
	if len(files) < 10 {
		t.Fatalf("only %d reference descriptions", len(files))
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p := program(t, filepath.Base(file), src)
		g := newGen(p, Options{}, false, false)
		own := map[string]bool{}
		for _, m := range []map[*ir.Node]string{g.field, g.grad, g.scratch, g.aux, g.saved, g.inputAbs} {
			for _, name := range m {
				own[name] = true
			}
		}
		for _, st := range g.state {
			own[st[0]], own[st[1]] = true, true
		}
		for _, list := range [][]group{g.groups, g.bgroups, g.igroups, g.egroups} {
			for _, gr := range list {
				own[gr.fn] = true
			}
		}
		code, err := Generate(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, code, 0)
		if err != nil {
			t.Fatal(err)
		}
		var members []string
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil && recvName(d.Recv) == "Model" {
					members = append(members, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == "Model" {
						for _, fl := range ts.Type.(*ast.StructType).Fields.List {
							for _, n := range fl.Names {
								members = append(members, n.Name)
							}
						}
					}
				}
			}
		}
		for _, name := range members {
			perLayer := strings.HasPrefix(name, "NewRTRL") || strings.HasPrefix(name, "StepRTRL") || strings.HasPrefix(name, "GradRTRL")
			if !own[name] && !perLayer && !slices.Contains(modelNames, name) {
				t.Errorf("%s: Model's %s is neither named after the description nor in modelNames: add it there", file, name)
			}
		}
	}
}

func recvName(recv *ast.FieldList) string {
	x := recv.List[0].Type
	if s, ok := x.(*ast.StarExpr); ok {
		x = s.X
	}
	id, _ := x.(*ast.Ident)
	if id == nil {
		return ""
	}
	return id.Name
}
