package generated

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMLPBatch128MatchesMLP: mlpb128 is the seed's MLP at another batch
// size for the benchmarks, so its layers must stay those of mlp.
func TestMLPBatch128MatchesMLP(t *testing.T) {
	layers := func(path string) string {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(string(src), "\n") {
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "model ") || strings.HasPrefix(l, "batch ") {
				continue
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	if a, b := layers("mlp/mlp.bpg"), layers("mlpb128/mlpb128.bpg"); a != b {
		t.Errorf("mlpb128/mlpb128.bpg declares other layers than mlp/mlp.bpg:\n%s\nvs\n%s", b, a)
	}
}

// TestNoLoopsInGeneratedCode: the generated models run every loop in the
// runtime's kernels (whose per-element loops runtime's
// TestNoBoundsChecksInKernelLoops keeps free of bounds checks); the
// generated code only calls them, with the model's shapes as constants.
func TestNoLoopsInGeneratedCode(t *testing.T) {
	files, err := filepath.Glob("*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, "gen.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n.(type) {
			case *ast.ForStmt, *ast.RangeStmt:
				t.Errorf("%s: a loop in generated code; loops belong in runtime kernels", fset.Position(n.Pos()))
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no generated model files found")
	}
}
