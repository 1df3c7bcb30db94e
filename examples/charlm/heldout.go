package main

import (
	"fmt"
	"math"

	"github.com/backpropgen/backpropgen/generated/charlm"
)

// heldOut is the held-out text as rows contiguous streams, one per batch
// row, for the validation loss: stream r reads data[from[r]:from[r+1]] as
// inputs and predicts the character after each, so the streams together
// predict every character of data but the first, once. The streams differ
// in length by at most one character.
//
// Each stream starts from a zero state, so its first characters are
// predicted with less context than the LSTM has later: that disadvantages
// the LSTM slightly, 32 times over the held-out text (examples/gpt
// restarts its context at each of its 64-byte windows, about 440 times over
// the same bytes). One stream would avoid it, but at one row per window a
// pass over the Go spec's held-out part takes about 1.4 s instead of 0.2 s
// (Infer(1) about 1 ms, Infer(32) about 5 ms here), a quarter of an epoch,
// and that time counts in the comparison with examples/gpt.
type heldOut struct {
	data []int32
	from [rows + 1]int // stream r's first input; from[rows] = len(data)-1
}

func newHeldOut(data []int32) (*heldOut, error) {
	if len(data) < rows+1 {
		return nil, fmt.Errorf("the held-out text has %d characters: want at least %d (one per stream and one more)", len(data), rows+1)
	}
	h := &heldOut{data: data}
	n := len(data) - 1 // characters predicted
	for r := range rows + 1 {
		h.from[r] = r*(n/rows) + min(r, n%rows)
	}
	return h, nil
}

// predicted is the number of characters the streams predict.
func (h *heldOut) predicted() int { return len(h.data) - 1 }

// windows is the number of windows over the longest stream; the last may be
// partial.
func (h *heldOut) windows() int { return (h.from[1] - h.from[0] + window - 1) / window }

// loss runs the streams through m, the state carried from each window to
// the next (zero at the start), and returns the mean cross-entropy of the
// predicted characters in nats. Only the positions within a stream count;
// the rest of a partial window reads zero inputs. It sets m.X, m.H0 and
// m.C0 and leaves the parameters as they are.
func (h *heldOut) loss(m *charlm.Model) (float64, error) {
	clear(m.H0)
	clear(m.C0)
	var sum float64
	for k := range h.windows() {
		if k > 0 {
			m.CarryState()
		}
		clear(m.X[:rows*window*numClasses])
		for r := range rows {
			for t := range window {
				if at := h.from[r] + k*window + t; at < h.from[r+1] {
					m.X[(r*window+t)*numClasses+int(h.data[at])] = 1
				}
			}
		}
		if err := m.Infer(rows); err != nil {
			return 0, fmt.Errorf("validation window %d: %w", k, err)
		}
		out := m.Output(rows)
		for r := range rows {
			for t := range window {
				at := h.from[r] + k*window + t
				if at >= h.from[r+1] {
					break
				}
				sum += crossEntropy(out[(r*window+t)*numClasses:][:numClasses], h.data[at+1])
			}
		}
	}
	return sum / float64(h.predicted()), nil
}

// crossEntropy is -log softmax(logits)[label], in float64.
func crossEntropy(logits []float32, label int32) float64 {
	hi := math.Inf(-1)
	for _, v := range logits {
		hi = max(hi, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - hi)
	}
	return hi + math.Log(sum) - float64(logits[label])
}
