package main

// The AVX2/FMA float32 GEMM micro-kernels (gemm_amd64.s).

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Tile limits; the Go driver in gemm_amd64.go relies on them.
const (
	bcastMR = 6 // rows of a broadcast tile
	dotMR   = 3 // rows of a dot tile
	dotNR   = 4 // columns of a dot tile
)

var ymm = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}

// maskTab holds 8 all-ones int32 then 8 zeros: the 8 int32 at byte offset
// 32-4*n are a VMASKMOVPS mask of the first n lanes, for n in 0..8.
var maskTab Mem

// gemmKernels generates every GEMM kernel and the mask table they share.
func gemmKernels() {
	maskTab = GLOBL("sgemmMaskTab", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		v := U32(0)
		if i < 8 {
			v = U32(0xffffffff)
		}
		DATA(4*i, v)
	}
	for mr := 1; mr <= bcastMR; mr++ {
		bcast(mr, 2, false)
		bcast(mr, 2, true)
		bcast(mr, 1, false)
		bcast(mr, 1, true)
	}
	for mr := 1; mr <= dotMR; mr++ {
		for nr := 1; nr <= dotNR; nr++ {
			dot(mr, nr)
		}
	}
	peak()
}

// loadMask loads into dst the mask of the first n lanes; n is clobbered.
func loadMask(n Register, dst VecPhysical) {
	t := GP64()
	LEAQ(maskTab.Offset(32), t)
	NEGQ(n)
	VMOVUPS(Mem{Base: t, Index: n, Scale: 4}, dst)
}

// rowAddr returns the address of row r of a matrix whose row 0 is at base
// and row 3 at base3, rows stride bytes apart.
func rowAddr(r int, base, base3, stride Register) Mem {
	if r >= 3 {
		base, r = base3, r-3
	}
	if r == 0 {
		return Mem{Base: base}
	}
	return Mem{Base: base, Index: stride, Scale: uint8(r)}
}

