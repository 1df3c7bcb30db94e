package spec

import (
	"fmt"
)

// Conv2DGeom describes one NHWC convolution or pooling window.
//
// Input row iy = oy*SH - PadT + ky*DH and column ix = ox*SW - PadL + kx*DW
// feed output (oy, ox) through kernel tap (ky, kx); taps that fall outside
// [0,H)×[0,W) read zero padding (convolution) or are excluded (pooling).
// Padding after the last row / column is implied by OH and OW: for Keras
// 'valid', OH = (H - (KH-1)*DH - 1)/SH + 1 and PadT = 0; for 'same',
// OH = ceil(H/SH) and PadT = max((OH-1)*SH + (KH-1)*DH + 1 - H, 0)/2 (TF
// puts the odd extra row at the bottom); likewise for columns.
type Conv2DGeom struct {
	H, W, C    int // input height, width, channels
	KH, KW     int // kernel / window size
	F          int // output channels (filters); for pooling F == C
	OH, OW     int // output height and width
	SH, SW     int // strides
	DH, DW     int // dilations (1 = none); pooling uses 1
	PadT, PadL int // padding before the first row / column; padding after is implied by OH/OW
}

// ColSize returns the scratch length Conv2D and its gradients need for n
// images: n*OH*OW*KH*KW*C.
func (g Conv2DGeom) ColSize(n int) int { return n * g.OH * g.OW * g.KH * g.KW * g.C }

// RNNGeom describes one recurrent layer: its cell, the number of time
// steps T, the input width D and the hidden width H.
type RNNGeom struct {
	Cell    RNNCell
	T, D, H int
}

// RNNLayout holds the offsets of what RNNForward saves for RNNBackward
// (in its saved buffer) and of RNNBackward's work buffer, for n sequences.
//
// Saved: hs time-major (T+1, n, H) at 0 (h_0 first), then x time-major
// (T, n, D) at XTM; then, per cell, the gate activations (n, T, G·H) at
// Act (LSTM, GRU), a chunk (or a row) of pre-activations at Scr, and the
// cell states (T+1, n, H) at C and tanh(c) (T, n, H) at TC (LSTM), or
// h·U_n + bh_n (T, n, H) at HN (GRU).
//
// Work: dGh (C, n, G·H) at DGh and dGx (C, n, G·H) at DGx, the gradients
// of the pre-activations of a chunk of C steps, dL/dh_t (n, H) at DH,
// dL/dc_t (n, H) at DC (LSTM), Uᵀ (G·H, H) at UT, Wᵀ (G·H, D) at WT, dx of
// a chunk (C, n, D) at DXs and dhs time-major (T, n, H) at DHs.
type RNNLayout struct {
	NH, GH              int // n·H and G·H
	XTM                 int
	Act, Scr, C, TC, HN int
	Saved               int // size of the saved buffer
	DGh, DGx, DH, DC    int
	UT, WT, DXs, DHs    int
	Work                int // size of the work buffer
}

// RNNChunkMax and RNNChunkElems size the chunks of steps the products over
// x (x·W forward; dU, dW and dx backward) take at once: as many steps as
// keep a chunk of gate rows within RNNChunkElems elements (256 KiB of
// float32, in L2 until the step loop reads or fills it), at most
// RNNChunkMax, at least one.
const (
	RNNChunkMax   = 16
	RNNChunkElems = 65536
)

// Check returns an error unless g describes a layer and n ≥ 0 sequences.
func (g RNNGeom) Check(n int) error {
	switch {
	case g.Cell >= numCells:
		return fmt.Errorf("unknown cell %v", g.Cell)
	case g.T < 1 || g.D < 1 || g.H < 1:
		return fmt.Errorf("T, D and H must be ≥ 1, have T=%d D=%d H=%d", g.T, g.D, g.H)
	case n < 0:
		return fmt.Errorf("n must be ≥ 0, have %d", n)
	}
	return nil
}

// Layout returns the layout of the saved and work buffers for n
// sequences; g must pass Check.
func (g RNNGeom) Layout(n int) RNNLayout {
	if err := g.Check(n); err != nil {
		panic("spec.RNNGeom.Layout: " + err.Error())
	}
	G := g.Cell.Gates()
	nh := n * g.H
	l := RNNLayout{NH: nh, GH: G * g.H}
	cm := min(g.T, RNNChunkMax) // steps a chunk buffer holds
	off := (g.T + 1) * nh       // hs time-major
	l.XTM = off
	off += g.T * n * g.D
	switch g.Cell {
	case SimpleRNN:
		l.Scr = off
		off += cm * nh
	case LSTM:
		l.Act = off
		off += n * g.T * l.GH
		l.Scr = off
		off += n * l.GH
		l.C = off
		off += (g.T + 1) * nh
		l.TC = off
		off += g.T * nh
	case GRU:
		l.Act = off
		off += n * g.T * l.GH
		l.Scr = off
		off += n * l.GH
		l.HN = off
		off += g.T * nh
	}
	l.Saved = off
	l.DGh = 0
	l.DGx = cm * n * l.GH
	l.DH = 2 * cm * n * l.GH
	l.DC = l.DH + nh
	l.UT = l.DC
	if g.Cell.CellState() {
		l.UT += nh
	}
	l.WT = l.UT + g.H*l.GH
	l.DXs = l.WT + g.D*l.GH
	l.DHs = l.DXs + cm*n*g.D
	l.Work = l.DHs + g.T*nh
	return l
}

// Chunk returns the steps per chunk for n sequences.
func (g RNNGeom) Chunk(n int) int {
	w := max(1, n*g.Cell.Gates()*g.H)
	return max(1, min(g.T, RNNChunkMax, RNNChunkElems/w))
}

// SavedSize returns the number of floats RNNForward saves for
// RNNBackward for n sequences: n·H·(T+1+C) for SimpleRNN, n·H·(7T+6) for
// LSTM, n·H·(5T+4) for GRU, each plus n·T·D (see RNNLayout).
func (g RNNGeom) SavedSize(n int) int { return g.Layout(n).Saved }

// WorkSize returns the number of floats of scratch RNNBackward needs for
// n sequences: n·(2·C·G·H + H + C·D) + G·H·(H + D) + n·T·H, plus n·H for
// LSTM, where C = min(T, 16) (see RNNLayout).
func (g RNNGeom) WorkSize(n int) int { return g.Layout(n).Work }
