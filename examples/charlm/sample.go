package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/backpropgen/backpropgen/generated/charlm"
	"github.com/backpropgen/backpropgen/generated/charlmstep"
	"github.com/backpropgen/backpropgen/runtime"
)

// copyParams copies the parameters of the training model into the sampling
// model by name: charlm.bpg and charlmstep.bpg declare the same layers, so
// every tensor has the same name and shape in both.
func copyParams(dst *charlmstep.Model, src *charlm.Model) error {
	from := map[string]runtime.Tensor[float32]{}
	for _, t := range src.Tensors() {
		from[t.Name] = t
	}
	to := dst.Tensors()
	if len(to) != len(from) {
		return fmt.Errorf("charlm has %d parameter tensors, charlmstep %d: regenerate both from matching descriptions", len(from), len(to))
	}
	for _, t := range to {
		s, ok := from[t.Name]
		if !ok {
			return fmt.Errorf("charlmstep parameter %s has no counterpart in charlm: regenerate both from matching descriptions", t.Name)
		}
		if !slices.Equal(s.Shape, t.Shape) {
			return fmt.Errorf("parameter %s is %v in charlm but %v in charlmstep: regenerate both from matching descriptions", t.Name, s.Shape, t.Shape)
		}
		copy(t.Data, s.Data)
	}
	return nil
}

// sampler generates text one character at a time with charlmstep, the
// state carried from each character to the next through CarryState.
type sampler struct {
	m     *charlmstep.Model
	rng   *rand.Rand
	temp  float64   // softmax temperature; 0 picks the most likely character
	probs []float64 // scratch: the distribution of the next character
}

func newSampler(src *charlm.Model, temp float64, rng *rand.Rand) (*sampler, error) {
	if !(temp >= 0) || math.IsInf(temp, 0) {
		return nil, fmt.Errorf("temperature %v: want ≥ 0 (0: always the most likely character)", temp)
	}
	m := charlmstep.New()
	if len(m.X) != numClasses {
		return nil, fmt.Errorf("charlmstep takes %d inputs per step, not the %d classes of the alphabet", len(m.X), numClasses)
	}
	if err := copyParams(m, src); err != nil {
		return nil, err
	}
	return &sampler{m: m, rng: rng, temp: temp, probs: make([]float64, numClasses)}, nil
}

// feed runs one character through the model and carries the state, leaving
// the logits of the next character in s.m.Output(1).
func (s *sampler) feed(c int32) error {
	clear(s.m.X)
	s.m.X[c] = 1
	if err := s.m.Infer(1); err != nil {
		return err
	}
	s.m.CarryState()
	return nil
}

// next draws a class from softmax(logits/temp).
func (s *sampler) next() int32 {
	logits := s.m.Output(1)
	if s.temp == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return int32(best)
	}
	hi := float64(slices.Max(logits))
	var sum float64
	for i, v := range logits {
		p := math.Exp((float64(v) - hi) / s.temp)
		s.probs[i] = p
		sum += p
	}
	u := s.rng.Float64() * sum
	for i, p := range s.probs {
		if u < p {
			return int32(i)
		}
		u -= p
	}
	return int32(numClasses - 1) // rounding: u landed past the last bucket
}

// sample starts from a zero state, reads prime and returns prime followed
// by n generated characters. Bytes of prime outside the alphabet are read
// as ' ' (encode) but returned as given.
func (s *sampler) sample(prime string, n int) (string, error) {
	if prime == "" {
		return "", errors.New("empty prime: the sampler needs at least one character to start from")
	}
	clear(s.m.H0)
	clear(s.m.C0)
	for i := range len(prime) {
		if err := s.feed(encode(prime[i])); err != nil {
			return "", err
		}
	}
	out := []byte(prime)
	for range n {
		c := s.next()
		out = append(out, decode(c))
		if err := s.feed(c); err != nil {
			return "", err
		}
	}
	return string(out), nil
}
