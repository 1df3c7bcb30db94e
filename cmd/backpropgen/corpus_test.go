package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the recorded outputs in testdata")

// TestErrorCorpus runs the command on every malformed description in
// testdata/errors/*.txtar (see testdata/README.md) and requires, for each,
// exactly the recorded exit status and standard error: every fault reported
// once, at its file:line:col, with what to do, and nothing else. It also
// requires that nothing was written next to the description. go test
// -update rewrites the recorded outputs.
func TestErrorCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/errors/*.txtar")
	total := 0
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cases := corpusCases(t, ar)
		total += len(cases)
		for i := range cases {
			c := &cases[i]
			t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar")+"/"+c.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, c.name+".bpg")
				if err := os.WriteFile(path, unescape(c.src), 0o644); err != nil {
					t.Fatal(err)
				}
				code, stdout, stderr := runCLI(append(strings.Fields(string(c.args)), path)...)
				got := fmt.Sprintf("exit %d\n%s", code, strings.ReplaceAll(stderr, dir+string(filepath.Separator), "$DIR/"))
				if *update {
					c.want = []byte(got)
				} else if got != string(c.want) {
					t.Errorf("got\n%s\nwant\n%s(if the change is intended, rewrite the recorded outputs with go test ./cmd/backpropgen -run ErrorCorpus -update)", got, c.want)
				}
				if code == 0 || stdout != "" {
					t.Errorf("exit %d, stdout %q: a corpus case must fail and print only on standard error", code, stdout)
				}
				checkErrorLines(t, c.name, code, stderr)
				entries, _ := os.ReadDir(dir)
				if len(entries) != 1 {
					var names []string
					for _, e := range entries {
						names = append(names, e.Name())
					}
					t.Errorf("files next to the description after a failed run: %v; want only %s.bpg", names, c.name)
				}
			})
		}
		if *update {
			ar.Files = nil
			for _, c := range cases {
				ar.Files = append(ar.Files, txtar.File{Name: c.name + ".bpg", Data: c.src})
				if c.args != nil {
					ar.Files = append(ar.Files, txtar.File{Name: c.name + ".args", Data: c.args})
				}
				ar.Files = append(ar.Files, txtar.File{Name: c.name + ".want", Data: c.want})
			}
			if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if total < 150 {
		t.Errorf("the corpus holds %d cases; keep at least 150", total)
	}
}

// corpusCase is one malformed description: NAME.bpg, the optional
// NAME.args (flags, separated by spaces) and NAME.want (the line "exit N",
// then standard error). In a .bpg file, the escapes \r, \xNN and \ufeff
// stand for bytes an archive cannot show.
type corpusCase struct {
	name            string
	src, args, want []byte
}

func corpusCases(t *testing.T, ar *txtar.Archive) []corpusCase {
	var cases []corpusCase
	for _, f := range ar.Files {
		name, ext, _ := strings.Cut(f.Name, ".")
		switch {
		case ext == "bpg":
			cases = append(cases, corpusCase{name: name, src: f.Data})
		case len(cases) == 0 || cases[len(cases)-1].name != name:
			t.Fatalf("%s does not follow %s.bpg", f.Name, name)
		case ext == "args":
			cases[len(cases)-1].args = f.Data
		case ext == "want":
			cases[len(cases)-1].want = f.Data
		default:
			t.Fatalf("unknown file %s in the corpus", f.Name)
		}
	}
	for _, c := range cases {
		if c.want == nil && !*update {
			t.Fatalf("%s.bpg has no %s.want (go test -update records it)", c.name, c.name)
		}
	}
	return cases
}

var escape = regexp.MustCompile(`\\(r|x[0-9a-fA-F]{2}|ufeff)`)

func unescape(b []byte) []byte {
	return escape.ReplaceAllFunc(b, func(m []byte) []byte {
		switch {
		case string(m) == `\r`:
			return []byte{'\r'}
		case string(m) == `\ufeff`:
			return []byte("\ufeff")
		}
		v, _ := strconv.ParseUint(string(m[2:]), 16, 8)
		return []byte{byte(v)}
	})
}

// checkErrorLines: a description error (exit 1) is one line per fault, each
// starting with its place; a usage error (exit 2) names the command.
func checkErrorLines(t *testing.T, name string, code int, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		switch code {
		case 1:
			if !strings.HasPrefix(l, name+".bpg:") {
				t.Errorf("error line %q does not start with %s.bpg:line:col", l, name)
			}
		case 2:
			if !strings.HasPrefix(l, "backpropgen: ") {
				t.Errorf("usage error line %q does not start with backpropgen:", l)
			}
		}
		if seen[l] {
			t.Errorf("error reported twice: %q", l)
		}
		seen[l] = true
	}
	dump := regexp.MustCompile(`(?m)^(package|func|import|usage:) `)
	if dump.MatchString(stderr) || len(lines) > 11 {
		t.Errorf("standard error looks like a dump, not one line per fault:\n%s", stderr)
	}
}
