package derive

import (
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/ir"
)

// tinyGPT is emit/testdata/decoder.txtar's model with the attention's
// causal flag and the line after it as parameters.
func tinyGPT(causal, tail string) string {
	return `model tiny
batch 2
input  t: [4] tokens(5)
label  y: [4] class(5)
param  wpe: [4, 8] init lecun_normal
x0     = embedding(t, 8) + wpe
qkv    = dense(layer_norm(x0), 24)
x1     = x0 + dense(attention(qkv, 2, causal=` + causal + `), 8)
` + tail + `
loss   = softmax_cross_entropy(logits, y)
`
}

// TestDecode: a token model of position-wise ops and causal attention runs
// a position at a time; the step's batched nodes are copies at one
// position with their Infer node's ID (its slot), the position table is
// read per position, and the attention keeps a cache. Anything that mixes
// positions gets no Decode and a reason naming it.
func TestDecode(t *testing.T) {
	p := derive(t, tinyGPT("true", "logits = layer_norm(x1) @ transpose(x0.W)"), Options{})
	d := p.Decode
	if d == nil {
		t.Fatalf("no Decode: %s", p.NoDecode)
	}
	if d.Steps != 4 || len(d.Cached) != 1 || d.Cached[0].Op != ir.Attention {
		t.Fatalf("Steps %d, Cached %v: want 4 positions and one attention", d.Steps, d.Cached)
	}
	if len(d.Nodes) != len(p.Infer) {
		t.Errorf("%d step nodes for Infer's %d", len(d.Nodes), len(p.Infer))
	}
	for i, c := range d.Nodes {
		o := p.Infer[i]
		if d.Orig[c] != o || c.ID != o.ID || c.Op != o.Op {
			t.Fatalf("step node %d (%s) does not stand for Infer's %s with its ID", i, c.Label(), o.Label())
		}
		if c.Shape[1].Size != 1 || len(c.Shape) != len(o.Shape) {
			t.Errorf("%s is %v at one position, from %v", c.Label(), c.Shape, o.Shape)
		}
	}
	if d.Output != d.Nodes[len(d.Nodes)-1] || d.Orig[d.Output] != p.Graph.Output {
		t.Errorf("output %s is not the step's copy of %s", d.Output.Label(), p.Graph.Output.Label())
	}
	if len(d.PerPosition) != 1 {
		t.Fatalf("PerPosition %v: want the position table only", d.PerPosition)
	}
	for c, per := range d.PerPosition {
		if d.Orig[c].Name != "wpe" || per != 8 || !c.Shape.Equal(ir.Shape{{Size: 1}, {Size: 8}}) {
			t.Errorf("per position: %s %v with %d elements a position, want wpe (1, 8) with 8", c.Label(), c.Shape, per)
		}
	}

	for _, tc := range []struct{ name, src, why string }{
		{"bidirectional", tinyGPT("false", "logits = layer_norm(x1) @ transpose(x0.W)"), "x1.attention (attention, line 8) mixes the positions"},
		{"float inputs", mlp(t), "inputs other than one sequence of tokens"},
		{"recurrent", `model rnn
batch 2
input  t: [4] tokens(5)
label  y: [4] class(5)
e      = embedding(t, 8)
h      = lstm(e, 8, return_sequences=true)
logits = dense(h, 5)
loss   = softmax_cross_entropy(logits, y)
`, "h (rnn, line 6) mixes the positions"},
	} {
		p := derive(t, tc.src, Options{})
		if p.Decode != nil || !strings.Contains(p.NoDecode, tc.why) {
			t.Errorf("%s: Decode %v, reason %q: want none, saying %q", tc.name, p.Decode != nil, p.NoDecode, tc.why)
		}
	}
}
