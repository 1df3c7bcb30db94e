// Package desc reads backpropgen's model description language (files ending
// in .bpg) and lowers it to an ir.Graph.
//
// A description is line oriented; '#' starts a comment:
//
//	# mlp: the seed's feed-forward classifier
//	model mlp
//	batch 32                      # maximum rows per step; n ≤ 32 at run time
//	input  x: [784]               # float input, one row per example
//	label  y: class(10)           # int32 class index per row
//	h1     = dense(x, 128, relu)  # creates parameters h1.W (784, 128) and h1.b (128)
//	h2     = dense(h1, 64, relu)
//	logits = dense(h2, 10)
//	loss   = softmax_cross_entropy(logits, y)
//
// See the README for the whole language. Every error is reported as
// file:line:col: what is wrong and what to do.
package desc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/backpropgen/backpropgen/ir"
)

type tokKind uint8

const (
	tEOL tokKind = iota
	tIdent
	tNumber
	tPunct
)

type token struct {
	kind tokKind
	text string
	pos  ir.Pos
	num  float64
}

func (t token) String() string {
	switch t.kind {
	case tEOL:
		return "end of line"
	case tNumber:
		return "number " + t.text
	case tIdent:
		return "name " + strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

// Error is one problem in a description, at a place.
type Error struct {
	Pos ir.Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in a description, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// lexLine splits one line into tokens, ending with tEOL. On an error it
// also returns the tokens before the bad one, so the caller can still tell
// which name the line defines (and not report its later uses again).
func lexLine(file string, lineNo int, line string) ([]token, *Error) {
	var toks []token
	i := 0
	for i < len(line) {
		r, size := utf8.DecodeRuneInString(line[i:])
		pos := ir.Pos{File: file, Line: lineNo, Col: i + 1}
		fail := func(format string, args ...any) ([]token, *Error) {
			return toks, &Error{pos, fmt.Sprintf(format, args...)}
		}
		switch {
		case r == '#':
			i = len(line)
			continue
		case r == '\r' && strings.TrimLeft(line[i:], "\r") != "":
			return fail("carriage return (\\r) inside a line; save the file with Unix (\\n) or Windows (\\r\\n) line endings")
		case r == ' ' || r == '\t' || r == '\r':
			i += size
			continue
		case r == utf8.RuneError && size == 1:
			return fail("invalid UTF-8 byte 0x%02x; save the file as UTF-8 text", line[i])
		case r == '\ufeff':
			return fail("byte-order mark (U+FEFF) inside the file; delete it (only the very start of a file may hold one)")
		case r == '"' || r == '\'' || r == '`':
			return fail("unexpected quote %c: the language has no strings; write names and numbers without quotes", r)
		case r < ' ' || r == 0x7f:
			return fail("unexpected control character %U; delete it (is this a text file?)", r)
		case unicode.IsLetter(r) || r == '_':
			j := i
			for j < len(line) {
				r2, s2 := utf8.DecodeRuneInString(line[j:])
				if !(unicode.IsLetter(r2) || unicode.IsDigit(r2) || r2 == '_' || r2 == '.') {
					break
				}
				j += s2
			}
			text := line[i:j]
			if strings.HasSuffix(text, ".") || strings.Contains(text, "..") {
				return fail("malformed name %q: dots separate name parts, as in h1.W", text)
			}
			for _, c := range text {
				if c >= utf8.RuneSelf {
					return fail("name %q has the non-ASCII letter %q: names become Go identifiers of the generated package, so use ASCII letters, digits and _", text, c)
				}
			}
			toks = append(toks, token{kind: tIdent, text: text, pos: pos})
			i = j
		case r >= '0' && r <= '9' || r == '.' && i+1 < len(line) && line[i+1] >= '0' && line[i+1] <= '9':
			j := i
			for j < len(line) && (line[j] >= '0' && line[j] <= '9' || line[j] == '.' || line[j] == 'e' || line[j] == 'E' ||
				(line[j] == '-' || line[j] == '+') && (line[j-1] == 'e' || line[j-1] == 'E')) {
				j++
			}
			text := line[i:j]
			v, err := strconv.ParseFloat(text, 64)
			if err != nil {
				if errors.Is(err, strconv.ErrRange) {
					return fail("number %s is out of range: the largest number is about 1.8e308 (float64)", text)
				}
				return fail("malformed number %q: write numbers like 3, 0.5 or 1e-3", text)
			}
			toks = append(toks, token{kind: tNumber, text: text, pos: pos, num: v})
			i = j
		case strings.ContainsRune("=:,()[]+-*/@", r):
			toks = append(toks, token{kind: tPunct, text: string(r), pos: pos})
			i += size
		default:
			return fail("unexpected character %q; a line holds names, numbers, the operators + - * / @ and the marks = : , ( ) [ ], and # starts a comment", r)
		}
	}
	toks = append(toks, token{kind: tEOL, pos: ir.Pos{File: file, Line: lineNo, Col: len(line) + 1}})
	return toks, nil
}
