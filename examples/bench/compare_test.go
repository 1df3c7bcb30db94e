package main

import (
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/backpropgen/backpropgen/generated/mlp
cpu: AMD EPYC
BenchmarkTrainStep 	    7604	    315742 ns/op	       0 B/op	       0 allocs/op
BenchmarkTrainStep-2   	    8000	    301000.5 ns/op
BenchmarkOther 	  12	 bogus ns/op
BenchmarkNoNs 	  12	 5 B/op
BenchmarkTrainStep/model=cnn/impl=torch 	      23	    14139379 ns/op
PASS
ok  	github.com/backpropgen/backpropgen/generated/mlp	7.9s
`
	got := parseBench(strings.NewReader(out))
	want := []benchLine{
		{Name: "BenchmarkTrainStep", Iters: 7604, NsPerOp: 315742},
		{Name: "BenchmarkTrainStep-2", Iters: 8000, NsPerOp: 301000.5},
		{Name: "BenchmarkTrainStep/model=cnn/impl=torch", Iters: 23, NsPerOp: 14139379},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name || g.Iters != w.Iters || g.NsPerOp != w.NsPerOp {
			t.Errorf("line %d: got %+v, want %+v", i, g, w)
		}
	}

	r := renameGo(got[0], "mlp")
	if want := "BenchmarkTrainStep/model=mlp/impl=go \t    7604\t    315742 ns/op\t       0 B/op\t       0 allocs/op"; r.Line != want {
		t.Errorf("renameGo line:\n got %q\nwant %q", r.Line, want)
	}
	if r := renameGo(got[1], "cnn"); r.Name != "BenchmarkTrainStep/model=cnn/impl=go-2" {
		t.Errorf("renameGo name with procs suffix: %q", r.Name)
	}
}

func TestMedianAndSeconds(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	for in, want := range map[string]float64{"2s": 2, "500ms": 0.5, "1.5s": 1.5, "1m": 60} {
		if got, err := seconds(in); err != nil || got != want {
			t.Errorf("seconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := seconds("100x"); err == nil {
		t.Error("seconds(100x) did not fail")
	}
}

func TestWriteTable(t *testing.T) {
	rows := []row{
		{Model: "mlp", Batch: 32, Go: []float64{110, 100, 90}, Torch: []float64{1000, 1000, 1000}, TorchRun: true, Target: 0.2},
		{Model: "cnn", Batch: 32, Go: []float64{800}, Torch: []float64{1000}, TorchRun: true, Target: 0.5},
		{Model: "rnn", Batch: 32, Go: []float64{500}, TorchRun: true, Target: 0.5},
		{Model: "seqmnist", Batch: 64, Go: []float64{7}},
	}
	var b strings.Builder
	writeTable(&b, rows, true)
	want := `  model     batch  Go ns/step  PyTorch ns/step  Go/PyTorch           target
  mlp          32    100 ±10%         1000 ±0%      0.100x      <= 0.2x met
  cnn          32         800             1000      0.800x  <= 0.5x not met
  rnn          32         500              n/a         n/a      <= 0.5x n/a
  seqmnist     64           7          not run         n/a                -
`
	if got := b.String(); got != want {
		t.Errorf("table with torch:\n%s\nwant:\n%s", got, want)
	}

	b.Reset()
	writeTable(&b, rows[:2], false)
	want = `  model  batch  Go ns/step
  mlp       32    100 ±10%
  cnn       32         800
`
	if got := b.String(); got != want {
		t.Errorf("Go-only table:\n%s\nwant:\n%s", got, want)
	}
}

// TestWriteTableLLMC: llm.c's columns appear when a row ran it; rows that
// did not say so.
func TestWriteTableLLMC(t *testing.T) {
	rows := []row{
		{Model: "gpt", Batch: 8, Go: []float64{20, 25}, Torch: []float64{50, 50}, TorchRun: true, Target: 0.35, LLMC: []float64{100, 100}, LLMCRun: true},
		{Model: "mlp", Batch: 32, Go: []float64{7}, Torch: []float64{70}, TorchRun: true},
	}
	var b strings.Builder
	writeTable(&b, rows, true)
	want := `  model  batch  Go ns/step  PyTorch ns/step  Go/PyTorch            target  llm.c ns/step  Go/llm.c
  gpt        8     22 ±11%           50 ±0%      0.450x  <= 0.35x not met        100 ±0%    0.225x
  mlp       32           7               70      0.100x                 -        not run       n/a
`
	if got := b.String(); got != want {
		t.Errorf("table with llm.c:\n%s\nwant:\n%s", got, want)
	}
}

func TestPairedRatio(t *testing.T) {
	// Per-round ratios 0.5, 0.25, 1: their median is 0.5, while the ratio
	// of the medians is 2/8 = 0.25.
	if q := pairedRatio([]float64{1, 2, 8}, []float64{2, 8, 8}); q != 0.5 {
		t.Errorf("pairedRatio = %v, want 0.5", q)
	}
	// Rounds missing on one side: the ratio of the medians.
	if q := pairedRatio([]float64{1, 3}, []float64{4}); q != 0.5 {
		t.Errorf("pairedRatio with a missing round = %v, want 0.5", q)
	}
}
