package main

// The kernels of the convolution and pooling loops (conv.go): the strided
// copy of im2col and the window maximum of MaxPool2D; and the double
// column sum of the recurrent layers' bias gradients (rnn.go). All in
// elementwise_amd64.s.

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func convKernels() {
	copyRuns()
	copyRunsZ()
	maxPool()
	sumRows2()
}

// copyRuns generates f32CopyRuns, runs copies of n 4-byte elements
// between strided rows: whole vectors of 8 with VMOVUPS, then 4, 2 and 1
// elements, so that nothing outside the rows is touched.
func copyRuns() {
	TEXT("f32CopyRuns", NOSPLIT, "func(runs, n int, dst *float32, ds int, src *float32, ss int)")
	Doc(
		"f32CopyRuns copies runs rows of n 4-byte elements (runs, n ≥ 0; AVX):",
		"",
		"	for r < runs, i < n:",
		"		dst[r*ds+i] = src[r*ss+i]",
		"",
		"The rows must not overlap. Being a bitwise copy, it serves float64",
		"data too, with n and the strides counted in 4-byte units.",
	)
	runs, n, pd, ds, ps, ss := copyRunsArgs()
	// nb = bytes of the whole vectors; n keeps the rest, n%8.
	nb := GP64()
	MOVQ(n, nb)
	ANDQ(I32(-8), nb)
	SHLQ(U8(2), nb)
	ANDQ(U32(7), n)
	Label("run")
	i := GP64()
	XORQ(i, i)
	CMPQ(i, nb)
	JGE(LabelRef("tail"))
	Label("vec")
	v := YMM()
	VMOVUPS(Mem{Base: ps, Index: i, Scale: 1}, v)
	VMOVUPS(v, Mem{Base: pd, Index: i, Scale: 1})
	ADDQ(U32(32), i)
	CMPQ(i, nb)
	JL(LabelRef("vec"))
	Label("tail")
	at := func(p Register) Mem { return Mem{Base: p, Index: i, Scale: 1} }
	TESTQ(U32(4), n)
	JZ(LabelRef("tail2"))
	x := XMM()
	VMOVUPS(at(ps), x)
	VMOVUPS(x, at(pd))
	ADDQ(U32(16), i)
	Label("tail2")
	TESTQ(U32(2), n)
	JZ(LabelRef("tail1"))
	t := GP64()
	MOVQ(at(ps), t)
	MOVQ(t, at(pd))
	ADDQ(U32(8), i)
	Label("tail1")
	TESTQ(U32(1), n)
	JZ(LabelRef("next"))
	t1 := GP32()
	MOVL(at(ps), t1)
	MOVL(t1, at(pd))
	Label("next")
	ADDQ(ds, pd)
	ADDQ(ss, ps)
	DECQ(runs)
	JNZ(LabelRef("run"))
	Label("done")
	VZEROUPPER()
	RET()
}

// copyRunsArgs loads the arguments of a f32CopyRuns kernel, the strides
// in bytes, and jumps to "done" when there are no runs.
func copyRunsArgs() (runs, n, pd, ds, ps, ss Register) {
	Pragma("noescape")
	runs = Load(Param("runs"), GP64())
	n = Load(Param("n"), GP64())
	pd = Load(Param("dst"), GP64())
	ds = Load(Param("ds"), GP64())
	ps = Load(Param("src"), GP64())
	ss = Load(Param("ss"), GP64())
	SHLQ(U8(2), ds)
	SHLQ(U8(2), ss)
	TESTQ(runs, runs)
	JLE(LabelRef("done"))
	return
}

