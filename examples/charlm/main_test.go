package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/examples/internal/gospec"
	"github.com/backpropgen/backpropgen/generated/charlm"
	"github.com/backpropgen/backpropgen/runtime"
	"github.com/backpropgen/backpropgen/runtime/train"
)

// inAlphabet reports whether b is one of the 97 bytes encode keeps.
func inAlphabet(b byte) bool { return b == '\t' || b == '\n' || (b >= ' ' && b <= '~') }

// synthetic returns a repeated sentence long enough for windows windows
// of every stream.
func synthetic(windows int) []byte {
	const sentence = "the quick brown fox jumps over the lazy dog.\n"
	need := rows * (windows*window + 1)
	return []byte(strings.Repeat(sentence, need/len(sentence)+1))
}

func TestEncodeDecode(t *testing.T) {
	seen := map[int32]bool{}
	for i := range 256 {
		b := byte(i)
		c := encode(b)
		if c < 0 || c >= numClasses {
			t.Fatalf("encode(%q) = %d: outside [0, %d)", b, c, numClasses)
		}
		if inAlphabet(b) {
			if got := decode(c); got != b {
				t.Errorf("decode(encode(%q)) = %q", b, got)
			}
			seen[c] = true
		} else if c != encode(' ') {
			t.Errorf("encode(%q) = %d: want the class of ' ', %d", b, c, encode(' '))
		}
	}
	if len(seen) != numClasses {
		t.Errorf("the alphabet's bytes use %d classes, want %d", len(seen), numClasses)
	}
	for c := range int32(numClasses) {
		if got := encode(decode(c)); got != c {
			t.Errorf("encode(decode(%d)) = %d", c, got)
		}
	}
	classes, outside := encodeText([]byte("a\r\nb“c”"))
	if outside != 7 || len(classes) != 11 { // \r and 2×3 bytes of the quotes
		t.Errorf("encodeText: %d classes, %d outside the alphabet; want 11 and 7", len(classes), outside)
	}
}

func TestShortText(t *testing.T) {
	cfg := Config{Epochs: 1, LR: 1e-3, Clip: 5, Temp: 1, Seed: 1, SampleLen: 10, Prime: "a"}
	text := []byte(strings.Repeat("x", rows*(window+1)-1))
	_, err := Train(context.Background(), cfg, "short.txt", text, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "text too short") {
		t.Fatalf("Train on %d bytes: err = %v, want \"text too short\"", len(text), err)
	}
	if _, err := Train(context.Background(), cfg, "ok.txt", append(text, 'x'), &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatalf("Train on exactly one window per stream: %v", err)
	}
}

