// Command lmcurves draws the validation-loss curves of language-model runs
// against their cumulative training time, in one PNG, from the metrics
// files (JSON lines, -metrics) that runtime/train writes, and prints the
// validation losses at a few equal times:
//
//	go run ./examples/lmcurves -o examples/gpt/gpt-vs-charlm.png gpt=gpt.jsonl charlm=charlm.jsonl
//
// Every record is an epoch; its "seconds" is that epoch's wall time
// (training and validation), which lmcurves adds up. The validation loss
// ("val_loss") is drawn solid at the end of each epoch, the epoch's mean
// training loss ("loss") dashed at the middle of its epoch, where it was
// measured on average. Between two epochs the losses are interpolated
// linearly for the table.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "lmcurves:", err)
		}
		os.Exit(1)
	}
}

// errUsage reports a command-line error the flag package has already printed.
var errUsage = errors.New("usage error")

func run(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("lmcurves", flag.ContinueOnError)
	flags.SetOutput(stderr)
	out := flags.String("o", "", "PNG to write (required)")
	title := flags.String("title", "held-out loss at equal training time", "the plot's title")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: lmcurves -o PLOT.png NAME=METRICS.jsonl ...")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *out == "" || flags.NArg() == 0 {
		flags.Usage()
		return errUsage
	}
	var runs []*curves
	for _, arg := range flags.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("argument %q: want NAME=METRICS.jsonl", arg)
		}
		c, err := readMetrics(name, path)
		if err != nil {
			return err
		}
		runs = append(runs, c)
	}
	printTable(stdout, runs)
	return drawPlot(*out, *title, runs)
}

// curves is one run's losses at the end of each epoch, in cumulative
// seconds.
type curves struct {
	name    string
	end     []float64 // cumulative wall time at the end of each epoch
	loss    []float64 // the epoch's mean training loss
	valLoss []float64
}

// readMetrics reads a metrics file of JSON lines: one record per epoch with
// "seconds", "loss" and "val_loss".
func readMetrics(name, path string) (*curves, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &curves{name: name}
	sc := bufio.NewScanner(f)
	var total float64
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		var v [3]float64
		for i, key := range []string{"seconds", "loss", "val_loss"} {
			if v[i], err = number(rec, key); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		total += v[0]
		c.end = append(c.end, total)
		c.loss = append(c.loss, v[1])
		c.valLoss = append(c.valLoss, v[2])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.end) == 0 {
		return nil, fmt.Errorf("%s: no epochs", path)
	}
	return c, nil
}

// number reads rec[key]: a JSON number, or the string runtime/train writes
// for a NaN or an infinity.
func number(rec map[string]any, key string) (float64, error) {
	switch v := rec[key].(type) {
	case float64:
		return v, nil
	case string:
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f, nil
		}
	case nil:
		return 0, fmt.Errorf("no %q (was the run validated? examples/charlm needs -holdout > 0)", key)
	}
	return 0, fmt.Errorf("%q is %v, not a number", key, rec[key])
}

// valAt is the validation loss at time t, interpolated linearly between
// the epochs' ends; ok is false before the first epoch's end or after the
// last.
func (c *curves) valAt(t float64) (v float64, ok bool) {
	for i, end := range c.end {
		switch {
		case t == end:
			return c.valLoss[i], true
		case t < end && i > 0:
			f := (t - c.end[i-1]) / (end - c.end[i-1])
			return c.valLoss[i-1] + f*(c.valLoss[i]-c.valLoss[i-1]), true
		case t < end:
			return 0, false
		}
	}
	return 0, false
}

// printTable prints each run's validation loss at a quarter, half, three
// quarters and all of the time every run lasted, and at its own end.
func printTable(w io.Writer, runs []*curves) {
	common := math.Inf(1)
	for _, c := range runs {
		common = min(common, c.end[len(c.end)-1])
	}
	fmt.Fprintf(w, "%-10s", "seconds")
	for _, c := range runs {
		fmt.Fprintf(w, "  %10s", c.name)
	}
	fmt.Fprintln(w, "   (validation loss, nats per byte)")
	for _, f := range []float64{0.25, 0.5, 0.75, 1} {
		t := f * common
		fmt.Fprintf(w, "%-10.1f", t)
		for _, c := range runs {
			if v, ok := c.valAt(t); !ok {
				fmt.Fprintf(w, "  %10s", "-")
			} else {
				fmt.Fprintf(w, "  %10.4f", v)
			}
		}
		fmt.Fprintln(w)
	}
	for _, c := range runs {
		n := len(c.end)
		fmt.Fprintf(w, "%s: %d epochs, %.1f s, validation loss %.4f at the end\n", c.name, n, c.end[n-1], c.valLoss[n-1])
	}
}

// colors of the runs, in order (matplotlib's first four).
var colors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// drawPlot writes the PNG: per run, the validation loss solid with a mark
// per epoch and the training loss dashed, in the run's colour.
func drawPlot(path, title string, runs []*curves) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "training wall-clock time, validation included (s)"
	p.Y.Label.Text = "loss (nats per byte; a byte is a character for charlm)"
	p.X.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	for i, c := range runs {
		col := colors[i%len(colors)]
		// A diverged epoch's NaN or infinity is left out of the curves
		// (the table shows it).
		var val, train plotter.XYs
		for k, end := range c.end {
			start := 0.0
			if k > 0 {
				start = c.end[k-1]
			}
			if finite(c.valLoss[k]) {
				val = append(val, plotter.XY{X: end, Y: c.valLoss[k]})
			}
			if finite(c.loss[k]) {
				train = append(train, plotter.XY{X: (start + end) / 2, Y: c.loss[k]})
			}
		}
		if len(val) > 0 {
			line, marks, err := plotter.NewLinePoints(val)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			line.Color, line.Width = col, vg.Points(1.6)
			marks.Color, marks.Shape, marks.Radius = col, draw.CircleGlyph{}, vg.Points(2.5)
			p.Add(line, marks)
			p.Legend.Add(c.name+" validation", line, marks)
		}
		if len(train) > 0 {
			dashed, err := plotter.NewLine(train)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			dashed.Color, dashed.Width = col, vg.Points(1)
			dashed.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			p.Add(dashed)
			p.Legend.Add(c.name+" training (epoch mean)", dashed)
		}
	}
	p.X.Max *= 1.03 // the last marks whole, off the frame
	p.Y.Tick.Marker = lossTicks{}
	if err := p.Save(vg.Points(520), vg.Points(360), path); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// lossTicks labels round values, at most about ten of them: gonum's
// default labels too few across the one or two nats a loss falls.
type lossTicks struct{}

func (lossTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 0.1
	for _, s := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10} {
		step = s
		if (hi-lo)/s <= 10 {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 4, 64)})
	}
	return ticks
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