// copyRunsZ generates f32CopyRunsZ, the AVX-512 f32CopyRuns: whole
// vectors of 16 elements, then the last n%16 under an opmask, so a short
// run (im2col's 3×3 windows of 3 channels copy runs of 9) is one masked
// load and one masked store, with no branches.
func copyRunsZ() {
	tab := kmaskTable("f32KMaskTab")
	TEXT("f32CopyRunsZ", NOSPLIT, "func(runs, n int, dst *float32, ds int, src *float32, ss int)")
	Doc(
		"f32CopyRunsZ is f32CopyRuns on AVX-512F (runs, n ≥ 0):",
		"",
		"	for r < runs, i < n:",
		"		dst[r*ds+i] = src[r*ss+i]",
	)
	runs, n, pd, ds, ps, ss := copyRunsArgs()
	// nb = bytes of the whole vectors; K1 = the first n%16 lanes (none
	// when n%16 = 0: the masked copy then touches nothing).
	nb := GP64()
	MOVQ(n, nb)
	ANDQ(I32(-16), nb)
	SHLQ(U8(2), nb)
	ANDQ(U32(15), n)
	t := GP64()
	LEAQ(tab, t)
	KMOVW(Mem{Base: t, Index: n, Scale: 2}, K1)
	Label("run")
	i := GP64()
	XORQ(i, i)
	CMPQ(i, nb)
	JGE(LabelRef("tail"))
	Label("vec")
	VMOVUPS(Mem{Base: ps, Index: i, Scale: 1}, Z0)
	VMOVUPS(Z0, Mem{Base: pd, Index: i, Scale: 1})
	ADDQ(U32(64), i)
	CMPQ(i, nb)
	JL(LabelRef("vec"))
	Label("tail")
	VMOVUPS_Z(Mem{Base: ps, Index: i, Scale: 1}, K1, Z1)
	VMOVUPS(Z1, K1, Mem{Base: pd, Index: i, Scale: 1})
	ADDQ(ds, pd)
	ADDQ(ss, ps)
	DECQ(runs)
	JNZ(LabelRef("run"))
	Label("done")
	VZEROUPPER()
	RET()
}

// maxPool generates f32MaxPool, one MaxPool2D window over the whole
// vectors of 8 channels.
func maxPool() {
	TEXT("f32MaxPool", NOSPLIT, "func(C int, o *float32, am *int32, x *float32, base, rows, cols, rs, cs int)")
	Doc(
		"f32MaxPool computes the maximum over a window of rows×cols cells",
		"(≥ 1 each) of x, cell (ky, kx) starting at element base + ky*rs +",
		"kx*cs, for the whole vectors of 8 of the C channels (the caller does",
		"the last C%8), and the element index of the winner, exactly as",
		"MaxPool2D's Go loop (AVX2):",
		"",
		"	for c < C&^7:",
		"		m, a := -, -1",
		"		for ky < rows, kx < cols:  // row-major",
		"			j := base + ky*rs + kx*cs + c",
		"			if a < 0 || x[j] > m || (x[j] != x[j] && m == m): m, a = x[j], j",
		"		o[c], am[c] = m, a",
	)
	Pragma("noescape")
	cv := Load(Param("C"), GP64())
	po := Load(Param("o"), GP64())
	pam := Load(Param("am"), GP64())
	px := Load(Param("x"), GP64())
	base := Load(Param("base"), GP64())
	rows := Load(Param("rows"), GP64())
	cols := Load(Param("cols"), GP64())
	rs := Load(Param("rs"), GP64())
	cs := Load(Param("cs"), GP64())
	// Index vectors: idx0 = base + (0..7), and the steps rs and cs.
	idx0, rsv, csv, eight := YMM(), YMM(), YMM(), YMM()
	x := XMM()
	MOVQ(base, x)
	VPBROADCASTD(x, idx0)
	VPADDD(vc("iota"), idx0, idx0)
	MOVQ(rs, x)
	VPBROADCASTD(x, rsv)
	MOVQ(cs, x)
	VPBROADCASTD(x, csv)
	VMOVUPS(vc("eight"), eight)
	LEAQ(Mem{Base: px, Index: base, Scale: 4}, px) // first cell, channel 0
	SHLQ(U8(2), rs)
	SHLQ(U8(2), cs)
	SHRQ(U8(3), cv)
	JZ(LabelRef("done"))
	Label("chan")
	m, idx, rowIdx, cand, v, mk, ord := YMM(), YMM(), YMM(), YMM(), YMM(), YMM(), YMM()
	VMOVUPS(Mem{Base: px}, m)
	VMOVDQU(idx0, idx)
	VMOVDQU(idx0, rowIdx)
	q, ky := GP64(), GP64()
	MOVQ(px, q)
	MOVQ(rows, ky)
	Label("row")
	q2, kx := GP64(), GP64()
	MOVQ(q, q2)
	MOVQ(cols, kx)
	VMOVDQU(rowIdx, cand)
	Label("cell")
	VMOVUPS(Mem{Base: q2}, v)
	VCMPPS(U8(0x16), m, v, mk)  // !(v <= m): v > m or either is NaN
	VCMPPS(U8(0x07), m, m, ord) // m is not NaN
	VANDPS(ord, mk, mk)
	VBLENDVPS(mk, v, m, m)
	VBLENDVPS(mk, cand, idx, idx)
	VPADDD(csv, cand, cand)
	ADDQ(cs, q2)
	DECQ(kx)
	JNZ(LabelRef("cell"))
	VPADDD(rsv, rowIdx, rowIdx)
	ADDQ(rs, q)
	DECQ(ky)
	JNZ(LabelRef("row"))
	VMOVUPS(m, Mem{Base: po})
	VMOVDQU(idx, Mem{Base: pam})
	VPADDD(eight, idx0, idx0)
	ADDQ(U32(32), px)
	ADDQ(U32(32), po)
	ADDQ(U32(32), pam)
	DECQ(cv)
	JNZ(LabelRef("chan"))
	Label("done")
	VZEROUPPER()
	RET()
}

