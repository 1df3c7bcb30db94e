package modeltest

import "testing"

var sink [][]byte

//go:noinline
func allocates(n int) {
	for range n {
		sink = append(sink, make([]byte, 100))
	}
}

//go:noinline
func quiet(x []float32) {
	for i := range x {
		x[i]++
	}
}

// TestAllocsInside counts what a function allocates and nothing else: the
// allocations of the calling test (its own slice of results here) are not
// counted.
func TestAllocsInside(t *testing.T) {
	sink = make([][]byte, 0, 16) // so that append inside allocates does not grow it
	if o, _ := AllocsInside(".allocates", func() { allocates(7) }); o != 7 {
		t.Errorf("allocates(7): %d objects, want 7", o)
	}
	x := make([]float32, 10)
	if o, b := AllocsInside(".quiet", func() { quiet(x); sink = append(sink, make([]byte, 50)) }); o != 0 {
		t.Errorf("quiet: %d objects (%d bytes), want 0", o, b)
	}
	sink = nil
}
