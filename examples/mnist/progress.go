package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar, redrawn in place with \r at most
// every redrawEvery (plus once at 100%). A nil *progress draws nothing.
type progress struct {
	w     io.Writer
	label string
	total int
	last  time.Time
	drawn int // length of the last line drawn, to clear it
}

const (
	barWidth    = 30
	redrawEvery = 100 * time.Millisecond
)

func newProgress(w io.Writer, label string, total int, quiet bool) *progress {
	if quiet {
		return nil
	}
	return &progress{w: w, label: label, total: total}
}

// update reports done of total steps and the running mean loss.
func (p *progress) update(done int, loss float64) {
	if p == nil {
		return
	}
	now := time.Now()
	if done < p.total && now.Sub(p.last) < redrawEvery {
		return
	}
	p.last = now
	fill := barWidth * done / p.total
	bar := strings.Repeat("=", fill)
	if fill < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-fill-1)
	}
	line := fmt.Sprintf("%s [%s] %3d%% loss %.4f", p.label, bar, 100*done/p.total, loss)
	pad := max(0, p.drawn-len(line)) // cover a longer previous line
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.drawn = len(line)
}

// clear erases the bar so the next line of output starts clean.
func (p *progress) clear() {
	if p == nil || p.drawn == 0 {
		return
	}
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.drawn))
	p.drawn = 0
}
