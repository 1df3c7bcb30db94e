package main

// Row kernels of the softmax and layer-norm rows (runtime/softmax.go,
// attention.go, norm.go): a row's maximum, the attention gradient's step
// through the softmax (in float64, as its Go loop), and float64 sums of float32
// rows (each vector of 4 elements widened to 4 doubles, so the sums are
// as accurate as the Go loops', which sum in float64 too, if in another
// order), plus the layer norm's per-element row updates as stream kernels
// with the Go loops' float32 operations in their order (bit-identical
// given the same row statistics).

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func rowKernels() {
	layerNormRow := stream{
		name: "f32LayerNormRow", arrays: []string{"out", "x", "gamma", "beta"}, scalars: []string{"m", "rt"}, unroll: 2,
		doc: []string{"out[i] = (x[i]-m)*rt*gamma[i] + beta[i]  // AVX"},
		body: func(at func(int) Mem, k []VecVirtual) {
			t := load(at(1))
			VSUBPS(k[0], t, t)
			VMULPS(k[1], t, t)
			VMULPS(at(2), t, t)
			VADDPS(at(3), t, t)
			VMOVUPS(t, at(0))
		},
	}
	layerNormRow.gen()
	layerNormGradRow := stream{
		name: "f32LayerNormGradRow", arrays: []string{"dx", "dgamma", "dbeta", "dy", "x", "gamma"},
		scalars: []string{"m", "rs", "ma", "mb"}, unroll: 2,
		doc: []string{
			"xh, g := (x[i]-m)*rs, dy[i]",
			"dgamma[i] += g * xh",
			"dbeta[i] += g",
			"dx[i] = rs * (g*gamma[i] - ma - xh*mb)  // AVX",
		},
		body: func(at func(int) Mem, k []VecVirtual) {
			m, rs, ma, mb := k[0], k[1], k[2], k[3]
			xh := load(at(4))
			VSUBPS(m, xh, xh)
			VMULPS(rs, xh, xh)
			g := load(at(3))
			t, u := YMM(), YMM()
			VMULPS(xh, g, t)
			VMOVUPS(at(1), u)
			VADDPS(t, u, u)
			VMOVUPS(u, at(1))
			VMOVUPS(at(2), u)
			VADDPS(g, u, u)
			VMOVUPS(u, at(2))
			VMULPS(at(5), g, g)
			VSUBPS(ma, g, g)
			VMULPS(mb, xh, xh)
			VSUBPS(xh, g, g)
			VMULPS(rs, g, g)
			VMOVUPS(g, at(0))
		},
	}
	layerNormGradRow.gen()
	rowMaxKernel()
	softmaxGradRow()
	sum64Kernel{
		name: "f32Dot64", sig: "func(n int, a, b *float32) float64",
		doc: []string{
			"f32Dot64 returns, for the whole vectors of 8 elements (n ≥ 0; the",
			"caller does the last n%8 elements):",
			"",
			"	for i < n&^7: s += float64(a[i]) * float64(b[i])  // in float64, in another order; AVX2, FMA",
		},
		arrays: []string{"a", "b"}, outs: 1,
		body: func(at func(int) Mem, s32, s64, acc []VecVirtual) {
			x, y := YMM(), YMM()
			VCVTPS2PD(at(0), x)
			VCVTPS2PD(at(1), y)
			VFMADD231PD(y, x, acc[0]) // exact product of two float32s
		},
	}.gen()
	sum64Kernel{
		name: "f32Sum64", sig: "func(n int, x *float32) float64",
		doc: []string{
			"f32Sum64 returns, for the whole vectors of 8 elements (n ≥ 0; the",
			"caller does the last n%8 elements):",
			"",
			"	for i < n&^7: s += float64(x[i])  // in float64, in another order; AVX2",
		},
		arrays: []string{"x"}, outs: 1,
		body: func(at func(int) Mem, s32, s64, acc []VecVirtual) {
			d := YMM()
			VCVTPS2PD(at(0), d)
			VADDPD(d, acc[0], acc[0])
		},
	}.gen()
	sum64Kernel{
		name: "f32SumSqDev64", sig: "func(n int, x *float32, mu float64) float64",
		doc: []string{
			"f32SumSqDev64 returns, for the whole vectors of 8 elements (n ≥ 0; the",
			"caller does the last n%8 elements):",
			"",
			"	for i < n&^7: d := float64(x[i]) - mu; s += d*d  // in float64, fused, in another order; AVX2, FMA",
		},
		arrays: []string{"x"}, scalars64: []string{"mu"}, outs: 1,
		body: func(at func(int) Mem, s32, s64, acc []VecVirtual) {
			d := YMM()
			VCVTPS2PD(at(0), d)
			VSUBPD(s64[0], d, d)
			VFMADD231PD(d, d, acc[0])
		},
	}.gen()
	sum64Kernel{
		name: "f32LayerNormGradSums", sig: "func(n int, dy, gamma, x *float32, m, rs float32) (a, b float64)",
		doc: []string{
			"f32LayerNormGradSums returns, for the whole vectors of 8 elements (n ≥ 0;",
			"the caller does the last n%8 elements):",
			"",
			"	for i < n&^7:",
			"		g := dy[i] * gamma[i]  // float32",
			"		a += float64(g); b += float64(g) * float64((x[i]-m)*rs)  // in float64, in another order; AVX2, FMA",
		},
		arrays: []string{"dy", "gamma", "x"}, scalars32: []string{"m", "rs"}, outs: 2,
		body: func(at func(int) Mem, s32, s64, acc []VecVirtual) {
			g, xh := XMM(), XMM()
			VMOVUPS(at(0), g)
			VMULPS(at(1), g, g)
			VMOVUPS(at(2), xh)
			VSUBPS(s32[0], xh, xh)
			VMULPS(s32[1], xh, xh)
			gd, xd := YMM(), YMM()
			VCVTPS2PD(g, gd)
			VCVTPS2PD(xh, xd)
			VADDPD(gd, acc[0], acc[0])
			VFMADD231PD(xd, gd, acc[1]) // exact product of two float32s
		},
	}.gen()
}

