package desc

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
)

// Expressions of the right-hand side.
type (
	expr interface{ at() ir.Pos }

	numLit struct {
		pos ir.Pos
		val float64
		txt string
	}
	nameRef struct {
		pos  ir.Pos
		name string
	}
	unaryExpr struct {
		pos ir.Pos
		x   expr
	}
	binExpr struct {
		pos  ir.Pos
		op   string
		x, y expr
	}
	callExpr struct {
		pos  ir.Pos
		fn   string
		args []expr
		kw   []kwArg
	}
	listLit struct {
		pos   ir.Pos
		elems []expr
	}
	kwArg struct {
		pos  ir.Pos
		name string
		val  expr
	}
)

func (e *numLit) at() ir.Pos    { return e.pos }
func (e *nameRef) at() ir.Pos   { return e.pos }
func (e *unaryExpr) at() ir.Pos { return e.pos }
func (e *binExpr) at() ir.Pos   { return e.pos }
func (e *callExpr) at() ir.Pos  { return e.pos }
func (e *listLit) at() ir.Pos   { return e.pos }

// parser reads one line's tokens.
type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOL {
		p.i++
	}
	return t
}

func (p *parser) is(text string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == text
}

func (p *parser) expect(text, what string) (token, *Error) {
	t := p.next()
	if t.kind != tPunct || t.text != text {
		return t, &Error{t.pos, fmt.Sprintf("expected %q %s, found %v", text, what, t)}
	}
	return t, nil
}

func (p *parser) ident(what string) (token, *Error) {
	t := p.next()
	if t.kind != tIdent {
		return t, &Error{t.pos, fmt.Sprintf("expected %s, found %v", what, t)}
	}
	return t, nil
}

func (p *parser) end() *Error {
	if t := p.peek(); t.kind != tEOL {
		return &Error{t.pos, fmt.Sprintf("unexpected %v after the end of the statement; put one statement per line", t)}
	}
	return nil
}

const maxDepth = 100

// expr := term { ("+" | "-") term }
func (p *parser) expr() (expr, *Error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, &Error{p.peek().pos, "expression nested too deeply; split it over several lines"}
	}
	x, err := p.term()
	if err != nil {
		return nil, err
	}
	for p.is("+") || p.is("-") {
		op := p.next()
		y, err := p.term()
		if err != nil {
			return nil, err
		}
		x = &binExpr{op.pos, op.text, x, y}
	}
	return x, nil
}

// term := unary { ("*" | "/" | "@") unary }
func (p *parser) term() (expr, *Error) {
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.is("*") || p.is("/") || p.is("@") {
		op := p.next()
		y, err := p.unary()
		if err != nil {
			return nil, err
		}
		x = &binExpr{op.pos, op.text, x, y}
	}
	return x, nil
}

// unary := "-" unary | primary
func (p *parser) unary() (expr, *Error) {
	if p.is("-") {
		t := p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, &Error{t.pos, "expression nested too deeply; split it over several lines"}
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if n, ok := x.(*numLit); ok {
			return &numLit{t.pos, -n.val, "-" + n.txt}, nil
		}
		return &unaryExpr{t.pos, x}, nil
	}
	return p.primary()
}

// primary := number | name | name "(" args ")" | "(" expr ")" | "[" list "]"
func (p *parser) primary() (expr, *Error) {
	t := p.next()
	switch {
	case t.kind == tNumber:
		return &numLit{t.pos, t.num, t.text}, nil
	case t.kind == tIdent:
		if !p.is("(") {
			return &nameRef{t.pos, t.text}, nil
		}
		p.next()
		call := &callExpr{pos: t.pos, fn: t.text}
		for !p.is(")") {
			if p.peek().kind == tEOL {
				return nil, &Error{p.peek().pos, fmt.Sprintf("missing \")\" to close the call of %s opened at column %d", t.text, t.pos.Col)}
			}
			if len(call.args)+len(call.kw) > 0 {
				if _, err := p.expect(",", "between arguments"); err != nil {
					return nil, err
				}
				if p.is(")") {
					return nil, &Error{p.peek().pos, "trailing comma before \")\": remove it, or add the missing argument"}
				}
			}
			if p.is(",") {
				return nil, &Error{p.peek().pos, fmt.Sprintf("missing argument before \",\" in the call of %s", t.text)}
			}
			if a := p.peek(); a.kind == tIdent && p.toks[p.i+1].kind == tPunct && p.toks[p.i+1].text == "=" {
				p.next()
				p.next()
				if v := p.peek(); v.kind == tEOL || v.kind == tPunct && (v.text == "," || v.text == ")") {
					return nil, &Error{v.pos, fmt.Sprintf("missing the value of %s= (as in %s=%s)", a.text, a.text, kwExample(a.text))}
				}
				v, err := p.expr()
				if err != nil {
					return nil, err
				}
				call.kw = append(call.kw, kwArg{a.pos, a.text, v})
				continue
			}
			if len(call.kw) > 0 {
				return nil, &Error{p.peek().pos, "positional argument after a keyword argument; put positional arguments first"}
			}
			if p.peek().kind == tEOL {
				return nil, &Error{p.peek().pos, fmt.Sprintf("missing \")\" to close the call of %s opened at column %d", t.text, t.pos.Col)}
			}
			a, err := p.expr()
			if err != nil {
				return nil, err
			}
			call.args = append(call.args, a)
		}
		p.next()
		return call, nil
	case t.kind == tPunct && t.text == "(":
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek().kind == tEOL {
			return nil, &Error{p.peek().pos, fmt.Sprintf("missing \")\" to close the parenthesis opened at column %d", t.pos.Col)}
		}
		if _, err := p.expect(")", fmt.Sprintf("to close the parenthesis opened at column %d", t.pos.Col)); err != nil {
			return nil, err
		}
		return x, nil
	case t.kind == tPunct && t.text == "[":
		l := &listLit{pos: t.pos}
		for !p.is("]") {
			if p.peek().kind == tEOL {
				return nil, &Error{p.peek().pos, fmt.Sprintf("missing \"]\" to close the list opened at column %d", t.pos.Col)}
			}
			if len(l.elems) > 0 {
				if _, err := p.expect(",", "between list elements"); err != nil {
					return nil, err
				}
			}
			if p.peek().kind == tEOL {
				return nil, &Error{p.peek().pos, fmt.Sprintf("missing \"]\" to close the list opened at column %d", t.pos.Col)}
			}
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			l.elems = append(l.elems, e)
		}
		p.next()
		return l, nil
	case t.kind == tEOL:
		return nil, &Error{t.pos, "expression ends too early; complete it on this line"}
	case t.kind == tPunct && (t.text == "," || t.text == ")" || t.text == "]"):
		return nil, &Error{t.pos, fmt.Sprintf("missing an expression before %v", t)}
	}
	return nil, &Error{t.pos, fmt.Sprintf("unexpected %v in an expression", t)}
}

// kwExample is a plausible value for a keyword argument, for messages.
func kwExample(name string) string {
	switch name {
	case "activation":
		return "relu"
	case "init", "recurrent_init":
		return "he_uniform"
	case "padding":
		return "same"
	case "bias", "keepdims", "return_sequences":
		return "true"
	case "axis":
		return "1"
	case "initial":
		return "h0"
	}
	return "2"
}
