package train

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colours of the curves: training blue, validation orange, solid and
// dashed, so that they stay apart in grey print too.
var (
	trainColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	valColor   = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
)

// drawPlot writes the PNG of the run's curves to path, atomically: the loss
// (training every few steps, validation every epoch) and, when there are
// class labels, the accuracy per epoch, side by side.
func drawPlot(path, model string, epochs []Epoch, points []Point) error {
	if len(epochs) == 0 {
		return nil
	}
	series := func(key string) plotter.XYs {
		var xys plotter.XYs
		for _, e := range epochs {
			if v, ok := e.Values[key]; ok {
				xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: v})
			}
		}
		return xys
	}
	var trainLoss plotter.XYs
	for _, p := range points {
		trainLoss = append(trainLoss, plotter.XY{X: p.Epoch, Y: p.Loss})
	}

	loss := newPlot(model+": loss", "loss")
	if err := addCurve(loss, "training", trainLoss, trainColor, false, false); err != nil {
		return err
	}
	if err := addCurve(loss, "validation", series("val_loss"), valColor, true, true); err != nil {
		return err
	}
	if positive(trainLoss) && positive(series("val_loss")) {
		// Losses fall by orders of magnitude: on a log scale the late
		// epochs stay readable next to the first steps.
		loss.Y.Scale = plot.LogScale{}
		loss.Y.Tick.Marker = logTicks{}
		loss.Y.Label.Text = "loss (log scale)"
	}
	plots := []*plot.Plot{loss}
	if acc := series("accuracy"); len(acc) > 0 {
		p := newPlot(model+": accuracy", "accuracy (%)")
		for i := range acc {
			acc[i].Y *= 100
		}
		val := series("val_accuracy")
		for i := range val {
			val[i].Y *= 100
		}
		p.Legend.Top = false // accuracy rises to the top right
		if err := addCurve(p, "training", acc, trainColor, false, true); err != nil {
			return err
		}
		if err := addCurve(p, "validation", val, valColor, true, true); err != nil {
			return err
		}
		plots = append(plots, p)
	}

	w := vg.Points(440 * float64(len(plots)))
	img := vgimg.NewWith(vgimg.UseWH(w, vg.Points(330)), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(24), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("train: plot %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("train: plot %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("train: plot: %w", err)
	}
	return nil
}

func newPlot(title, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = "epoch"
	p.X.Tick.Marker = epochTicks{}
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// addCurve draws xys as a line, dashed and/or with a marker at each point.
func addCurve(p *plot.Plot, name string, xys plotter.XYs, c color.Color, dashed, marks bool) error {
	if len(xys) == 0 {
		return nil
	}
	line, scatter, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	line.Color = c
	line.Width = vg.Points(1.6)
	if dashed {
		line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	p.Add(line)
	if marks {
		scatter.Color = c
		scatter.Shape = draw.CircleGlyph{}
		scatter.Radius = vg.Points(2.5)
		p.Add(scatter)
		p.Legend.Add(name, line, scatter)
	} else {
		p.Legend.Add(name, line)
	}
	return nil
}

func positive(xys plotter.XYs) bool {
	for _, p := range xys {
		if !(p.Y > 0) {
			return false
		}
	}
	return true
}

// logTicks labels 1, 2 and 5 times each power of ten (gonum's LogTicks
// labels only the powers, too few across the one or two decades a loss
// falls in).
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		p := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * p
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', 3, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// epochTicks labels whole epochs: every one up to 12, then a round step.
type epochTicks struct{}

func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000} {
		step = s
		if (hi-lo)/s <= 12 {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ticks
}