// bcast generates sgemmBcast{mr}x{8*nv}[m]: a tile of mr rows and nv
// vectors of 8 columns of C, the last vector masked to its first nm
// columns when masked.
func bcast(mr, nv int, masked bool) {
	name := fmt.Sprintf("sgemmBcast%dx%d", mr, 8*nv)
	width := fmt.Sprintf("%d", 8*nv)
	if masked {
		name += "m"
		width = fmt.Sprintf("%d+nm", 8*nv-8)
		if nv == 1 {
			width = "nm"
		}
	}
	TEXT(name, NOSPLIT, "func(k int, a *float32, rs, ks int, b *float32, ldb int, c *float32, ldc, nm int, acc bool)")
	Doc(
		name+" computes a tile of C of "+fmt.Sprint(mr)+" × "+width+" elements,",
		"with every element of A broadcast against a contiguous row of B",
		"(indices in elements, k ≥ 1"+map[bool]string{true: ", 1 ≤ nm ≤ 8"}[masked]+"):",
		"",
		"	for r < "+fmt.Sprint(mr)+", j < "+width+":",
		"		s := 0 (or c[r*ldc+j] when acc)",
		"		for p < k: s += a[r*rs+p*ks] * b[p*ldb+j]",
		"		c[r*ldc+j] = s",
		"",
		"NN uses rs = lda, ks = 1; TN uses rs = 1, ks = lda.",
	)
	Pragma("noescape")
	k := Load(Param("k"), GP64())
	pa := Load(Param("a"), GP64())
	rs := Load(Param("rs"), GP64())
	ks := Load(Param("ks"), GP64())
	pb := Load(Param("b"), GP64())
	ldb := Load(Param("ldb"), GP64())
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), rs)
	SHLQ(U8(2), ks)
	SHLQ(U8(2), ldb)
	SHLQ(U8(2), ldc)
	var pa3, pc3 GPVirtual
	if mr > 3 {
		pa3, pc3 = GP64(), GP64()
		LEAQ(Mem{Base: pa, Index: rs, Scale: 2}, pa3)
		ADDQ(rs, pa3)
		LEAQ(Mem{Base: pc, Index: ldc, Scale: 2}, pc3)
		ADDQ(ldc, pc3)
	}
	// Registers: accumulators acc[r][v] = Y(r*nv+v), B row in Y12, Y13,
	// broadcast in Y14, mask in Y15.
	acc := func(r, v int) VecPhysical { return ymm[r*nv+v] }
	bv := []VecPhysical{Y12, Y13}
	bc, mask := Y14, Y15
	if masked {
		nm := Load(Param("nm"), GP64())
		loadMask(nm, mask)
	}
	cAddr := func(r, v int) Mem { return rowAddr(r, pc, pc3, ldc).Offset(32 * v) }
	isMasked := func(v int) bool { return masked && v == nv-1 }

	f := Load(Param("acc"), GP8())
	TESTB(f, f)
	JZ(LabelRef("zero"))
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			if isMasked(v) {
				VMASKMOVPS(cAddr(r, v), mask, acc(r, v))
			} else {
				VMOVUPS(cAddr(r, v), acc(r, v))
			}
		}
	}
	JMP(LabelRef("loop"))
	Label("zero")
	for i := 0; i < mr*nv; i++ {
		VXORPS(ymm[i], ymm[i], ymm[i])
	}

	Label("loop")
	for v := 0; v < nv; v++ {
		if isMasked(v) {
			VMASKMOVPS(Mem{Base: pb, Disp: 32 * v}, mask, bv[v])
		} else {
			VMOVUPS(Mem{Base: pb, Disp: 32 * v}, bv[v])
		}
	}
	for r := 0; r < mr; r++ {
		VBROADCASTSS(rowAddr(r, pa, pa3, rs), bc)
		for v := 0; v < nv; v++ {
			VFMADD231PS(bv[v], bc, acc(r, v))
		}
	}
	ADDQ(ldb, pb)
	ADDQ(ks, pa)
	if mr > 3 {
		ADDQ(ks, pa3)
	}
	DECQ(k)
	JNZ(LabelRef("loop"))

	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			if isMasked(v) {
				VMASKMOVPS(acc(r, v), mask, cAddr(r, v))
			} else {
				VMOVUPS(acc(r, v), cAddr(r, v))
			}
		}
	}
	VZEROUPPER()
	RET()
}