// rowMaxKernel generates f32MaxFrom. Every lane starts from m and takes
// an element only when it is greater (VMAXPS with the element as first
// source), so a NaN element is never taken and m = NaN stays: the Go
// loop's "if v > m { m = v }" exactly, whatever the order.
func rowMaxKernel() {
	TEXT("f32MaxFrom", NOSPLIT, "func(n int, x *float32, m float32) float32")
	Doc(
		"f32MaxFrom returns, for the whole vectors of 8 elements (n ≥ 0; the",
		"caller does the last n%8 elements; AVX):",
		"",
		"	for i < n&^7: if x[i] > m { m = x[i] }",
	)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	var acc [4]VecVirtual
	for u := range acc {
		acc[u] = YMM()
		VBROADCASTSS(paramAddr("m"), acc[u])
	}
	i := GP64()
	XORQ(i, i)
	ANDQ(I32(-8), n)
	nu := GP64()
	MOVQ(n, nu)
	ANDQ(I32(-32), nu)
	JZ(LabelRef("vec"))
	Label("loop")
	for u := range acc {
		t := YMM()
		VMOVUPS(Mem{Base: x, Index: i, Scale: 4, Disp: 32 * u}, t)
		VMAXPS(acc[u], t, acc[u]) // t > acc ? t : acc
	}
	ADDQ(U32(32), i)
	CMPQ(i, nu)
	JL(LabelRef("loop"))
	Label("vec")
	CMPQ(i, n)
	JGE(LabelRef("reduce"))
	t := YMM()
	VMOVUPS(Mem{Base: x, Index: i, Scale: 4}, t)
	VMAXPS(acc[0], t, acc[0])
	ADDQ(U32(8), i)
	JMP(LabelRef("vec"))
	Label("reduce")
	VMAXPS(acc[0], acc[1], acc[0])
	VMAXPS(acc[2], acc[3], acc[2])
	VMAXPS(acc[0], acc[2], acc[0])
	h := XMM()
	VEXTRACTF128(U8(1), acc[0], h)
	VMAXPS(acc[0].AsX(), h, h)
	s := XMM()
	VPERMILPS(U8(0x4e), h, s) // swap the 64-bit halves
	VMAXPS(h, s, h)
	VPERMILPS(U8(0xb1), h, s) // swap the 32-bit pairs
	VMAXPS(h, s, h)
	Store(h, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// A sum64Kernel reduces the whole vectors of 8 elements of its arrays
// into outs float64 sums: body adds the contributions of 4 elements
// (at(a): their 16 bytes in array a) into the 4-double accumulators acc,
// one per sum. The float32 scalars are broadcast to xmm registers (s32),
// the float64 ones to ymm (s64). The main loop does 16 elements with two
// sets of accumulators; the sets are added at the end.
type sum64Kernel struct {
	name, sig            string
	doc                  []string
	arrays               []string
	scalars32, scalars64 []string
	outs                 int
	body                 func(at func(a int) Mem, s32, s64, acc []VecVirtual)
}

func (k sum64Kernel) gen() {
	TEXT(k.name, NOSPLIT, k.sig)
	Doc(k.doc...)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	ptr := make([]Register, len(k.arrays))
	for i, a := range k.arrays {
		ptr[i] = Load(Param(a), GP64())
	}
	var s32, s64 []VecVirtual
	for _, s := range k.scalars32 {
		x := XMM()
		VBROADCASTSS(paramAddr(s), x)
		s32 = append(s32, x)
	}
	for _, s := range k.scalars64 {
		y := YMM()
		VBROADCASTSD(paramAddr(s), y)
		s64 = append(s64, y)
	}
	// sets[j] holds one accumulator per sum; 4 sets: 2 unrolled vectors
	// of 8 elements, 2 halves each.
	sets := make([][]VecVirtual, 4)
	for j := range sets {
		for range k.outs {
			y := YMM()
			VXORPD(y, y, y)
			sets[j] = append(sets[j], y)
		}
	}
	i := GP64()
	XORQ(i, i)
	ANDQ(I32(-8), n)
	nu := GP64()
	MOVQ(n, nu)
	ANDQ(I32(-16), nu)
	JZ(LabelRef("vec"))
	at := func(disp int) func(int) Mem {
		return func(a int) Mem { return Mem{Base: ptr[a], Index: i, Scale: 4, Disp: disp} }
	}
	Label("loop")
	for j := range sets {
		k.body(at(16*j), s32, s64, sets[j])
	}
	ADDQ(U32(16), i)
	CMPQ(i, nu)
	JL(LabelRef("loop"))
	Label("vec")
	CMPQ(i, n)
	JGE(LabelRef("reduce"))
	k.body(at(0), s32, s64, sets[0])
	k.body(at(16), s32, s64, sets[1])
	ADDQ(U32(8), i)
	Label("reduce")
	for o := range k.outs {
		a := sets[0][o]
		VADDPD(sets[1][o], a, a)
		VADDPD(sets[3][o], sets[2][o], sets[2][o])
		VADDPD(sets[2][o], a, a)
		h := XMM()
		VEXTRACTF128(U8(1), a, h)
		VADDPD(h, a.AsX(), h)
		s := XMM()
		VPERMILPD(U8(1), h, s)
		VADDSD(s, h, h)
		Store(h, ReturnIndex(o))
	}
	VZEROUPPER()
	RET()
}

// softmaxGradRow generates f32SoftmaxGradRow, AttentionGrad's step
// through the softmax, in float64 as the Go loop computes it (the same
// operations in the same order, no FMA), so bit-identical to it.
func softmaxGradRow() {
	TEXT("f32SoftmaxGradRow", NOSPLIT, "func(n int, ds, p *float32, mean, scale float64)")
	Doc(
		"f32SoftmaxGradRow computes, for the whole vectors of 8 elements (n ≥ 0;",
		"the caller does the last n%8 elements; AVX):",
		"",
		"	for i < n&^7:",
		"		ds[i] = float32(float64(p[i]) * (float64(ds[i]) - mean) * scale)",
	)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	pd := Load(Param("ds"), GP64())
	pp := Load(Param("p"), GP64())
	mean, scale := YMM(), YMM()
	VBROADCASTSD(paramAddr("mean"), mean)
	VBROADCASTSD(paramAddr("scale"), scale)
	i := GP64()
	XORQ(i, i)
	ANDQ(I32(-8), n)
	JZ(LabelRef("done"))
	Label("loop")
	for h := range 2 {
		at := func(b Register) Mem { return Mem{Base: b, Index: i, Scale: 4, Disp: 16 * h} }
		d, q := YMM(), YMM()
		VCVTPS2PD(at(pd), d)
		VSUBPD(mean, d, d)
		VCVTPS2PD(at(pp), q)
		VMULPD(d, q, q)
		VMULPD(scale, q, q)
		r := XMM()
		VCVTPD2PSY(q, r)
		VMOVUPS(r, at(pd))
	}
	ADDQ(U32(8), i)
	CMPQ(i, n)
	JL(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}
