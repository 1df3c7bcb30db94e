package runtime

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// bceAllowed lists the functions whose per-element loops may keep bounds
// checks, with the reason: most never run in a training step; the strided
// ones (transposed views, permutes) only where a description asks for them.
var bceAllowed = map[string]string{
	// Strided gathers and scatters: the stride is known only at run time,
	// so the compiler cannot prove the indices in range; each checks its
	// last element once before the loop so that a bad stride panics there.
	"binaryRow":        "strided operands (transposed views; rare in generated code)",
	"BroadcastTo":      "strided source",
	"ReduceSum":        "strided destination",
	"Transpose":        "strided destination",
	"rtrlDirect":       "strided destination (a column of the sensitivity matrix)",
	"transposeStrided": "strided writes (packing a transposed block)",
	"Permute":          "strided source (an axis permutation: heads split and merged by a description's permute)",

	"GemmNaive":      "the reference product the GEMM tests compare against",
	"collapseDims":   "shape bookkeeping before a strided loop, once per call",
	"loadCheckpoint": "checkpoint I/O",
	"SaveTraining":   "checkpoint I/O",
	"toFileLayout":   "checkpoint I/O: axis bookkeeping",
	"permute":        "checkpoint I/O: layout conversion of a tensor file",
	"inverse":        "checkpoint I/O: axis bookkeeping",
}

// TestNoBoundsChecksInKernelLoops holds the issue's rule "no bounds checks
// in inner loops", verified the way it asks (-gcflags=-d=ssa/check_bce):
// it compiles this package's test binary (which instantiates the generic
// kernels for float32 and float64) for the default and the noasm build
// with the compiler's bounds-check report on, and fails on every check
// left in an innermost loop that calls no function per iteration (a loop
// over elements, as opposed to one over rows that calls a kernel per row),
// outside the functions of bceAllowed.
func TestNoBoundsChecksInKernelLoops(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package twice")
	}
	// The toolchain that built this test, else the first go on PATH.
	goCmd := filepath.Join(build.Default.GOROOT, "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	found := map[string]string{} // "file:line" → source line, for sorting
	for _, tags := range []string{"", "noasm"} {
		cmd := exec.Command(goCmd, "test", "-c", "-o", os.DevNull, "-tags", tags,
			"-gcflags=github.com/backpropgen/backpropgen/runtime=-d=ssa/check_bce", ".")
		out, err := cmd.CombinedOutput()
		if err != nil && !strings.Contains(string(out), "Found Is") {
			t.Fatalf("go test -c -tags=%q: %v\n%s", tags, err, out)
		}
		hits, err := bceInnerLoopChecks(string(out))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if _, ok := bceAllowed[h.fn]; !ok {
				found[fmt.Sprintf("%s:%d", h.file, h.line)] = fmt.Sprintf("%s:%d: %s (tags %q): %s", h.file, h.line, h.fn, tags, h.src)
			}
		}
	}
	if len(found) > 0 {
		var lines []string
		for _, l := range found {
			lines = append(lines, l)
		}
		sort.Strings(lines)
		t.Errorf("%d bounds checks in per-element loops (hoist them: reslice to the loop's length, or index a fixed-size array):\n%s",
			len(lines), strings.Join(lines, "\n"))
	}
}

type bceHit struct {
	file, fn, src string
	line          int
}

var bceLine = regexp.MustCompile(`^\.?/?([^/\s]+\.go):(\d+):\d+: Found (IsInBounds|IsSliceInBounds)`)

// bceInnerLoopChecks returns the compiler-reported bounds checks of this
// package's non-test files that sit in an innermost loop with no calls.
func bceInnerLoopChecks(report string) ([]bceHit, error) {
	lines := map[string][]int{}
	for _, l := range strings.Split(report, "\n") {
		m := bceLine.FindStringSubmatch(l)
		if m == nil || strings.HasSuffix(m[1], "_test.go") {
			continue
		}
		if _, err := os.Stat(m[1]); err != nil {
			continue // a file of another package (the standard library)
		}
		n, _ := strconv.Atoi(m[2])
		lines[m[1]] = append(lines[m[1]], n)
	}
	var hits []bceHit
	for file, ls := range lines {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			return nil, err
		}
		src, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		text := strings.Split(string(src), "\n")
		for _, l := range ls {
			fn, loop := bceEnclosing(fset, f, l)
			if loop == nil || bceHasLoopOrCall(loop) {
				continue
			}
			if r, ok := loop.(*ast.RangeStmt); ok && l <= fset.Position(r.Body.Lbrace).Line {
				continue // the range expression, evaluated once
			}
			hits = append(hits, bceHit{file: file, fn: fn, src: strings.TrimSpace(text[l-1]), line: l})
		}
	}
	return hits, nil
}

// bceEnclosing returns the function and the innermost loop around line l
// (a loop's header line counts as inside it).
func bceEnclosing(fset *token.FileSet, f *ast.File, l int) (fn string, loop ast.Node) {
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil || l < fset.Position(n.Pos()).Line || l > fset.Position(n.End()).Line {
			return false
		}
		switch x := n.(type) {
		case *ast.FuncDecl:
			fn = x.Name.Name
		case *ast.ForStmt, *ast.RangeStmt:
			loop = x
		}
		return true
	})
	return fn, loop
}

// bceHasLoopOrCall reports whether the loop contains another loop or
// calls a function per iteration; conversions, builtins and math
// intrinsics do not count.
func bceHasLoopOrCall(loop ast.Node) bool {
	found := false
	ast.Inspect(loop, func(n ast.Node) bool {
		if found {
			return false
		}
		switch x := n.(type) {
		case *ast.ForStmt, *ast.RangeStmt:
			found = n != loop
		case *ast.CallExpr:
			switch f := x.Fun.(type) {
			case *ast.Ident:
				switch f.Name {
				case "len", "cap", "min", "max", "float32", "float64", "int", "int32", "int64", "uint32", "uint64", "T":
					return true
				}
			case *ast.ParenExpr, *ast.ArrayType, *ast.IndexExpr:
				return true // conversions
			case *ast.SelectorExpr:
				if p, ok := f.X.(*ast.Ident); ok && (p.Name == "math" || p.Name == "unsafe") {
					return true
				}
			}
			found = true
		}
		return !found
	})
	return found
}
