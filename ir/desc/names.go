package desc

import (
	"fmt"
	gotoken "go/token"
	"strings"
)

// The model's name becomes the generated package's name (lower-cased) and
// its file's name (<name>.go, <name>_test.go), so it must be a name the Go
// toolchain takes as both: checked here, where it is read, so that no
// description reaches the emitter with a name that cannot compile or a file
// that go build would skip or build only on some systems.

// Suffixes of Go file names that are build constraints (go/build's
// syslist.go): a file named x_linux.go builds only on Linux.
var (
	goosNames   = strings.Fields("aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 solaris wasip1 windows zos")
	goarchNames = strings.Fields("386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 mips64le mips64p32 mips64p32le ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 wasm")
)

// CheckPackageName reports why name cannot name a generated package (the
// -pkg flag, or a model name's lower-cased form), or nil.
func CheckPackageName(name string) error {
	switch {
	case !isGoIdent(name):
		return fmt.Errorf("%q is not a Go identifier: use ASCII letters, digits and _, not starting with a digit", name)
	case gotoken.IsKeyword(name):
		return fmt.Errorf("%q is a Go keyword and cannot name a package; pick another name", name)
	case name == "_":
		return fmt.Errorf("_ cannot name a package; pick another name")
	}
	return nil
}

// checkModelName reports why name cannot be a model's name, or nil.
func checkModelName(name string) error {
	pkg := strings.ToLower(name)
	if err := CheckPackageName(pkg); err != nil {
		if !isGoIdent(name) || name == "_" {
			return fmt.Errorf("model name %q must be a Go identifier (ASCII letters, digits and _, not starting with a digit)", name)
		}
		return fmt.Errorf("model name %q: the generated package would be named %s, which is a Go keyword; pick another name", name, pkg)
	}
	if strings.HasPrefix(name, "_") {
		return fmt.Errorf("model name %q would write %s.go, which go build ignores (it starts with _); pick a name starting with a letter", name, pkg)
	}
	if pkg == "main" {
		return fmt.Errorf("model name %q would write main.go in package main, where a program's own main.go lives; pick another name (and -pkg main to generate into a main package)", name)
	}
	parts := strings.Split(pkg, "_")
	last := parts[len(parts)-1]
	if len(parts) > 1 && last == "test" {
		return fmt.Errorf("model name %q would write %s.go, which Go treats as a test file; pick a name not ending in _test", name, pkg)
	}
	for _, list := range [][]string{goosNames, goarchNames} {
		for _, sys := range list {
			if len(parts) > 1 && last == sys {
				return fmt.Errorf("model name %q would write %s.go, which Go builds only for %s (a build constraint in the file name); pick a name not ending in _%s", name, pkg, sys, sys)
			}
		}
	}
	return nil
}
