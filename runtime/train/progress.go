package train

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal: the progress bar redraws a
// line in place, which a file or a pipe would keep as clutter.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// bar is an epoch's progress bar (github.com/schollz/progressbar), with the
// running loss in its description. A nil *bar draws nothing, at no cost.
type bar struct {
	w      io.Writer
	pb     *progressbar.ProgressBar
	label  string
	from   int // steps done when the bar started (a resumed epoch)
	next   time.Time
	forced bool
}

// redraw is how often the bar's description (the running loss) changes:
// formatting it costs an allocation, so not every step.
const redraw = 200 * time.Millisecond

func newBar(w io.Writer, forced bool) *bar { return &bar{w: w, forced: forced} }

// start begins the bar of an epoch of steps, done of them already taken.
func (b *bar) start(label string, steps int64, done int) {
	if b == nil {
		return
	}
	b.label, b.from = label, done
	if done > 0 {
		label = fmt.Sprintf("%s (resumed at step %d)", label, done)
	}
	b.pb = progressbar.NewOptions64(steps-int64(done),
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("steps"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSetTheme(progressbar.Theme{Saucer: "=", SaucerHead: ">", SaucerPadding: " ", BarStart: "[", BarEnd: "]"}),
	)
	b.next = time.Now().Add(redraw)
}

// update shows done steps of the epoch and the running mean loss.
func (b *bar) update(done int, loss float64) {
	if b == nil || b.pb == nil {
		return
	}
	if now := time.Now(); now.After(b.next) {
		b.next = now.Add(redraw)
		b.pb.Describe(fmt.Sprintf("%s loss %.4f", b.label, loss))
	}
	b.pb.Set(done - b.from)
}

// clear erases the bar so that the next line starts clean.
func (b *bar) clear() {
	if b == nil || b.pb == nil {
		return
	}
	b.pb.Clear()
	b.pb = nil
}