// TestCarryState checks that every step starts from the state the previous
// one ended with, and that an epoch starts from zero.
func TestCarryState(t *testing.T) {
	cfg := Config{Epochs: 2, Steps: 3, LR: 2e-3, Clip: 5, Seed: 3, Quiet: true}
	var prevH, prevC []float32
	steps := 0
	cfg.callbacks = func(m *charlm.Model) []train.Callback {
		return []train.Callback{{
			// Runs before the program's AfterGradients carries the state: H0
			// and C0 are still this step's initial state.
			AfterGradients: func(s *train.Step) error {
				steps++
				if s.Step == 0 {
					if slices.ContainsFunc(m.H0, func(v float32) bool { return v != 0 }) || slices.ContainsFunc(m.C0, func(v float32) bool { return v != 0 }) {
						t.Errorf("epoch %d: H0/C0 not zero at the start", s.Epoch)
					}
				} else {
					if !slices.Equal(m.H0, prevH) || !slices.Equal(m.C0, prevC) {
						t.Errorf("step %d: H0/C0 are not the final state of step %d", s.Global, s.Global-1)
					}
					if !slices.ContainsFunc(m.H0, func(v float32) bool { return v != 0 }) {
						t.Errorf("step %d: carried H0 is all zero", s.Global)
					}
				}
				h, c := m.FinalState("h")
				prevH, prevC = slices.Clone(h), slices.Clone(c)
				return nil
			},
		}}
	}
	if _, err := Train(context.Background(), cfg, "synthetic", synthetic(4), &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if steps != 6 {
		t.Errorf("%d steps, want 6", steps)
	}
}

// TestResumeCarried stops a run in the middle of an epoch and resumes it:
// the checkpoint carries the LSTM state, so the parameters end as those of
// an uninterrupted run, bit for bit.
func TestResumeCarried(t *testing.T) {
	text := synthetic(6)
	cfg := Config{Epochs: 2, Steps: 5, HoldOut: 0.1, LR: 2e-3, Clip: 5, Seed: 3, Quiet: true}
	ref, err := Train(context.Background(), cfg, "synthetic", text, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Checkpoint = filepath.Join(t.TempDir(), "charlm.safetensors")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.callbacks = func(*charlm.Model) []train.Callback {
		return []train.Callback{{StepEnd: func(s *train.Step) error {
			if s.Global == 2 {
				cancel()
			}
			return nil
		}}}
	}
	var out bytes.Buffer
	res, err := Train(ctx, cfg, "synthetic", text, &out, &bytes.Buffer{})
	if err != nil || !res.Fit.Interrupted || !strings.Contains(out.String(), "holds the run; resume from it to continue") {
		t.Fatalf("interrupted run: %v, %+v\n%s", err, res.Fit, out.String())
	}
	cfg.callbacks, cfg.Resume = nil, true
	res, err = Train(context.Background(), cfg, "synthetic", text, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Model.Params, ref.Model.Params) {
		t.Error("resumed run's parameters differ from the uninterrupted run's")
	}
	for e, want := range ref.Fit.Epochs {
		if got := res.Fit.Epochs[e].Values["val_loss"]; got != want.Values["val_loss"] || got == 0 {
			t.Errorf("epoch %d: val_loss %v after resuming, %v uninterrupted", e+1, got, want.Values["val_loss"])
		}
	}
}

// TestHeldOutLoss checks the validation loss against two direct
// computations: charlmstep fed each stream one character at a time from a
// zero state, with streams whose last window is partial; and, when the
// streams fill whole windows, the mean of charlm's own loss (Evaluate)
// over the windows, the state carried between them.
func TestHeldOutLoss(t *testing.T) {
	m := charlm.New()
	m.Init(5)
	rng := runtime.NewRNG(9)
	random := func(n int) []int32 {
		data := make([]int32, n)
		for i := range data {
			data[i] = int32(rng.IntN(numClasses))
		}
		return data
	}

	data := random(rows*45 + 8 + 1) // 8 streams of 46, 24 of 45: three windows, the last partial
	h, err := newHeldOut(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.loss(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSampler(m, 1, runtime.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	predicted := 0
	for r := range rows {
		clear(s.m.H0)
		clear(s.m.C0)
		for at := h.from[r]; at < h.from[r+1]; at++ {
			if err := s.feed(data[at]); err != nil {
				t.Fatal(err)
			}
			sum += crossEntropy(s.m.Output(1), data[at+1])
			predicted++
		}
	}
	want := sum / float64(predicted)
	t.Logf("held-out loss %.6f, one character at a time %.6f (%d characters)", got, want, predicted)
	if predicted != len(data)-1 || h.windows() != 3 {
		t.Fatalf("the streams predict %d characters over %d windows, want %d over 3", predicted, h.windows(), len(data)-1)
	}
	if math.Abs(got-want) > 1e-5*want {
		t.Errorf("held-out loss %v, charlmstep one character at a time %v", got, want)
	}

	data = random(rows*2*window + 1)
	if h, err = newHeldOut(data); err != nil {
		t.Fatal(err)
	}
	if got, err = h.loss(m); err != nil {
		t.Fatal(err)
	}
	clear(m.H0)
	clear(m.C0)
	var evaluated float64
	for k := range 2 {
		clear(m.X)
		for r := range rows {
			for i := range window {
				at := h.from[r] + k*window + i
				m.X[(r*window+i)*numClasses+int(data[at])] = 1
				m.Y[r*window+i] = data[at+1]
			}
		}
		loss, err := m.Evaluate(rows)
		if err != nil {
			t.Fatal(err)
		}
		m.CarryState()
		evaluated += float64(loss) / 2
	}
	if math.Abs(got-evaluated) > 1e-5*evaluated {
		t.Errorf("held-out loss %v over whole windows, Evaluate's mean %v", got, evaluated)
	}
	if _, err := newHeldOut(data[:rows]); err == nil {
		t.Errorf("newHeldOut of %d characters: no error, want one (a stream needs an input and a label)", rows)
	}
}

// TestHoldOut checks that training reads none of the held-out bytes (the
// digits, which the rest of the text lacks), that val_loss is the
// held-out loss of the trained model over gospec.HeldOut's bytes, and that
// it reaches the output.
func TestHoldOut(t *testing.T) {
	text := synthetic(12)
	start, end := gospec.HeldOut(len(text), 0.1)
	for i := start + 1; i < end; i++ {
		text[i] = '0' + byte(i%10)
	}
	isDigit := func(c int32) bool { return c >= encode('0') && c <= encode('9') }
	cfg := Config{Epochs: 2, HoldOut: 0.1, LR: 2e-3, Clip: 5, Seed: 3, Quiet: true}
	steps := 0
	cfg.callbacks = func(m *charlm.Model) []train.Callback {
		return []train.Callback{{AfterGradients: func(s *train.Step) error {
			steps++
			if slices.ContainsFunc(m.Y, isDigit) {
				t.Errorf("step %d: a label is a held-out digit", s.Global)
			}
			for i, v := range m.X {
				if v != 0 && isDigit(int32(i%numClasses)) {
					t.Fatalf("step %d: an input is a held-out digit", s.Global)
				}
			}
			return nil
		}}}
	}
	var out bytes.Buffer
	res, err := Train(context.Background(), cfg, "synthetic", text, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * ((start/rows - 1) / window); steps != want {
		t.Errorf("%d steps over %d training bytes, want %d", steps, start, want)
	}
	h, err := newHeldOut(encodeText2(text[start:end]))
	if err != nil {
		t.Fatal(err)
	}
	want, err := h.loss(res.Model)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Fit.Epochs[1].Values["val_loss"]; got != want {
		t.Errorf("val_loss %v after the last epoch, want the held-out loss of the trained model, %v", got, want)
	}
	if !strings.Contains(out.String(), "epoch 2/2  loss ") || !strings.Contains(out.String(), "val_loss ") ||
		!strings.Contains(out.String(), fmt.Sprintf("%d predicted (0 of them outside the alphabet", end-start-1)) {
		t.Errorf("output:\n%s", out.String())
	}
	for _, fraction := range []float64{-0.1, 1, math.NaN()} {
		cfg := Config{Epochs: 1, HoldOut: fraction, LR: 1e-3, Seed: 1}
		if _, err := Train(context.Background(), cfg, "synthetic", text, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-holdout") {
			t.Errorf("-holdout %v: err = %v", fraction, err)
		}
	}
}

// encodeText2 is encodeText without the count.
func encodeText2(text []byte) []int32 {
	c, _ := encodeText(text)
	return c
}

// TestTrain trains on a repeated sentence for 60 steps and checks that the
// loss falls, that the sampling model computes what the training model
// does over two windows with the state carried between them, and that
// samples use the alphabet only.
func TestTrain(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "charlm.safetensors")
	cfg := Config{Epochs: 3, Steps: 20, LR: 1e-2, Clip: 5, Temp: 1, Seed: 1,
		SampleLen: 200, Prime: "the ", Checkpoint: ckpt}
	var out bytes.Buffer
	res, err := Train(context.Background(), cfg, "synthetic", synthetic(20), &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", out.String())
	// 20 steps an epoch, one plot point per step.
	if len(res.Fit.Points) != 60 || len(res.Fit.Epochs) != 3 {
		t.Fatalf("%d loss points and %d epochs, want 60 and 3", len(res.Fit.Points), len(res.Fit.Epochs))
	}
	first := res.Fit.Points[0].Loss
	last := 0.0
	for _, p := range res.Fit.Points[55:] {
		last += p.Loss / 5
	}
	if !(first > 4) || !(last < 0.5*first) {
		t.Errorf("loss %.3f at the first step, %.3f over the last 5: want a fall by at least half from about ln 97 = 4.57", first, last)
	}
	for _, want := range []string{"bits_per_char", "epoch 3/3  loss ", "sample after epoch 3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if _, err := charlm.New().LoadCheckpoint(ckpt, nil); err != nil {
		t.Errorf("loading the checkpoint: %v", err)
	}

	// The samples.
	for e, sample := range res.Samples {
		if !strings.HasPrefix(sample, cfg.Prime) || len(sample) != len(cfg.Prime)+cfg.SampleLen {
			t.Errorf("epoch %d: sample of %d bytes not starting with %q: %q", e+1, len(sample), cfg.Prime, sample)
		}
		for i := range len(sample) {
			if !inAlphabet(sample[i]) {
				t.Fatalf("epoch %d: sample byte %d is %q, outside the alphabet", e+1, i, sample[i])
			}
		}
	}
	sample := func(temp float64, seed uint64) string {
		s, err := newSampler(res.Model, temp, runtime.NewRNG(seed))
		if err != nil {
			t.Fatal(err)
		}
		text, err := s.sample("the ", 100)
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	if a, b := sample(0.8, 5), sample(0.8, 5); a != b {
		t.Errorf("the same seed gave different samples:\n%q\n%q", a, b)
	}
	// The loss is near 0 by now: the most likely characters are the sentence.
	if greedy := sample(0, 0); !strings.Contains(greedy, "quick brown fox jumps over the lazy dog.\nthe quick") {
		t.Errorf("greedy sample after 60 steps on one repeated sentence: %q", greedy)
	}

	// charlmstep with the copied parameters, fed stream r one character at
	// a time, computes the logits charlm computes over windows 0 and 1 of
	// that stream, the state carried between them.
	m := res.Model
	data, err := newStreams(encodeText2(synthetic(20)))
	if err != nil {
		t.Fatal(err)
	}
	const r = 7
	var want []float32
	clear(m.H0)
	clear(m.C0)
	for k := range 2 {
		data.fill(k, m.X, m.Y)
		if err := m.Infer(rows); err != nil {
			t.Fatal(err)
		}
		m.CarryState()
		want = append(want, m.Output(rows)[r*window*numClasses:][:window*numClasses]...)
	}
	s, err := newSampler(m, 1, runtime.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for i, c := range data.data[r*data.length:][:2*window] {
		if err := s.feed(c); err != nil {
			t.Fatal(err)
		}
		for j, v := range s.m.Output(1) {
			worst = max(worst, math.Abs(float64(v-want[i*numClasses+j])))
		}
	}
	t.Logf("charlmstep vs charlm logits over two windows: max |difference| %.2g", worst)
	if worst > 1e-3 {
		t.Errorf("charlmstep's logits differ from charlm's by up to %g over two carried windows", worst)
	}
}
