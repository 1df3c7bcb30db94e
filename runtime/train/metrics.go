package train

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/backpropgen/backpropgen/runtime"
)

// A Metric is a validation value beyond the loss and accuracy, computed
// over the validation set batch by batch: Reset, then Add for every batch
// (the model's output for its first n rows, and its inputs and labels in
// io), then Value. Fit reports it as "val_" + Name().
type Metric[T runtime.Float] interface {
	Name() string
	Reset()
	Add(io runtime.IO[T], output []T, n int)
	Value() float64
}

// accuracy counts correct class predictions when the model's output is
// one row of scores per label (OutputRow = Row · Classes of its only label
// input that is not token ids: a language model's next tokens).
type accuracy[T runtime.Float] struct {
	labels  runtime.LabelFeed
	per     int     // labels per row
	classes int     // scores per label
	buf     []int32 // predicted classes
}

func newAccuracy[T runtime.Float](io runtime.IO[T]) *accuracy[T] {
	var predicted []runtime.LabelFeed // the labels, not token inputs
	for _, l := range io.Labels {
		if !l.Tokens {
			predicted = append(predicted, l)
		}
	}
	if len(predicted) != 1 {
		return nil
	}
	l := predicted[0]
	if l.Classes < 2 || io.OutputRow != l.Row*l.Classes {
		return nil
	}
	return &accuracy[T]{labels: l, per: l.Row, classes: l.Classes, buf: make([]int32, io.Batch*l.Row)}
}

// count returns how many of the n rows' labels the output's highest score
// names.
func (a *accuracy[T]) count(out []T, n int) int {
	k := n * a.per
	if len(out) < k*a.classes {
		return 0
	}
	runtime.Argmax(a.buf[:k], out[:k*a.classes], k, a.classes)
	c := 0
	for i, p := range a.buf[:k] {
		if p == a.labels.Data[i] {
			c++
		}
	}
	return c
}

// keys returns the sorted names of values.
func keys(values map[string]float64) []string {
	return slices.Sorted(maps.Keys(values))
}

// order of the values in summaries and CSV columns: these first, the rest
// sorted.
var first = []string{"loss", "accuracy", "val_loss", "val_accuracy", "lr"}

func columns(values map[string]float64) []string {
	var cols []string
	for _, k := range first {
		if _, ok := values[k]; ok {
			cols = append(cols, k)
		}
	}
	for _, k := range keys(values) {
		if !slices.Contains(first, k) {
			cols = append(cols, k)
		}
	}
	return cols
}

// summary is the epoch's line: "epoch 3/10  loss 0.0713  accuracy 97.81%
// val_loss 0.0520  val_accuracy 98.43%  lr 2.1e-03  59.9s".
func summary(e Epoch, epochs int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d", e.Epoch, epochs)
	for _, k := range columns(e.Values) {
		v := e.Values[k]
		switch {
		case strings.HasSuffix(k, "accuracy"):
			fmt.Fprintf(&b, "  %s %.2f%%", k, 100*v)
		case k == "lr":
			fmt.Fprintf(&b, "  %s %.2e", k, v)
		default:
			fmt.Fprintf(&b, "  %s %.4f", k, v)
		}
	}
	fmt.Fprintf(&b, "  %.1fs", e.Seconds)
	return b.String()
}

// metricsFile appends one record per epoch: a JSON object per line, or a
// CSV row (name ending in .csv).
type metricsFile struct {
	f    *os.File
	w    *bufio.Writer
	csv  *csv.Writer
	cols []string // CSV columns, from the first record
}

// openMetrics creates the file anew with the records of history (the
// epochs of a resumed run, so the file holds each epoch once whatever
// happened after the last checkpoint).
func openMetrics(path string, history []Epoch) (*metricsFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("train: metrics file: %w", err)
	}
	m := &metricsFile{f: f, w: bufio.NewWriter(f)}
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		m.csv = csv.NewWriter(m.w)
	}
	for _, e := range history {
		if err := m.write(e); err != nil {
			m.close()
			return nil, err
		}
	}
	return m, nil
}

// write appends the epoch's record and flushes it.
func (m *metricsFile) write(e Epoch) error {
	if m.csv != nil {
		if m.cols == nil {
			m.cols = columns(e.Values)
			if err := m.csv.Write(append([]string{"epoch", "steps", "seconds"}, m.cols...)); err != nil {
				return err
			}
		}
		row := []string{strconv.Itoa(e.Epoch), strconv.FormatInt(e.Steps, 10), strconv.FormatFloat(e.Seconds, 'g', -1, 64)}
		for _, k := range m.cols {
			v, ok := e.Values[k]
			s := ""
			if ok {
				s = strconv.FormatFloat(v, 'g', -1, 64)
			}
			row = append(row, s)
		}
		if err := m.csv.Write(row); err != nil {
			return err
		}
		m.csv.Flush()
		if err := m.csv.Error(); err != nil {
			return fmt.Errorf("train: metrics file: %w", err)
		}
	} else {
		rec := map[string]any{"epoch": e.Epoch, "steps": e.Steps, "seconds": e.Seconds}
		for k, v := range e.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				rec[k] = fmt.Sprint(v) // JSON has no NaN
			} else {
				rec[k] = v
			}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("train: metrics file: %w", err)
		}
		m.w.Write(append(b, '\n'))
	}
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("train: metrics file: %w", err)
	}
	return nil
}

func (m *metricsFile) close() { m.f.Close() }
