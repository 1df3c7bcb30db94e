package main

// The AVX2/FMA float32 GEMM micro-kernels (gemm_amd64.s).

import (
	"fmt"
	"math/bits"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

var ymm = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}

var zmm = []VecPhysical{
	Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
	Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31,
}

// maskTab holds 8 all-ones int32 then 8 zeros: the 8 int32 at byte offset
// 32-4*n are a VMASKMOVPS mask of the first n lanes, for n in 0..8.
var maskTab Mem

// kmaskTab holds the 17 uint16 opmasks (1<<n)-1 of the first n lanes of a
// zmm register, for n in 0..16.
var kmaskTab Mem

// bcastISA describes one family of broadcast kernels: AVX2 (ymm, 8 lanes,
// tiles of up to 6×16, partial vectors through VMASKMOVPS) or AVX-512
// (zmm, 16 lanes, tiles of up to 12×32, partial vectors through the
// opmask K1). Both run the same chain of FMAs for every element of C, so
// they give bit-identical results.
type bcastISA struct {
	prefix string // kernel name prefix
	lanes  int    // float32 lanes of a vector
	regs   []VecPhysical
	maxMR  int // rows of the largest tile
}

var (
	avx2Bcast   = bcastISA{prefix: "sgemmBcast", lanes: 8, regs: ymm, maxMR: 6}
	avx512Bcast = bcastISA{prefix: "sgemmZBcast", lanes: 16, regs: zmm, maxMR: 12}
)

// kmaskTable defines, in the file being generated (assembly data symbols
// are file-local), the 17 uint16 opmasks (1<<n)-1 of the first n lanes of
// a zmm register, n = 0…16, and returns it.
func kmaskTable(name string) Mem {
	tab := GLOBL(name, RODATA|NOPTR)
	for i := 0; i <= 16; i++ {
		DATA(2*i, U16(1<<i-1))
	}
	return tab
}

// gemmKernels generates every GEMM kernel and the mask tables they share.
func gemmKernels() {
	maskTab = GLOBL("sgemmMaskTab", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		v := U32(0)
		if i < 8 {
			v = U32(0xffffffff)
		}
		DATA(4*i, v)
	}
	kmaskTab = kmaskTable("sgemmKMaskTab")
	for _, isa := range []bcastISA{avx2Bcast, avx512Bcast} {
		for mr := 1; mr <= isa.maxMR; mr++ {
			bcast(isa, mr, 2, false)
			bcast(isa, mr, 2, true)
			bcast(isa, mr, 1, false)
			bcast(isa, mr, 1, true)
		}
	}
	for _, t := range wideTiles {
		bcast(avx2Bcast, t.mr, t.nv, false)
	}
	peak(avx2Bcast)
	peak(avx512Bcast)
	packT8()
	packN(2)
	packN(4)
	packRuns()
}

// wideTiles are the AVX2 kernels for blocks of C of one or two rows
// (sgemmBcast1x64, sgemmBcast2x32): a 1×16 or 2×16 tile has two or four
// chains of dependent FMAs, too few to cover the FMA latency (four cycles
// on Zen 3, with two FMA units), so a one-row product (a decoder step's)
// ran at a quarter of the peak with its operands in L1. These tiles have
// eight accumulators; each element of C is still the one chain of FMAs
// over p that every other tile computes.
var wideTiles = []struct{ mr, nv int }{{1, 8}, {2, 4}}

// loadMask loads into dst the mask of the first n lanes; n is clobbered.
func loadMask(n Register, dst Op) {
	t := GP64()
	LEAQ(maskTab.Offset(32), t)
	NEGQ(n)
	VMOVUPS(Mem{Base: t, Index: n, Scale: 4}, dst)
}

// rowAddr returns the address of row r of a matrix whose rows 0, 3, 6, …
// are at bases[0], bases[1], bases[2], …, rows stride bytes apart.
func rowAddr(r int, bases []Register, stride Register) Mem {
	base := bases[r/3]
	if r%3 == 0 {
		return Mem{Base: base}
	}
	return Mem{Base: base, Index: stride, Scale: uint8(r % 3)}
}

