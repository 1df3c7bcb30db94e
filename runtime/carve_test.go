package runtime

import "testing"

func TestCarver(t *testing.T) {
	buf := make([]float32, 100)
	c := NewCarver(buf, 16)
	a := c.At(0, 20)
	b := c.After(a, 5) // 20 rounds up to 32
	d := c.After(b, 16)
	e := c.At(0, 3) // a later view over a's first elements
	f := c.After(e, 1)
	for _, tc := range []struct {
		name     string
		v        []float32
		off, len int
	}{{"a", a, 0, 20}, {"b", b, 32, 5}, {"d", d, 48, 16}, {"e", e, 0, 3}, {"f", f, 16, 1}} {
		if len(tc.v) != tc.len || cap(tc.v) != tc.len {
			t.Errorf("%s: len %d cap %d, want %d", tc.name, len(tc.v), cap(tc.v), tc.len)
		}
		if &tc.v[0] != &buf[tc.off] {
			t.Errorf("%s does not start at element %d", tc.name, tc.off)
		}
	}
	// a's offset is still known after e starts at the same element: the
	// offset is a function of the start, the end comes from the view.
	if g := c.After(a, 1); &g[0] != &buf[32] {
		t.Error("After(a) after a view at a's start: wrong offset")
	}
	defer func() {
		if recover() == nil {
			t.Error("After of a foreign view did not panic")
		}
	}()
	c.After(make([]float32, 4), 1)
}
