package main

// AVX-512 versions of the GELU kernels (f32GeluZ, f32GeluGradZ): the
// same float32 operations per lane as f32Gelu and f32GeluGrad, in zmm
// registers (16 lanes), so their results are bit-identical to those and
// to the chunked Go loops. The constants are the first lanes of
// f32VecTab's vectors, broadcast from memory (EVEX embedded broadcast)
// wherever the memory operand is the one that cannot be NaN-sensitive:
// the clamp of e^x keeps x as the second source of VMINPS, so a NaN
// propagates, as in emitExp. VROUNDPS becomes VRNDSCALEPS $0 (round to
// nearest even), VBLENDVPS a compare into an opmask and a masked move,
// VANDPS/VORPS the integer VPANDD/VPORD (AVX-512F, no DQ needed).

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// c32 returns the 4-byte memory operand of the vector constant name's
// first lane (all its lanes are equal).
func c32(name string) Mem { return vc(name) }

// zbcast returns a new zmm register holding constant name in every lane.
func zbcast(name string) VecVirtual {
	z := ZMM()
	VBROADCASTSS(c32(name), z)
	return z
}

// emitExpHiZ is emitExp(x, false, true) for a zmm register x.
func emitExpHiZ(x VecVirtual) VecVirtual {
	t := zbcast("expHi")
	VMINPS(x, t, t) // x as the second source: NaN propagates
	k := ZMM()
	VMULPS_BCST(c32("log2e"), t, k)
	VRNDSCALEPS(U8(0), k, k) // to nearest even
	VFNMADD231PS_BCST(c32("ln2hi"), k, t)
	VFNMADD231PS_BCST(c32("ln2lo"), k, t)
	p := zbcast("exp0")
	for _, c := range []string{"exp1", "exp2", "exp3", "exp4", "exp5"} {
		VFMADD213PS_BCST(c32(c), t, p)
	}
	r2 := ZMM()
	VMULPS(t, t, r2)
	VFMADD213PS(t, r2, p)
	VADDPS_BCST(c32("one"), p, p)
	k1 := ZMM()
	VCVTPS2DQ(k, k)
	VPSRAD(U8(1), k, k1)
	VPSUBD(k1, k, k)
	VPADDD_BCST(c32("exp127"), k1, k1)
	VPADDD_BCST(c32("exp127"), k, k)
	VPSLLD(U8(23), k1, k1)
	VPSLLD(U8(23), k, k)
	VMULPS(k1, p, p)
	VMULPS(k, p, p)
	return p
}

// emitTanhZ is emitTanh for a zmm register x.
func emitTanhZ(x VecVirtual) VecVirtual {
	a := ZMM()
	VPANDD_BCST(c32("abs"), x, a)
	a2 := ZMM()
	VADDPS(a, a, a2)
	e := emitExpHiZ(a2)
	VADDPS_BCST(c32("one"), e, e)
	q := zbcast("two")
	VDIVPS(e, q, q)
	big := zbcast("one")
	VSUBPS(q, big, big)
	z := ZMM()
	VMULPS(a, a, z)
	p := zbcast("tanh0")
	for _, c := range []string{"tanh1", "tanh2", "tanh3", "tanh4"} {
		VFMADD213PS_BCST(c32(c), z, p)
	}
	VMULPS(a, z, z)
	VFMADD213PS(a, z, p)
	m := K()
	VCMPPS_BCST(U8(0x11), c32("tanhMax"), a, m) // |x| < 0.625, false for NaN
	VMOVAPS(p, m, big)
	VPANDD_BCST(c32("sign"), x, a)
	VPORD(a, big, big)
	return big
}

// emitGeluTanhZ is emitGeluTanh for a zmm register x.
func emitGeluTanhZ(x VecVirtual) VecVirtual {
	u := ZMM()
	VMULPS_BCST(c32("geluA"), x, u)
	VMULPS(x, u, u)
	VMULPS(x, u, u)
	VADDPS(x, u, u)
	VMULPS_BCST(c32("geluC"), u, u)
	return emitTanhZ(u)
}

// zStream generates a kernel over the whole vectors of 16 elements:
//
//	func name(n int, arrays... *float32)
//
// with body run on every vector, at(a) its 64 bytes in array a.
func zStream(name string, arrays []string, doc []string, body func(at func(int) Mem)) {
	params := "n int"
	for _, a := range arrays {
		params += ", " + a + " *float32"
	}
	TEXT(name, NOSPLIT, "func("+params+")")
	Doc(doc...)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	ptr := make([]Register, len(arrays))
	for i, a := range arrays {
		ptr[i] = Load(Param(a), GP64())
	}
	i := GP64()
	XORQ(i, i)
	ANDQ(I32(-16), n)
	JZ(LabelRef("done"))
	Label("loop")
	body(func(a int) Mem { return Mem{Base: ptr[a], Index: i, Scale: 4} })
	ADDQ(U32(16), i)
	CMPQ(i, n)
	JL(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

func geluZKernels() {
	zStream("f32GeluZ", []string{"out", "x"}, []string{
		"f32GeluZ is f32Gelu on AVX-512F for the whole vectors of 16 elements",
		"(i < n&^15), bit-identical to it.",
	}, func(at func(int) Mem) {
		x := ZMM()
		VMOVUPS(at(1), x)
		t := emitGeluTanhZ(x)
		VADDPS_BCST(c32("one"), t, t)
		h := ZMM()
		VMULPS_BCST(c32("half"), x, h)
		VMULPS(t, h, h)
		VMOVUPS(h, at(0))
	})
	zStream("f32GeluGradZ", []string{"dx", "x", "dy"}, []string{
		"f32GeluGradZ is f32GeluGrad on AVX-512F for the whole vectors of 16",
		"elements (i < n&^15), bit-identical to it.",
	}, func(at func(int) Mem) {
		x := ZMM()
		VMOVUPS(at(1), x)
		t := emitGeluTanhZ(x)
		one := zbcast("one")
		b, s := ZMM(), ZMM()
		VMULPS(t, t, s)
		VSUBPS(s, one, s)
		VMULPS_BCST(c32("half"), x, b)
		VMULPS(s, b, b)
		VMULPS_BCST(c32("geluC"), b, b)
		VMULPS_BCST(c32("gelu3A"), x, s)
		VMULPS(x, s, s)
		VADDPS(one, s, s)
		VMULPS(s, b, b)
		VADDPS(one, t, t)
		VMULPS_BCST(c32("half"), t, t)
		VADDPS(b, t, t)
		VMULPS(at(2), t, t)
		VMOVUPS(t, at(0))
	})
}