// rowBases returns registers holding the addresses of rows 0, 3, 6, … (up
// to row mr-1) of a matrix at base with rows stride bytes apart.
func rowBases(mr int, base, stride Register) []Register {
	bases := []Register{base}
	for r := 3; r < mr; r += 3 {
		b := GP64()
		LEAQ(Mem{Base: bases[len(bases)-1], Index: stride, Scale: 2}, b)
		ADDQ(stride, b)
		bases = append(bases, b)
	}
	return bases
}

// bcast generates {prefix}{mr}x{lanes*nv}[m]: a tile of mr rows and nv
// vectors of C, the last vector masked to its first nm columns when
// masked.
func bcast(isa bcastISA, mr, nv int, masked bool) {
	l := isa.lanes
	name := fmt.Sprintf("%s%dx%d", isa.prefix, mr, l*nv)
	width := fmt.Sprintf("%d", l*nv)
	if masked {
		name += "m"
		width = fmt.Sprintf("%d+nm", l*nv-l)
		if nv == 1 {
			width = "nm"
		}
	}
	TEXT(name, NOSPLIT, "func(k int, a *float32, rs, ks int, b *float32, ldb int, c *float32, ldc, nm int, acc bool)")
	Doc(
		name+" computes a tile of C of "+fmt.Sprint(mr)+" × "+width+" elements,",
		"with every element of A broadcast against a contiguous row of B",
		"(indices in elements, k ≥ 1"+map[bool]string{true: fmt.Sprintf(", 1 ≤ nm ≤ %d", l)}[masked]+"):",
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
	SHLQ(U8(2), rs)
	SHLQ(U8(2), ks)
	SHLQ(U8(2), ldb)
	aBases := rowBases(mr, pa, rs)
	// cAddrs returns the address of vector v of row r of C, from row
	// pointers computed afresh (they are needed only before and after the
	// loop, so they do not hold registers during it).
	cAddrs := func() func(r, v int) Mem {
		pc := Load(Param("c"), GP64())
		ldc := Load(Param("ldc"), GP64())
		SHLQ(U8(2), ldc)
		bases := rowBases(mr, pc, ldc)
		return func(r, v int) Mem { return rowAddr(r, bases, ldc).Offset(4 * l * v) }
	}
	// Registers: accumulators acc[r][v] = regs[r*nv+v]; then the row of B,
	// then the broadcast elements (six in turn with 32 registers, one with
	// 16); the AVX2 mask in the last ymm register. The wide kernels of one
	// row (nv > 2, see wideTiles) multiply each vector of B from memory
	// inside its FMA instead: it is used once.
	acc := func(r, v int) VecPhysical { return isa.regs[r*nv+v] }
	nacc := 2 * isa.maxMR
	bv := isa.regs[nacc : nacc+2]
	bc := isa.regs[nacc+2 : nacc+3]
	if len(isa.regs) > nacc+4 {
		bc = isa.regs[nacc+2 : min(len(isa.regs), nacc+8)]
	}
	fromMemory := mr == 1 && nv > 2
	if nv > 2 {
		nacc = mr * nv
		bv = isa.regs[nacc : nacc+nv]
		if fromMemory {
			bv = nil
		}
		bc = isa.regs[nacc+len(bv) : nacc+len(bv)+1]
	}
	var ymask VecPhysical
	if masked {
		nm := Load(Param("nm"), GP64())
		if l == 8 {
			ymask = isa.regs[15]
			loadMask(nm, ymask)
		} else {
			t := GP64()
			LEAQ(kmaskTab, t)
			KMOVW(Mem{Base: t, Index: nm, Scale: 2}, K1)
		}
	}
	isMasked := func(v int) bool { return masked && v == nv-1 }
	load := func(m Mem, dst VecPhysical, v int) {
		switch {
		case !isMasked(v):
			VMOVUPS(m, dst)
		case l == 8:
			VMASKMOVPS(m, ymask, dst)
		default:
			VMOVUPS_Z(m, K1, dst)
		}
	}
	store := func(src VecPhysical, m Mem, v int) {
		switch {
		case !isMasked(v):
			VMOVUPS(src, m)
		case l == 8:
			VMASKMOVPS(src, ymask, m)
		default:
			VMOVUPS(src, K1, m)
		}
	}
	zero := func(x VecPhysical) {
		if l == 8 {
			VXORPS(x, x, x)
		} else {
			VPXORD(x, x, x)
		}
	}

	f := Load(Param("acc"), GP8())
	TESTB(f, f)
	JZ(LabelRef("zero"))
	cAddr := cAddrs()
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			load(cAddr(r, v), acc(r, v), v)
		}
	}
	JMP(LabelRef("loop"))
	Label("zero")
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			zero(acc(r, v))
		}
	}

	Label("loop")
	if fromMemory {
		x := bc[0]
		VBROADCASTSS(rowAddr(0, aBases, rs), x)
		for v := 0; v < nv; v++ {
			VFMADD231PS(Mem{Base: pb, Disp: 4 * l * v}, x, acc(0, v))
		}
	}
	for v := 0; v < nv && !fromMemory; v++ {
		load(Mem{Base: pb, Disp: 4 * l * v}, bv[v], v)
	}
	for r := 0; r < mr && !fromMemory; r++ {
		if l == 16 && nv == 1 {
			// One FMA per element of A: broadcast it from memory inside
			// the FMA. With two vectors a row, the element is broadcast
			// into a register once instead: broadcasting it inside both
			// FMAs loads it twice, and a 12×32 tile with its operands in
			// L1 ran at 87% of the FMA peak that way and at 96% with
			// VBROADCASTSS (BenchmarkGemm's kernel rows, Zen 5).
			for v := 0; v < nv; v++ {
				VFMADD231PS_BCST(rowAddr(r, aBases, rs), bv[v], acc(r, v))
			}
			continue
		}
		x := bc[r%len(bc)]
		VBROADCASTSS(rowAddr(r, aBases, rs), x)
		for v := 0; v < nv; v++ {
			VFMADD231PS(bv[v], x, acc(r, v))
		}
	}
	ADDQ(ldb, pb)
	for _, b := range aBases {
		ADDQ(ks, b)
	}
	DECQ(k)
	JNZ(LabelRef("loop"))

	cAddr = cAddrs()
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			store(acc(r, v), cAddr(r, v), v)
		}
	}
	VZEROUPPER()
	RET()
}