// sumRows2 generates f32SumRows2, the column sums of rnnColSum2: every
// block of columns is accumulated into two sets of registers (from a and
// from b) down all the rows, in row order, so that each result is
// bit-identical to its own row-by-row Go loop.
func sumRows2() {
	TEXT("f32SumRows2", NOSPLIT, "func(cols, rows int, a, b, in *float32)")
	Doc(
		"f32SumRows2 computes, for the whole vectors of 8 columns (cols ≥ 0; the",
		"caller does the last cols%8 columns), in is rows×cols (AVX):",
		"",
		"	for c < cols&^7:",
		"		for r < rows: a[c] += in[r*cols+c]; b[c] += in[r*cols+c]",
		"",
		"Blocks of 32 and 8 columns are summed in ymm accumulators down all",
		"the rows, reading in once for both sums.",
	)
	Pragma("noescape")
	cols := Load(Param("cols"), GP64())
	rows := Load(Param("rows"), GP64())
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	pi := Load(Param("in"), GP64())
	ld := GP64()
	MOVQ(cols, ld)
	SHLQ(U8(2), ld)
	TESTQ(rows, rows)
	JLE(LabelRef("done"))
	ANDQ(I32(-8), cols)
	widths := []int{4, 1} // vectors per block
	for bi, nv := range widths {
		w := 8 * nv
		next := "done"
		if bi+1 < len(widths) {
			next = fmt.Sprintf("block%d", 8*widths[bi+1])
		}
		lbl := fmt.Sprintf("block%d", w)
		Label(lbl)
		CMPQ(cols, U32(w))
		JL(LabelRef(next))
		accA := make([]VecVirtual, nv)
		accB := make([]VecVirtual, nv)
		for j := range accA {
			accA[j] = load(Mem{Base: pa, Disp: 32 * j})
			accB[j] = load(Mem{Base: pb, Disp: 32 * j})
		}
		q, r := GP64(), GP64()
		MOVQ(pi, q)
		MOVQ(rows, r)
		rl := fmt.Sprintf("rows%d", w)
		Label(rl)
		for j := range accA {
			v := load(Mem{Base: q, Disp: 32 * j})
			VADDPS(v, accA[j], accA[j])
			VADDPS(v, accB[j], accB[j])
		}
		ADDQ(ld, q)
		DECQ(r)
		JNZ(LabelRef(rl))
		for j := range accA {
			VMOVUPS(accA[j], Mem{Base: pa, Disp: 32 * j})
			VMOVUPS(accB[j], Mem{Base: pb, Disp: 32 * j})
		}
		ADDQ(U32(4*w), pa)
		ADDQ(U32(4*w), pb)
		ADDQ(U32(4*w), pi)
		SUBQ(U32(w), cols)
		JMP(LabelRef(lbl))
	}
	Label("done")
	VZEROUPPER()
	RET()
}
