package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestTutorial follows the README's tutorial as a new user would: in a
// fresh directory beside a checkout of this repository (a link named
// backpropgen), it writes every file the tutorial shows and runs every
// command block it shows, in order, with the environment of the test minus
// GOFLAGS, so a README that drifts from what works fails here. Blocks are
// marked in README.md with an HTML comment before them:
//
//	<!-- tutorial file: PATH -->      the next fenced block is the file PATH
//	<!-- tutorial commands -->        the next fenced block is run by sh -e
func TestTutorial(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go mod tidy, generate, test and a training program; skipped with -short")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps := tutorialSteps(string(readme))
	files, commands := 0, 0
	for _, s := range steps {
		if s.file != "" {
			files++
		} else {
			commands++
		}
	}
	if files < 3 || commands < 3 {
		t.Fatalf("README.md marks %d files and %d command blocks for the tutorial; want its model, gen.go and program, and the commands to set up, generate and run", files, commands)
	}

	top := t.TempDir()
	if err := os.Symlink(root, filepath.Join(top, "backpropgen")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "tutorial")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			env = append(env, kv)
		}
	}
	var out string
	for _, s := range steps {
		if s.file != "" {
			path := filepath.Join(dir, filepath.FromSlash(s.file))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(s.body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		cmd := exec.Command("sh", "-e", "-x", "-c", s.body)
		cmd.Dir, cmd.Env = dir, env
		b, err := cmd.CombinedOutput()
		out = string(b)
		if err != nil {
			t.Fatalf("README tutorial, after line %d:\n%s\nfailed: %v\n%s", s.line, s.body, err, out)
		}
	}
	// The last block runs the training program: it must learn the toy
	// task and leave its checkpoint.
	if !regexp.MustCompile(`accuracy (9[5-9]|100)\.\d% on 500 new examples`).MatchString(out) {
		t.Errorf("the tutorial's program did not reach 95%% accuracy:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "mlp.safetensors")); err != nil {
		t.Errorf("the tutorial's program wrote no checkpoint: %v", err)
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(gomod), "tool github.com/backpropgen/backpropgen/cmd/backpropgen") {
		t.Errorf("go.mod has no tool directive after the tutorial:\n%s", gomod)
	}
}

// tutorialStep is a file to write (file set) or commands to run.
type tutorialStep struct {
	file, body string
	line       int
}

var tutorialMark = regexp.MustCompile(`(?m)^<!-- tutorial (file: (\S+)|commands) -->\n`)

// tutorialSteps returns the marked fenced blocks of readme, in order.
func tutorialSteps(readme string) []tutorialStep {
	var steps []tutorialStep
	for _, m := range tutorialMark.FindAllStringSubmatchIndex(readme, -1) {
		rest := readme[m[1]:]
		open := strings.Index(rest, "\n")
		if !strings.HasPrefix(rest, "```") || open < 0 {
			continue
		}
		body := rest[open+1:]
		end := strings.Index(body, "\n```")
		if end < 0 {
			continue
		}
		s := tutorialStep{body: body[:end+1], line: strings.Count(readme[:m[0]], "\n") + 1}
		if m[4] >= 0 {
			s.file = readme[m[4]:m[5]]
		}
		steps = append(steps, s)
	}
	return steps
}
