package emit

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/ir/desc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestEveryOpHasKernel(t *testing.T) {
	for _, op := range ir.Ops() {
		if _, ok := kernels[op]; !ok {
			t.Errorf("op %s has no kernel in emit's table", op.Name)
		}
	}
}

func program(t *testing.T, name string, src []byte) *derive.Program {
	t.Helper()
	g, err := desc.Parse(name, src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := derive.Derive(g, derive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGolden compares model → IR → Go with testdata/*.txtar. Each archive
// holds model.bpg and the expected ir and model.go; go test -update
// rewrites the expectations (see testdata/README.md).
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txtar")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var src []byte
			for _, f := range ar.Files {
				if f.Name == "model.bpg" {
					src = f.Data
				}
			}
			p := program(t, "model.bpg", src)
			var irText bytes.Buffer
			irText.WriteString(p.String())
			code, err := Generate(p, Options{Command: "backpropgen model.bpg"})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{"ir": irText.Bytes(), "model.go": code}
			if *update {
				ar.Files = []txtar.File{{Name: "model.bpg", Data: src}, {Name: "ir", Data: got["ir"]}, {Name: "model.go", Data: got["model.go"]}}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, f := range ar.Files {
				if want, ok := got[f.Name]; ok && !bytes.Equal(f.Data, want) {
					t.Errorf("%s differs from the golden file; if the change is intended, run go test ./emit -update\n%s", f.Name, firstDiff(string(f.Data), string(want)))
				}
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return fmtInt(i/10) + string(rune('0'+i%10))
}

// generateBoth returns the model file and then the test file generated
// from the description src.
func generateBoth(t *testing.T, name string, src []byte) string {
	t.Helper()
	p := program(t, name, src)
	a, err := Generate(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateTest(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return string(a) + string(b)
}

// TestDeterministic generates the same description twice, from separate
// parses, and wants identical bytes.
func TestDeterministic(t *testing.T) {
	src, err := os.ReadFile("../generated/mlp/mlp.bpg")
	if err != nil {
		t.Fatal(err)
	}
	var outs [2]string
	for i := range outs {
		outs[i] = generateBoth(t, "mlp.bpg", src)
	}
	if outs[0] != outs[1] {
		t.Fatal("two runs generated different code")
	}
}

// editedDescription returns the description in file and a copy with old
// replaced by new.
func editedDescription(t *testing.T, file, old, new string) (src, changed []byte) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	changed = bytes.Replace(src, []byte(old), []byte(new), 1)
	if bytes.Equal(changed, src) {
		t.Fatalf("%s no longer has %q: test description out of date", file, old)
	}
	return src, changed
}

// TestLocalDiff: changing one layer of a description changes only the lines
// of that layer (and the sizes that depend on it), so reviews stay small.
func TestLocalDiff(t *testing.T) {
	src, changed := editedDescription(t, "../generated/mlp/mlp.bpg", "h2     = dense(h1, 64, relu, init=he_uniform)", "h2     = dense(h1, 64, tanh, init=he_uniform)")
	a, _ := Generate(program(t, "mlp.bpg", src), Options{})
	b, _ := Generate(program(t, "mlp.bpg", changed), Options{})
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	if len(la) != len(lb) {
		t.Fatalf("line count changed: %d → %d", len(la), len(lb))
	}
	var diff []string
	for i := range la {
		if la[i] != lb[i] {
			diff = append(diff, lb[i])
		}
	}
	// The package comment's description line, the two functions' comments,
	// the two kernel calls and their step comments, and the two kernels'
	// anomaly checks.
	if len(diff) > 9 {
		t.Errorf("changing one activation changed %d lines:\n%s", len(diff), strings.Join(diff, "\n"))
	}
	for _, d := range diff {
		if !strings.Contains(d, "h2") && !strings.Contains(d, "Tanh") && !strings.Contains(d, "tanh") {
			t.Errorf("unrelated line changed: %s", d)
		}
	}
}

// TestLocalDiffBuffers: a change to one layer that drops one of its buffers
// (gelu → relu fuses the activation into the product, so fc3.z goes) moves
// only the lines of that layer and of its neighbours in the memory plan,
// in the model and in its test file: no offset or index of a later buffer
// changes. A layer inserted between two others adds its own lines and
// moves the description lines that the later statements cite, nothing
// else.
func TestLocalDiffBuffers(t *testing.T) {
	citedLine := regexp.MustCompile(`gpt\.bpg:[0-9]+`)
	for _, c := range []struct {
		name, old, new string
		// Today's count of changed lines over both files, and the bound.
		today, bound int
		// Whether the lines that cite the description are compared
		// without their line numbers.
		uncited bool
		// Whether every changed line must name fc3 (the sizes aside).
		onlyFc3 bool
	}{
		// The forward, backward and decoder step of fc3, its buffer and
		// its checks, three placements, the sizes.
		{"drop a buffer", "fc3    = dense(ln3b, 512, gelu)", "fc3    = dense(ln3b, 512, relu)", 69, 80, false, true},
		// fc3b's buffers, placements, statements, checks, parameters and
		// their tests; 713 lines with the cited line numbers.
		{"insert a layer", "x3     = r3 + dense(fc3, 128)", "fc3b   = dense(fc3, 512, gelu)\nx3     = r3 + dense(fc3b, 128)", 259, 280, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, changed := editedDescription(t, "../generated/gpt/gpt.bpg", c.old, c.new)
			a, b := generateBoth(t, "gpt.bpg", src), generateBoth(t, "gpt.bpg", changed)
			if c.uncited {
				a, b = citedLine.ReplaceAllString(a, "gpt.bpg:_"), citedLine.ReplaceAllString(b, "gpt.bpg:_")
			}
			// The lines in one output and not in the other (as
			// multisets): every line a moved offset or index would
			// change is among them.
			count := map[string]int{}
			for _, l := range strings.Split(a, "\n") {
				count[l]++
			}
			for _, l := range strings.Split(b, "\n") {
				count[l]--
			}
			var diff []string
			n := 0
			for l, k := range count {
				if k != 0 {
					diff = append(diff, l)
					n += max(k, -k)
				}
			}
			sort.Strings(diff)
			if n > c.bound {
				t.Errorf("changed %d lines (%d when the test was written):\n%s", n, c.today, strings.Join(diff, "\n"))
			}
			for _, d := range diff {
				if t := strings.TrimSpace(d); !c.onlyFc3 || t == "}" || t == "" {
					continue // the end of a dropped check
				}
				if !strings.Contains(strings.ToLower(d), "fc3") && !strings.Contains(d, "ArenaSize") && !strings.Contains(d, "A Decoder has buffers of its own") {
					t.Errorf("unrelated line changed: %s", d)
				}
			}
		})
	}
}