// dot generates sgemmDot{mr}x{nr}: a tile of mr×nr elements of C, each the
// dot product of a row of A and a row of B.
func dot(mr, nr int) {
	name := fmt.Sprintf("sgemmDot%dx%d", mr, nr)
	TEXT(name, NOSPLIT, "func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool)")
	Doc(
		name+" computes a tile of "+fmt.Sprint(mr)+"×"+fmt.Sprint(nr)+" elements of C,",
		"each the dot product of a row of A and a row of B (indices in elements,",
		"k ≥ 1):",
		"",
		"	for r < "+fmt.Sprint(mr)+", j < "+fmt.Sprint(nr)+":",
		"		s := 0",
		"		for p < k: s += a[r*lda+p] * b[j*ldb+p]",
		"		c[r*ldc+j] = s (or += s when acc)",
		"",
		"This is the NT case, C = A·Bᵀ, with both operands read along k.",
	)
	Pragma("noescape")
	k := Load(Param("k"), GP64())
	pa := Load(Param("a"), GP64())
	lda := Load(Param("lda"), GP64())
	pb := Load(Param("b"), GP64())
	ldb := Load(Param("ldb"), GP64())
	SHLQ(U8(2), lda)
	SHLQ(U8(2), ldb)
	var pb3 GPVirtual
	if nr > 3 {
		pb3 = GP64()
		LEAQ(Mem{Base: pb, Index: ldb, Scale: 2}, pb3)
		ADDQ(ldb, pb3)
	}
	// Accumulators acc[r][s] = Y(r*nr+s); rows of A in Y12..Y14, a row of B
	// in Y15.
	acc := func(r, s int) VecPhysical { return ymm[r*nr+s] }
	aAddr := func(r int) Mem { return rowAddr(r, pa, nil, lda) }
	bAddr := func(s int) Mem { return rowAddr(s, pb, pb3, ldb) }
	for i := 0; i < mr*nr; i++ {
		VXORPS(ymm[i], ymm[i], ymm[i])
	}
	kv := GP64()
	MOVQ(k, kv)
	SHRQ(U8(3), kv)
	JZ(LabelRef("tail"))
	Label("loop")
	for r := 0; r < mr; r++ {
		VMOVUPS(aAddr(r), ymm[12+r])
	}
	for s := 0; s < nr; s++ {
		VMOVUPS(bAddr(s), Y15)
		for r := 0; r < mr; r++ {
			VFMADD231PS(Y15, ymm[12+r], acc(r, s))
		}
	}
	ADDQ(U8(32), pa)
	ADDQ(U8(32), pb)
	if nr > 3 {
		ADDQ(U8(32), pb3)
	}
	DECQ(kv)
	JNZ(LabelRef("loop"))

	// The last k%8 elements, with masked loads: mask in Y12, a row of A in
	// Y13, a row of B in Y14.
	Label("tail")
	ANDQ(U8(7), k)
	JZ(LabelRef("reduce"))
	loadMask(k, Y12)
	for r := 0; r < mr; r++ {
		VMASKMOVPS(aAddr(r), Y12, Y13)
		for s := 0; s < nr; s++ {
			VMASKMOVPS(bAddr(s), Y12, Y14)
			VFMADD231PS(Y14, Y13, acc(r, s))
		}
	}

	// Each row's nr accumulators become the nr sums in the low lanes of
	// the xmm half of its first accumulator.
	Label("reduce")
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	if nr < 4 {
		n := GP64()
		MOVQ(U32(nr), n)
		loadMask(n, Y14)
	}
	f := Load(Param("acc"), GP8())
	for r := 0; r < mr; r++ {
		x := func(s int) VecPhysical { return acc(r, min(s, nr-1)) }
		// hadd(x, y) per 128-bit lane = [x0+x1, x2+x3, y0+y1, y2+y3].
		t0, t1 := x(0), x(2)
		VHADDPS(x(1), x(0), t0)
		if nr > 2 {
			VHADDPS(x(3), x(2), t1)
		} else {
			t1 = t0
		}
		VHADDPS(t1, t0, t0)
		VEXTRACTF128(U8(1), t0, X15)
		sum := t0.AsX()
		VADDPS(X15, sum, sum)
		addr := rowAddr(r, pc, nil, ldc)
		lbl := fmt.Sprintf("store%d", r)
		TESTB(f, f)
		JZ(LabelRef(lbl))
		if nr == 4 {
			VADDPS(addr, sum, sum)
		} else {
			VMASKMOVPS(addr, X14, X13)
			VADDPS(X13, sum, sum)
		}
		Label(lbl)
		if nr == 4 {
			VMOVUPS(sum, addr)
		} else {
			VMASKMOVPS(sum, X14, addr)
		}
	}
	VZEROUPPER()
	RET()
}

// peak generates sgemmPeakFMA, the FMA throughput loop of the benchmarks.
func peak() {
	TEXT("sgemmPeakFMA", NOSPLIT, "func(n int)")
	Doc(
		"sgemmPeakFMA runs n iterations of 12 independent VFMADD231PS on ymm",
		"registers, 192 float32 flops per iteration, to measure the peak",
		"multiply-add throughput of one core. n ≥ 1.",
	)
	n := Load(Param("n"), GP64())
	for i := 0; i < 14; i++ {
		VXORPS(ymm[i], ymm[i], ymm[i])
	}
	Label("loop")
	for i := 0; i < 12; i++ {
		VFMADD231PS(Y12, Y13, ymm[i])
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	VZEROUPPER()
	RET()
}
