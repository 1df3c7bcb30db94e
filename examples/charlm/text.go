package main

import (
	"fmt"

	"github.com/backpropgen/backpropgen/generated/charlm"
)

const (
	// numClasses is the size of the alphabet: '\t', '\n' and the 95
	// printable ASCII bytes ' ' (32) to '~' (126). It is charlm.bpg's 97.
	numClasses = 97
	// window is the number of time steps of one charlm window (charlm.bpg's
	// x: [20, 97]): truncated backpropagation through time over 20 steps.
	window = 20
	// rows is the number of parallel streams, one per batch row.
	rows = charlm.Batch
)

// encode maps a byte to its class in [0, numClasses): '\t' is 0, '\n' is 1
// and the printable ASCII bytes ' '..'~' are 2..96. Every other byte maps to
// the class of ' ': carriage returns, other control bytes, DEL and each byte
// of a multi-byte UTF-8 sequence (so the spec's “…” or ≤ become spaces, one
// per byte). decode(encode(b)) == b exactly for the 97 bytes of the alphabet.
func encode(b byte) int32 {
	switch {
	case b == '\t':
		return 0
	case b == '\n':
		return 1
	case b >= ' ' && b <= '~':
		return int32(b-' ') + 2
	}
	return 2 // the class of ' '
}

// decode is the inverse of encode: the byte of class c in [0, numClasses).
func decode(c int32) byte {
	switch c {
	case 0:
		return '\t'
	case 1:
		return '\n'
	}
	return byte(c-2) + ' '
}

// encodeText encodes every byte of text and counts the bytes outside the
// alphabet (mapped to ' ').
func encodeText(text []byte) (classes []int32, outside int) {
	classes = make([]int32, len(text))
	for i, b := range text {
		c := encode(b)
		if decode(c) != b {
			outside++
		}
		classes[i] = c
	}
	return classes, outside
}

// streams is the encoded text cut into rows contiguous streams of equal
// length, one per batch row: row r reads data[r*length : (r+1)*length].
// Window k of every stream holds its characters k*window .. k*window+window-1
// as inputs and the characters one further on as labels, so consecutive
// windows continue each other and the LSTM state carries across them.
type streams struct {
	data   []int32
	length int // characters per stream
}

// newStreams splits text into rows streams, dropping the remainder (fewer
// than rows characters). Every stream needs window+1 characters for one
// window with its labels.
func newStreams(text []int32) (streams, error) {
	length := len(text) / rows
	if length < window+1 {
		return streams{}, fmt.Errorf("text too short: %d characters, need at least %d (%d streams, one per batch row, of %d characters: a window of %d plus the label after it)",
			len(text), rows*(window+1), rows, window+1, window)
	}
	return streams{data: text[:rows*length], length: length}, nil
}

// windows is the number of whole windows (with their labels) in each stream.
func (s streams) windows() int { return (s.length - 1) / window }

// fill writes window k of every stream into x (rows, window, numClasses),
// one-hot, and its next characters into y (rows, window).
func (s streams) fill(k int, x []float32, y []int32) {
	clear(x[:rows*window*numClasses])
	for r := range rows {
		seq := s.data[r*s.length+k*window:][:window+1]
		for t := range window {
			i := r*window + t
			x[i*numClasses+int(seq[t])] = 1
			y[i] = seq[t+1]
		}
	}
}
