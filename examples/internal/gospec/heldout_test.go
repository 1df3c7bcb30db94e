package gospec

import "testing"

// TestHeldOut checks the split against the arithmetic examples/gpt used
// before it called HeldOut (windows/10 of (n-1)/64 windows), for every
// length up to 300,000 bytes (the Go spec is about 290,000).
func TestHeldOut(t *testing.T) {
	for n := 1; n <= 300_000; n++ {
		all := (n - 1) / Window
		held := all / 10
		start, end := HeldOut(n, 0.1)
		if start != (all-held)*Window || end != all*Window+1 {
			t.Fatalf("HeldOut(%d, 0.1) = %d, %d; want %d, %d", n, start, end, (all-held)*Window, all*Window+1)
		}
		if end > n {
			t.Fatalf("HeldOut(%d, 0.1) ends at %d, past the text", n, end)
		}
	}
	if start, end := HeldOut(1000, 0); start != end-1 {
		t.Errorf("HeldOut(1000, 0) = %d, %d: want nothing held out (start = end-1)", start, end)
	}
	if start, _ := HeldOut(6401, 1); start != 0 {
		t.Errorf("HeldOut(6401, 1) starts at %d, want 0", start)
	}
}
