package emit

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/backpropgen/backpropgen/ir"
)

// goIdent turns a description name (h1.W, logits.xW) into a Go identifier:
// dots and underscores start a new capitalized word, so h1.W → h1W and,
// exported, H1W.
func goIdent(name string, exported bool) string {
	var b strings.Builder
	up := exported
	for _, r := range name {
		if r == '.' || r == '_' || r == '%' {
			up = true
			continue
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			continue
		}
		if b.Len() == 0 && unicode.IsDigit(r) {
			b.WriteByte('v')
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		} else if b.Len() == 0 && !exported {
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "v"
	}
	return b.String()
}

// namer hands out unique Go identifiers.
type namer struct{ used map[string]bool }

func newNamer(reserved ...string) *namer {
	n := &namer{used: map[string]bool{}}
	for _, r := range reserved {
		n.used[r] = true
	}
	return n
}

func (n *namer) get(want string) string {
	name := want
	for i := 2; n.used[name] || goKeywords[name]; i++ {
		name = fmt.Sprintf("%s%d", want, i)
	}
	n.used[name] = true
	return name
}

var goKeywords = map[string]bool{
	"break": true, "case": true, "chan": true, "const": true, "continue": true, "default": true,
	"defer": true, "else": true, "fallthrough": true, "for": true, "func": true, "go": true, "goto": true,
	"if": true, "import": true, "interface": true, "map": true, "package": true, "range": true,
	"return": true, "select": true, "struct": true, "switch": true, "type": true, "var": true,
	"n": true, "m": true, "len": true, "cap": true, "copy": true, "append": true, "make": true, "new": true,
}

// label is a node's readable name for comments.
func label(n *ir.Node) string {
	if n.Name != "" {
		return n.Name
	}
	return fmt.Sprintf("%s%d", n.Op.Name, n.ID)
}
