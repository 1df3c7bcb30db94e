package main

import (
	"bytes"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// write puts lines into a file of dir and returns its path.
func write(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCurves draws two synthetic runs: epochs of 10 s and of 15 s. The table
// interpolates between the epochs' ends, and the PNG has both runs' colours.
func TestCurves(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.jsonl",
		`{"epoch":1,"steps":10,"seconds":10,"loss":3.0,"val_loss":2.5,"lr":0.001}`,
		`{"epoch":2,"steps":20,"seconds":10,"loss":2.2,"val_loss":2.0}`,
		`{"epoch":3,"steps":30,"seconds":10,"loss":1.9,"val_loss":1.8}`)
	b := write(t, dir, "b.jsonl",
		`{"epoch":1,"seconds":15,"loss":3.5,"val_loss":3.0}`,
		``,
		`{"epoch":2,"seconds":15,"loss":2.5,"val_loss":"NaN"}`)
	out := filepath.Join(dir, "curves.png")
	var stdout bytes.Buffer
	if err := run([]string{"-o", out, "A=" + a, "B=" + b}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// The common time is 30 s: A at 7.5 s is before its first epoch's end;
	// at 15 s, halfway between 2.5 and 2.0; B at 22.5 s halfway to NaN.
	for _, want := range []string{
		"7.5                  -           -",
		"15.0            2.2500      3.0000",
		"22.5            1.9500         NaN",
		"30.0            1.8000         NaN",
		"A: 3 epochs, 30.0 s, validation loss 1.8000 at the end",
		"B: 2 epochs, 30.0 s, validation loss NaN at the end",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, stdout.String())
		}
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[color.RGBA]int{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[color.RGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0xff}]++
		}
	}
	for i := range 2 {
		if c := colors[i].(color.RGBA); seen[c] < 50 {
			t.Errorf("run %d's colour %v: %d pixels in the plot", i, c, seen[c])
		}
	}
	if c := colors[2].(color.RGBA); seen[c] != 0 {
		t.Errorf("a third run's colour in a plot of two: %d pixels", seen[c])
	}
}

func TestValAt(t *testing.T) {
	c := &curves{end: []float64{10, 20}, valLoss: []float64{4, 2}}
	for _, tc := range []struct {
		t, want float64
		ok      bool
	}{{5, 0, false}, {10, 4, true}, {12.5, 3.5, true}, {20, 2, true}, {21, 0, false}} {
		if got, ok := c.valAt(tc.t); got != tc.want || ok != tc.ok {
			t.Errorf("valAt(%v) = %v, %v; want %v, %v", tc.t, got, ok, tc.want, tc.ok)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	noVal := write(t, dir, "noval.jsonl", `{"epoch":1,"seconds":3,"loss":2}`)
	bad := write(t, dir, "bad.jsonl", `{"epoch":1,"seconds":3,"loss":2,"val_loss":1}`, `{"epoch":2,`)
	empty := write(t, dir, "empty.jsonl")
	out := filepath.Join(dir, "x.png")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", out, "gpt"}, "want NAME=METRICS.jsonl"},
		{[]string{"-o", out, "x=" + noVal}, `no "val_loss"`},
		{[]string{"-o", out, "x=" + bad}, "bad.jsonl:2"},
		{[]string{"-o", out, "x=" + empty}, "no epochs"},
		{[]string{"-o", out, "x=" + filepath.Join(dir, "missing.jsonl")}, "missing.jsonl"},
		{[]string{"x=" + noVal}, "usage error"},
	} {
		err := run(tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
