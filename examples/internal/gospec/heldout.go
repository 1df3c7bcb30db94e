package gospec

import "math"

// Window is the length of the windows that the held-out part of a text is
// counted in: examples/gpt's context, 64 bytes.
const Window = 64

// HeldOut returns the part of a text of n bytes that the language-model
// examples hold out for validation, the same for examples/gpt and
// examples/charlm so that both are validated on the same bytes. The text
// has (n-1)/Window windows of Window bytes, each followed by the byte after
// it (its last label); the last ⌊fraction·windows⌋ of them are held out:
// text[start:end], whose first byte is only read (never predicted) and
// whose other end-start-1 bytes are predicted. Training reads text[:start];
// the bytes from end on (fewer than Window) are in neither part. held == 0
// (fraction 0, or a short text) means nothing is held out.
func HeldOut(n int, fraction float64) (start, end int) {
	if n < 1 {
		return 0, 0
	}
	windows := (n - 1) / Window
	held := int(math.Floor(fraction * float64(windows)))
	held = min(max(held, 0), windows)
	return (windows - held) * Window, windows*Window + 1
}
