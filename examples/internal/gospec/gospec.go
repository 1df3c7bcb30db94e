// Package gospec locates the text the language-model examples learn by
// default: the Go specification that ships with the Go toolchain.
package gospec

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
)

// Read reads the text at path, or the Go spec when path is "", and returns
// it with the path it read.
func Read(path string) ([]byte, string, error) {
	if path == "" {
		var err error
		if path, err = Path(); err != nil {
			return nil, "", err
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("reading the text: %w (name another file with -text)", err)
	}
	return text, path, nil
}

// Path is $(go env GOROOT)/doc/go_spec.html.
func Path() (string, error) {
	root, err := goroot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "doc", "go_spec.html"), nil
}

// goroot locates the Go installation: `go env GOROOT`, else the root this
// program was built with.
func goroot() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	root := strings.TrimSpace(string(out))
	if err == nil && root != "" {
		return root, nil
	}
	if err == nil {
		err = errors.New("printed nothing")
	}
	if root = goruntime.GOROOT(); root != "" { //nolint:staticcheck // only a fallback when the go command is missing
		return root, nil
	}
	return "", fmt.Errorf("cannot locate GOROOT (go env GOROOT: %v): name the text with -text", err)
}