// peak generates the FMA throughput loop of the benchmarks for isa:
// sgemmPeakFMA (ymm) or sgemmZPeakFMA (zmm).
func peak(isa bcastISA) {
	name := "sgemmPeakFMA"
	if isa.lanes == 16 {
		name = "sgemmZPeakFMA"
	}
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(
		fmt.Sprintf("%s runs n iterations of 12 independent VFMADD231PS on %d-lane", name, isa.lanes),
		fmt.Sprintf("registers, %d float32 flops per iteration, to measure the peak", 12*2*isa.lanes),
		"multiply-add throughput of one core. n ≥ 1.",
	)
	n := Load(Param("n"), GP64())
	r := isa.regs
	for i := 0; i < 14; i++ {
		if isa.lanes == 8 {
			VXORPS(r[i], r[i], r[i])
		} else {
			VPXORD(r[i], r[i], r[i]) // AVX-512F (VXORPS on zmm needs DQ)
		}
	}
	Label("loop")
	for i := 0; i < 12; i++ {
		VFMADD231PS(r[12], r[13], r[i])
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	VZEROUPPER()
	RET()
}

// packT8 generates sgemmPackT8, the Bᵀ packing of sgemmPackB for eight
// rows of B at a time: an 8×8 block of B (eight rows, eight consecutive
// elements each) is loaded in eight ymm registers, transposed with
// unpack, shuffle and lane permutes, and stored as eight rows of a panel;
// the last rem < 8 elements of the rows are loaded under a mask and give
// rem rows of the panel.
func packT8() {
	TEXT("sgemmPackT8", NOSPLIT, "func(blocks, rem int, src *float32, k int, dst *float32, nr int)")
	Doc(
		"sgemmPackT8 packs eight rows of B, k elements apart, side by side into",
		"rows of a panel nr elements apart (AVX; blocks ≥ 0, 0 ≤ rem < 8):",
		"",
		"	for t < 8, p < 8*blocks+rem:",
		"		dst[p*nr+t] = src[t*k+p]",
	)
	Pragma("noescape")
	blocks := Load(Param("blocks"), GP64())
	rem := Load(Param("rem"), GP64())
	s0 := Load(Param("src"), GP64())
	ks := Load(Param("k"), GP64())
	d0 := Load(Param("dst"), GP64())
	ds := Load(Param("nr"), GP64())
	SHLQ(U8(2), ks)
	SHLQ(U8(2), ds)
	// Rows 0-3 from base with strides 0, 1, 2 and 3 (s3); rows 4-7 from
	// b4 = base + 4*stride likewise.
	eight := func(base Register, stride Register) (Register, func(t int) Mem) {
		s3, b4 := GP64(), GP64()
		LEAQ(Mem{Base: stride, Index: stride, Scale: 2}, s3)
		LEAQ(Mem{Base: base, Index: stride, Scale: 4}, b4)
		return b4, func(t int) Mem {
			b := base
			if t >= 4 {
				b, t = b4, t-4
			}
			switch t {
			case 0:
				return Mem{Base: b}
			case 3:
				return Mem{Base: b, Index: s3, Scale: 1}
			}
			return Mem{Base: b, Index: stride, Scale: uint8(t)}
		}
	}
	s4, src := eight(s0, ks)
	d4, dst := eight(d0, ds)
	step := GP64() // 8 rows of the panel, in bytes
	MOVQ(ds, step)
	SHLQ(U8(3), step)
	TESTQ(blocks, blocks)
	JZ(LabelRef("tail"))
	Label("block")
	r := make([]VecVirtual, 8)
	for t := range r {
		r[t] = YMM()
		VMOVUPS(src(t), r[t])
	}
	for c, col := range transpose8(r) {
		VMOVUPS(col, dst(c))
	}
	ADDQ(U32(32), s0)
	ADDQ(U32(32), s4)
	ADDQ(step, d0)
	ADDQ(step, d4)
	DECQ(blocks)
	JNZ(LabelRef("block"))
	Label("tail")
	TESTQ(rem, rem)
	JZ(LabelRef("done"))
	mask, n := YMM(), GP64()
	MOVQ(rem, n)
	loadMask(n, mask)
	for t := range r {
		r[t] = YMM()
		VMASKMOVPS(src(t), mask, r[t])
	}
	for c, col := range transpose8(r)[:7] {
		VMOVUPS(col, dst(c))
		CMPQ(rem, U8(c+1))
		JE(LabelRef("done"))
	}
	Label("done")
	VZEROUPPER()
	RET()
}

// transpose8 returns the eight columns of the 8×8 block whose rows are r:
// pairs of rows interleaved (t), four rows of a column per 128-bit lane
// (u), then lane permutes join columns c (low lanes) and c+4 (high).
func transpose8(r []VecVirtual) []VecVirtual {
	t := make([]VecVirtual, 8)
	for i := 0; i < 8; i += 2 {
		t[i], t[i+1] = YMM(), YMM()
		VUNPCKLPS(r[i+1], r[i], t[i])
		VUNPCKHPS(r[i+1], r[i], t[i+1])
	}
	u := make([]VecVirtual, 8)
	for h := 0; h < 8; h += 4 {
		for j, sel := range []struct {
			lo, hi int
			imm    uint8
		}{{0, 2, 0x44}, {0, 2, 0xee}, {1, 3, 0x44}, {1, 3, 0xee}} {
			u[h+j] = YMM()
			VSHUFPS(U8(sel.imm), t[h+sel.hi], t[h+sel.lo], u[h+j])
		}
	}
	cols := make([]VecVirtual, 8)
	for c := 0; c < 4; c++ {
		cols[c], cols[c+4] = YMM(), YMM()
		VPERM2F128(U8(0x20), u[4+c], u[c], cols[c])
		VPERM2F128(U8(0x31), u[4+c], u[c], cols[c+4])
	}
	return cols
}

// packN generates sgemmPackN{nv}, the op(B) = B packing of sgemmPackB for
// panels of nv ymm vectors (nr = 8·nv columns): for each of kl rows of B,
// its whole panels are copied to their place in the packed chunk.
func packN(nv int) {
	name := fmt.Sprintf("sgemmPackN%d", 8*nv)
	TEXT(name, NOSPLIT, "func(kl, panels int, src *float32, ld int, dst *float32)")
	Doc(
		fmt.Sprintf("%s copies whole panels of %d columns of kl rows of B, rows ld", name, 8*nv),
		fmt.Sprintf("elements apart in src, into panels of kl×%d elements in dst (AVX;", 8*nv),
		"kl, panels ≥ 1):",
		"",
		fmt.Sprintf("	for p < kl, q < panels, t < %d:", 8*nv),
		fmt.Sprintf("		dst[q*kl*%d+p*%d+t] = src[p*ld+q*%d+t]", 8*nv, 8*nv, 8*nv),
	)
	Pragma("noescape")
	kl := Load(Param("kl"), GP64())
	panels := Load(Param("panels"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	dst := Load(Param("dst"), GP64())
	SHLQ(U8(2), ld)
	pstep := GP64() // bytes between panels of dst: kl*nr*4
	MOVQ(kl, pstep)
	SHLQ(U8(uint8(5+bits.TrailingZeros(uint(nv)))), pstep) // kl·8·nv·4 bytes, nv a power of two
	Label("row")
	s, d, q := GP64(), GP64(), GP64()
	MOVQ(src, s)
	MOVQ(dst, d)
	MOVQ(panels, q)
	Label("panel")
	for v := 0; v < nv; v++ {
		y := YMM()
		VMOVUPS(Mem{Base: s, Disp: 32 * v}, y)
		VMOVUPS(y, Mem{Base: d, Disp: 32 * v})
	}
	ADDQ(U32(32*nv), s)
	ADDQ(pstep, d)
	DECQ(q)
	JNZ(LabelRef("panel"))
	ADDQ(ld, src)
	ADDQ(U32(32*nv), dst)
	DECQ(kl)
	JNZ(LabelRef("row"))
	VZEROUPPER()
	RET()
}

// packRuns generates sgemmPackRuns, the packing of tiles of Aᵀ (TN
// products) whose rows are contiguous runs of mr elements: each run is
// copied as two 8-float vectors, its first and its last eight elements
// (overlapping when mr < 16), so nothing outside the runs is touched.
func packRuns() {
	TEXT("sgemmPackRuns", NOSPLIT, "func(kl, mr int, src *float32, ld int, dst *float32)")
	Doc(
		"sgemmPackRuns copies kl runs of mr elements (8 ≤ mr ≤ 16), ld elements",
		"apart in src, one after another into dst (AVX; kl ≥ 1):",
		"",
		"	for p < kl, r < mr:",
		"		dst[p*mr+r] = src[p*ld+r]",
	)
	Pragma("noescape")
	kl := Load(Param("kl"), GP64())
	mr := Load(Param("mr"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	dst := Load(Param("dst"), GP64())
	SHLQ(U8(2), ld)
	SHLQ(U8(2), mr)
	last := GP64() // byte offset of a run's last eight elements
	LEAQ(Mem{Base: mr, Disp: -32}, last)
	Label("run")
	lo, hi := YMM(), YMM()
	VMOVUPS(Mem{Base: src}, lo)
	VMOVUPS(Mem{Base: src, Index: last, Scale: 1}, hi)
	VMOVUPS(lo, Mem{Base: dst})
	VMOVUPS(hi, Mem{Base: dst, Index: last, Scale: 1})
	ADDQ(ld, src)
	ADDQ(mr, dst)
	DECQ(kl)
	JNZ(LabelRef("run"))
	VZEROUPPER()
	RET()
}
