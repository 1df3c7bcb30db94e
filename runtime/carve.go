package runtime

// Carver hands out the views of one backing slice, such as a model's
// activation arena: at an offset, or right after a view it handed out
// before. Generated code places every buffer where derive's memory plan
// puts it, and writes most places as "after buffer X" rather than as a
// number, so that a change to one layer moves the lines of the buffers
// next to it, not the offsets of every buffer after it.
type Carver[T any] struct {
	buf   []T
	align int
	at    map[*T]int // the offset of each view handed out, by its first element
}

// NewCarver returns a Carver of buf whose After rounds offsets up to a
// multiple of align elements.
func NewCarver[T any](buf []T, align int) *Carver[T] {
	return &Carver[T]{buf: buf, align: max(align, 1), at: map[*T]int{}}
}

// At returns the n elements of the backing slice at off, with their
// capacity cut to n, so that no view can be resliced into its neighbour.
func (c *Carver[T]) At(off, n int) []T {
	v := c.buf[off : off+n : off+n]
	if n > 0 {
		c.at[&v[0]] = off
	}
	return v
}

// After returns the n elements that start where prev ends, rounded up to
// the alignment. prev must be a non-empty view from c's At or After.
func (c *Carver[T]) After(prev []T, n int) []T {
	off, ok := -1, false
	if len(prev) > 0 {
		off, ok = c.at[&prev[0]]
	}
	if !ok {
		panic("runtime: Carver.After: prev is not a view this Carver handed out")
	}
	end := off + len(prev)
	return c.At((end+c.align-1)/c.align*c.align, n)
}
