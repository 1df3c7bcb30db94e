package main

// The AVX-512 element-wise and row kernels, on zmm registers (16 lanes):
//
//   - f32GeluZ, f32GeluGradZ and f32AdamZ: the same float32 operations per
//     lane as f32Gelu, f32GeluGrad and f32Adam on the whole vectors of 16,
//     so their results are bit-identical to those and to the Go loops;
//     several vectors an iteration, each step emitted for all of them
//     before the next (a GELU vector is a chain of some thirty dependent
//     operations).
//   - f32ExpSumZ, f32SumExpZ, f32SoftmaxRowZ, f32SoftmaxGradRowZ,
//     f32LayerNormZ, f32LayerNormGradZ: all the elements, the last vector
//     under the opmask K1 (zVecs), the same per-element operations as the
//     AVX2 kernels, their float64 sums in another order.
//
// The constants are the first lanes of f32VecTab's vectors, broadcast from
// memory (EVEX embedded broadcast) wherever the memory operand is the one
// that cannot be NaN-sensitive: the clamps of e^x keep x as the second
// source of VMAXPS and VMINPS, so a NaN propagates, as in emitExp.
// VROUNDPS becomes VRNDSCALEPS $0 (round to nearest even), VBLENDVPS a
// compare (or VPTESTMD on the sign bit) into an opmask and a masked move,
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

// The emitters below take several registers and emit each step for all
// of them before the next step: the vectors' chains interleaved, so that
// the core overlaps them without holding many iterations in flight (one
// GELU vector is a chain of some forty dependent operations).

// zregs returns k new zmm registers.
func zregs(k int) []VecVirtual {
	r := make([]VecVirtual, k)
	for i := range r {
		r[i] = ZMM()
	}
	return r
}

// zbcasts returns k new zmm registers holding constant name in every lane.
func zbcasts(name string, k int) []VecVirtual {
	r := make([]VecVirtual, k)
	for i := range r {
		r[i] = zbcast(name)
	}
	return r
}

// emitExpZ is emitExp(x, true, true) for zmm registers xs.
func emitExpZ(xs []VecVirtual) []VecVirtual {
	n := len(xs)
	t := zbcasts("expLo", n)
	for i := range n {
		VMAXPS(xs[i], t[i], t[i]) // x as the second source: NaN propagates
	}
	h := zbcast("expHi")
	for i := range n {
		VMINPS(t[i], h, t[i]) // t as the second source: NaN propagates
	}
	k := zregs(n)
	for i := range n {
		VMULPS_BCST(c32("log2e"), t[i], k[i])
	}
	for i := range n {
		VRNDSCALEPS(U8(0), k[i], k[i]) // to nearest even
	}
	for i := range n {
		VFNMADD231PS_BCST(c32("ln2hi"), k[i], t[i])
	}
	for i := range n {
		VFNMADD231PS_BCST(c32("ln2lo"), k[i], t[i])
	}
	p := zbcasts("exp0", n)
	for _, c := range []string{"exp1", "exp2", "exp3", "exp4", "exp5"} {
		for i := range n {
			VFMADD213PS_BCST(c32(c), t[i], p[i])
		}
	}
	r2 := zregs(n)
	for i := range n {
		VMULPS(t[i], t[i], r2[i])
		VFMADD213PS(t[i], r2[i], p[i])
		VADDPS_BCST(c32("one"), p[i], p[i])
	}
	k1 := zregs(n)
	for i := range n {
		VCVTPS2DQ(k[i], k[i])
		VPSRAD(U8(1), k[i], k1[i])
		VPSUBD(k1[i], k[i], k[i])
		VPADDD_BCST(c32("exp127"), k1[i], k1[i])
		VPADDD_BCST(c32("exp127"), k[i], k[i])
		VPSLLD(U8(23), k1[i], k1[i])
		VPSLLD(U8(23), k[i], k[i])
		VMULPS(k1[i], p[i], p[i])
		VMULPS(k[i], p[i], p[i])
	}
	return p
}

// emitSigmoidZ is emitSigmoid for zmm registers xs: σ(x) = e/(1 + e) with
// e = e^-|x| where x's sign bit is set, else 1/(1 + e); the blend on the
// sign bit is an opmask from VPTESTMD.
func emitSigmoidZ(xs []VecVirtual) []VecVirtual {
	n := len(xs)
	nx := zregs(n)
	for i := range n {
		VPORD_BCST(c32("sign"), xs[i], nx[i]) // -|x|
	}
	e := emitExpZ(nx)
	d := zregs(n)
	num := zbcasts("one", n)
	for i := range n {
		VADDPS_BCST(c32("one"), e[i], d[i])
		m := K()
		VPTESTMD_BCST(c32("sign"), xs[i], m)
		VMOVAPS(e[i], m, num[i]) // e where x's sign bit is set, else 1
		VDIVPS(d[i], num[i], num[i])
	}
	return num
}

// emitGeluSigmoidZ is emitGeluSigmoidY for zmm registers xs.
func emitGeluSigmoidZ(xs []VecVirtual) []VecVirtual {
	u := zregs(len(xs))
	for i, x := range xs {
		VMULPS_BCST(c32("geluA"), x, u[i])
		VMULPS(x, u[i], u[i])
		VMULPS(x, u[i], u[i])
		VADDPS(x, u[i], u[i])
		VMULPS_BCST(c32("gelu2C"), u[i], u[i])
	}
	return emitSigmoidZ(u)
}

// zStream generates a kernel over the whole vectors of 16 elements:
//
//	func name(n int, arrays... *float32)
//
// with body run on every vector, at(a, v) the 64 bytes of vector v of the
// iteration in array a: on zUnroll vectors at a time, then on the ones
// left one at a time.
func zStream(name string, arrays []string, doc []string, body func(vecs int, at func(a, v int) Mem)) {
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
	i, end := GP64(), GP64()
	XORQ(i, i)
	ANDQ(I32(-16), n)
	MOVQ(n, end)
	ANDQ(I32(-16*zUnroll), end)
	at := func(a, v int) Mem { return Mem{Base: ptr[a], Index: i, Scale: 4, Disp: 64 * v} }
	JZ(LabelRef("one"))
	Label("loop")
	body(zUnroll, at)
	ADDQ(U32(16*zUnroll), i)
	CMPQ(i, end)
	JL(LabelRef("loop"))
	Label("one")
	CMPQ(i, n)
	JGE(LabelRef("done"))
	body(1, at)
	ADDQ(U32(16), i)
	JMP(LabelRef("one"))
	Label("done")
	VZEROUPPER()
	RET()
}

// zUnroll is the number of vectors zStream's loop takes at a time.
const zUnroll = 4

func geluZKernels() {
	zStream("f32GeluZ", []string{"out", "x"}, []string{
		"f32GeluZ is f32Gelu on AVX-512F for the whole vectors of 16 elements",
		"(i < n&^15), bit-identical to it.",
	}, func(vecs int, at func(a, v int) Mem) {
		x := zregs(vecs)
		for v := range vecs {
			VMOVUPS(at(1, v), x[v])
		}
		sg := emitGeluSigmoidZ(x)
		for v := range vecs {
			VMULPS(x[v], sg[v], sg[v])
			VMOVUPS(sg[v], at(0, v))
		}
	})
	zStream("f32GeluGradZ", []string{"dx", "x", "dy"}, []string{
		"f32GeluGradZ is f32GeluGrad on AVX-512F for the whole vectors of 16",
		"elements (i < n&^15), bit-identical to it.",
	}, func(vecs int, at func(a, v int) Mem) {
		x := zregs(vecs)
		for v := range vecs {
			VMOVUPS(at(1, v), x[v])
		}
		sg := emitGeluSigmoidZ(x)
		for v := range vecs {
			one := zbcast("one")
			b, t := ZMM(), ZMM()
			VMULPS(sg[v], x[v], b)
			VSUBPS(sg[v], one, t)
			VMULPS(t, b, b)
			VMULPS_BCST(c32("gelu2C"), b, b)
			VMULPS_BCST(c32("gelu3A"), x[v], t)
			VMULPS(x[v], t, t)
			VADDPS(one, t, t)
			VMULPS(t, b, b)
			VADDPS(b, sg[v], sg[v])
			VMULPS(at(2, v), sg[v], sg[v])
			VMOVUPS(sg[v], at(0, v))
		}
	})
}

// expSumZKernels generates f32ExpSumZ and f32SumExpZ, expSumKernels' on
// AVX-512F: all n elements, the last vector under an opmask (so a causal
// attention row needs no padding), four vectors an iteration interleaved,
// e^ as f32Exp's per lane, summed in float64.
func expSumZKernels() {
	mask := kmaskTable("expKmask")
	for _, store := range []bool{true, false} {
		name, sig := "f32SumExpZ", "func(n int, x *float32, scale, shift float32) float64"
		doc := []string{
			"f32SumExpZ is f32SumExp on AVX-512F for all n ≥ 0 elements, the sum",
			"in another order.",
		}
		if store {
			name, sig = "f32ExpSumZ", "func(n int, out *float32, x *float32, scale, shift float32) float64"
			doc = []string{
				"f32ExpSumZ is f32ExpSum on AVX-512F for all n ≥ 0 elements: the same",
				"exponentials, the sum in another order.",
			}
		}
		TEXT(name, NOSPLIT, sig)
		Doc(doc...)
		Pragma("noescape")
		n := Load(Param("n"), GP64())
		po := Register(nil)
		if store {
			po = Load(Param("out"), GP64())
		}
		px := Load(Param("x"), GP64())
		sc, sh := ZMM(), ZMM()
		VBROADCASTSS(paramAddr("scale"), sc)
		VBROADCASTSS(paramAddr("shift"), sh)
		sum := emitExpSumZ(n, po, px, sc, sh, mask, "")
		Store(sum, ReturnIndex(0))
		VZEROUPPER()
		RET()
	}
	softmaxRowZ(mask)
	softmaxGradRowZ(mask)
	layerNormZ(mask)
	layerNormGradZ(mask)
	adamZ()
}

// zVecs emits a loop over the n elements at index register i (cleared
// first): body on zUnroll vectors at a time, then on the whole vectors
// left one at a time, then on the last n%16 elements as one vector under
// the opmask K1 (masked true). Labels are prefixed with name.
func zVecs(n Register, mask Mem, name string, body func(i Register, vecs int, masked bool)) {
	i, end := GP64(), GP64()
	XORQ(i, i)
	MOVQ(n, end)
	ANDQ(I32(-16*zUnroll), end)
	CMPQ(end, I8(0))
	JE(LabelRef(name + "one"))
	Label(name + "loop")
	body(i, zUnroll, false)
	ADDQ(U32(16*zUnroll), i)
	CMPQ(i, end)
	JL(LabelRef(name + "loop"))
	Label(name + "one")
	left := GP64()
	MOVQ(n, left)
	SUBQ(i, left)
	CMPQ(left, I8(16))
	JL(LabelRef(name + "tail"))
	body(i, 1, false)
	ADDQ(U32(16), i)
	JMP(LabelRef(name + "one"))
	Label(name + "tail")
	TESTQ(left, left)
	JZ(LabelRef(name + "done"))
	t := GP64()
	LEAQ(mask, t)
	KMOVW(Mem{Base: t, Index: left, Scale: 2}, K1)
	body(i, 1, true)
	Label(name + "done")
}

// zAt is vector v of an iteration at index i of the array at b.
func zAt(b, i Register, v int) Mem { return Mem{Base: b, Index: i, Scale: 4, Disp: 64 * v} }

// emitExpSumZ emits out[i] = e^(x[i]·scale − shift) for i < n (no stores
// with po nil) and returns a new register holding Σ out[i] in float64.
func emitExpSumZ(n, po, px Register, sc, sh VecVirtual, mask Mem, name string) VecVirtual {
	acc0, acc1 := ZMM(), ZMM()
	VPXORQ(acc0, acc0, acc0)
	VPXORQ(acc1, acc1, acc1)
	zVecs(n, mask, name+"exp", func(i Register, vecs int, masked bool) {
		u := zregs(vecs)
		for v := range vecs {
			if masked {
				VMOVUPS_Z(zAt(px, i, v), K1, u[v])
			} else {
				VMOVUPS(zAt(px, i, v), u[v])
			}
			VFMSUB213PS(sh, sc, u[v]) // u = u·scale − shift
		}
		e := emitExpZ(u)
		for v := range vecs {
			if masked {
				VMOVAPS_Z(e[v], K1, e[v]) // the lanes past n add 0
			}
			if po != nil {
				if masked {
					VMOVUPS(e[v], K1, zAt(po, i, v))
				} else {
					VMOVUPS(e[v], zAt(po, i, v))
				}
			}
			lo, hi := zHalves(e[v])
			VADDPD(lo, acc0, acc0)
			VADDPD(hi, acc1, acc1)
		}
	})
	return zSum64(acc0, acc1)
}

// softmaxRowZ generates f32SoftmaxRowZ, attention's softmax of one row in
// one call: the operations of rowMax, expShift and Scale on it.
func softmaxRowZ(mask Mem) {
	TEXT("f32SoftmaxRowZ", NOSPLIT, "func(n int, x *float32, scale float64)")
	Doc(
		"f32SoftmaxRowZ computes in place, for n ≥ 1 elements (AVX-512F), as",
		"attentionSoftmax's row loop does with rowMax, expShift and Scale:",
		"",
		"	m := max(x[:n]) (an element replaces m only when it is greater)",
		"	shift := float32(float64(m) * scale)",
		"	x[i] = e^(x[i]*float32(scale) - shift)  // f32ExpSumZ",
		"	x[i] *= float32(1 / Σ x[i])             // the sum in float64",
	)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	px := Load(Param("x"), GP64())
	m := ZMM()
	VBROADCASTSS(Mem{Base: px}, m)
	zVecs(n, mask, "max", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			x := ZMM()
			if masked {
				VMOVAPS(m, x) // the lanes past n hold m
				VMOVUPS(zAt(px, i, v), K1, x)
			} else {
				VMOVUPS(zAt(px, i, v), x)
			}
			VMAXPS(m, x, m) // m = x > m ? x : m
		}
	})
	y := YMM()
	VEXTRACTF64X4(U8(1), m, y)
	VMAXPS(m.AsY(), y, y)
	h := XMM()
	VEXTRACTF128(U8(1), y, h)
	VMAXPS(y.AsX(), h, h)
	t := XMM()
	VPERMILPS(U8(0x4e), h, t)
	VMAXPS(h, t, t)
	VPERMILPS(U8(0xb1), t, h)
	VMAXPS(t, h, h)
	// shift = float32(float64(m)·scale), scale32 = float32(scale)
	sd := XMM()
	VCVTSS2SD(h, sd, sd)
	VMULSD(paramAddr("scale"), sd, sd)
	VCVTSD2SS(sd, sd, sd)
	sh, sc := ZMM(), ZMM()
	VBROADCASTSS(sd, sh)
	s32 := XMM()
	VMOVSD(paramAddr("scale"), s32)
	VCVTSD2SS(s32, s32, s32)
	VBROADCASTSS(s32, sc)
	sum := emitExpSumZ(n, px, px, sc, sh, mask, "")
	// inv = float32(1/sum)
	one := XMM()
	VCVTSS2SD(c32("one"), one, one)
	VDIVSD(sum, one, one)
	VCVTSD2SS(one, one, one)
	inv := ZMM()
	VBROADCASTSS(one, inv)
	zVecs(n, mask, "scale", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			x := ZMM()
			if masked {
				VMOVUPS_Z(zAt(px, i, v), K1, x)
				VMULPS(inv, x, x)
				VMOVUPS(x, K1, zAt(px, i, v))
			} else {
				VMULPS(zAt(px, i, v), inv, x)
				VMOVUPS(x, zAt(px, i, v))
			}
		}
	})
	VZEROUPPER()
	RET()
}

// softmaxGradRowZ generates f32SoftmaxGradRowZ, AttentionGrad's step
// through the softmax for one row in one call (AVX-512F): the mean as
// f32Dot64 takes it (float64, another order, the last vector masked),
// then the update as f32SoftmaxGradRow computes it (bit-identical given
// the mean).
func softmaxGradRowZ(mask Mem) {
	TEXT("f32SoftmaxGradRowZ", NOSPLIT, "func(n int, ds, p *float32, scale float64)")
	Doc(
		"f32SoftmaxGradRowZ computes in place, for n ≥ 0 elements (AVX-512F):",
		"",
		"	mean := Σ float64(p[i]) * float64(ds[i])  // in float64, in another order",
		"	ds[i] = float32(float64(p[i]) * (float64(ds[i]) - mean) * scale)",
	)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	pd := Load(Param("ds"), GP64())
	pp := Load(Param("p"), GP64())
	acc0, acc1 := ZMM(), ZMM()
	VPXORQ(acc0, acc0, acc0)
	VPXORQ(acc1, acc1, acc1)
	// halves widens the 16 floats of x into two registers of 8 doubles.
	zVecs(n, mask, "dot", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			d0, d1 := zHalves(zLoad(zAt(pd, i, v), masked))
			p0, p1 := zHalves(zLoad(zAt(pp, i, v), masked))
			VFMADD231PD(p0, d0, acc0) // exact product of two float32s
			VFMADD231PD(p1, d1, acc1)
		}
	})
	x2 := zSum64(acc0, acc1)
	mean, scale := ZMM(), ZMM()
	VBROADCASTSD(x2, mean)
	VBROADCASTSD(paramAddr("scale"), scale)
	zVecs(n, mask, "upd", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			d0, d1 := zHalves(zLoad(zAt(pd, i, v), masked))
			p0, p1 := zHalves(zLoad(zAt(pp, i, v), masked))
			r0, r1 := YMM(), YMM()
			for _, q := range []struct {
				d, p VecVirtual
				r    VecVirtual
			}{{d0, p0, r0}, {d1, p1, r1}} {
				VSUBPD(mean, q.d, q.d)
				VMULPD(q.d, q.p, q.p)
				VMULPD(scale, q.p, q.p)
				VCVTPD2PS(q.p, q.r)
			}
			out := ZMM()
			VINSERTF64X4(U8(1), r1, r0.AsZ(), out)
			zStore(out, zAt(pd, i, v), masked)
		}
	})
	VZEROUPPER()
	RET()
}

// layerNormZ generates f32LayerNormZ, LayerNorm's rows in one call
// (AVX-512F): per row the float64 mean and squared deviations (the last
// vector masked, the sums in another order than f32Sum64's), the
// reciprocal deviation in float64 as the Go loop computes it, and the row
// as f32LayerNormRow computes it.
func layerNormZ(mask Mem) {
	TEXT("f32LayerNormZ", NOSPLIT, "func(rows, C int, out, saved, x, gamma, beta *float32, eps float64)")
	Doc(
		"f32LayerNormZ computes, for rows ≥ 1 rows of C ≥ 1 elements (AVX-512F):",
		"",
		"	mu := Σ float64(x[j]) / C                      // in float64",
		"	rs := 1 / sqrt(Σ (float64(x[j]) - mu)² / C + eps)  // in float64",
		"	m, rt := float32(mu), float32(rs)",
		"	saved[r], saved[rows+r] = m, rt",
		"	out[j] = (x[j]-m)*rt*gamma[j] + beta[j]",
	)
	Pragma("noescape")
	rows := Load(Param("rows"), GP64())
	n := Load(Param("C"), GP64())
	po := Load(Param("out"), GP64())
	ps := Load(Param("saved"), GP64())
	px := Load(Param("x"), GP64())
	pg := Load(Param("gamma"), GP64())
	pb := Load(Param("beta"), GP64())
	pr, cd, rowBytes := zNormRows(rows, n, ps)
	Label("row")
	s0, s1 := ZMM(), ZMM()
	VPXORQ(s0, s0, s0)
	VPXORQ(s1, s1, s1)
	zVecs(n, mask, "sum", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			lo, hi := zHalves(zLoad(zAt(px, i, v), masked))
			VADDPD(lo, s0, s0)
			VADDPD(hi, s1, s1)
		}
	})
	mu := zSum64(s0, s1)
	VDIVSD(cd, mu, mu)
	mz := ZMM()
	VBROADCASTSD(mu, mz)
	q0, q1 := ZMM(), ZMM()
	VPXORQ(q0, q0, q0)
	VPXORQ(q1, q1, q1)
	zVecs(n, mask, "dev", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			lo, hi := zHalves(zLoad(zAt(px, i, v), masked))
			VSUBPD(mz, lo, lo)
			VSUBPD(mz, hi, hi)
			if masked {
				// The lanes past C are 0 - mu: drop them.
				KSHIFTRW(U8(8), K1, K2)
				VMOVAPD_Z(lo, K1, lo)
				VMOVAPD_Z(hi, K2, hi)
			}
			VFMADD231PD(lo, lo, q0)
			VFMADD231PD(hi, hi, q1)
		}
	})
	q := zSum64(q0, q1)
	VDIVSD(cd, q, q)
	VADDSD(paramAddr("eps"), q, q)
	VSQRTSD(q, q, q)
	one := XMM()
	VCVTSS2SD(c32("one"), one, one)
	VDIVSD(q, one, one) // rs
	m32, rt32 := XMM(), XMM()
	VCVTSD2SS(mu, m32, m32)
	VCVTSD2SS(one, rt32, rt32)
	VMOVSS(m32, Mem{Base: ps})
	VMOVSS(rt32, Mem{Base: pr})
	m, rt := ZMM(), ZMM()
	VBROADCASTSS(m32, m)
	VBROADCASTSS(rt32, rt)
	zVecs(n, mask, "out", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			t := zLoad(zAt(px, i, v), masked)
			VSUBPS(m, t, t)
			VMULPS(rt, t, t)
			if masked {
				g, b := zLoad(zAt(pg, i, v), true), zLoad(zAt(pb, i, v), true)
				VMULPS(g, t, t)
				VADDPS(b, t, t)
				VMOVUPS(t, K1, zAt(po, i, v))
			} else {
				VMULPS(zAt(pg, i, v), t, t)
				VADDPS(zAt(pb, i, v), t, t)
				VMOVUPS(t, zAt(po, i, v))
			}
		}
	})
	ADDQ(rowBytes, px)
	ADDQ(rowBytes, po)
	ADDQ(U8(4), ps)
	ADDQ(U8(4), pr)
	DECQ(rows)
	JNZ(LabelRef("row"))
	VZEROUPPER()
	RET()
}

// layerNormGradZ generates f32LayerNormGradZ, LayerNormGrad's rows in one
// call (AVX-512F): per row f32LayerNormGradSums' sums (the last vector
// masked, in another order), their means rounded to float32, then the row
// as f32LayerNormGradRow computes it.
func layerNormGradZ(mask Mem) {
	TEXT("f32LayerNormGradZ", NOSPLIT, "func(rows, C int, dx, dgamma, dbeta, dy, x, gamma, saved *float32)")
	Doc(
		"f32LayerNormGradZ computes, for rows ≥ 1 rows of C ≥ 1 elements (AVX-512F):",
		"",
		"	m, rs := saved[r], saved[rows+r]",
		"	a := Σ float64(dy[j]*gamma[j]) / C                      // in float64",
		"	b := Σ float64(dy[j]*gamma[j]) * float64((x[j]-m)*rs) / C",
		"	ma, mb := float32(a), float32(b)",
		"	xh, g := (x[j]-m)*rs, dy[j]",
		"	dgamma[j] += g * xh; dbeta[j] += g",
		"	dx[j] = rs * (g*gamma[j] - ma - xh*mb)",
	)
	Pragma("noescape")
	rows := Load(Param("rows"), GP64())
	n := Load(Param("C"), GP64())
	pdx := Load(Param("dx"), GP64())
	pdg := Load(Param("dgamma"), GP64())
	pdb := Load(Param("dbeta"), GP64())
	pdy := Load(Param("dy"), GP64())
	px := Load(Param("x"), GP64())
	pg := Load(Param("gamma"), GP64())
	pm := Load(Param("saved"), GP64())
	pr, cd, rowBytes := zNormRows(rows, n, pm)
	Label("row")
	m, rs := ZMM(), ZMM()
	VBROADCASTSS(Mem{Base: pm}, m)
	VBROADCASTSS(Mem{Base: pr}, rs)
	a0, a1, b0, b1 := ZMM(), ZMM(), ZMM(), ZMM()
	for _, z := range []VecVirtual{a0, a1, b0, b1} {
		VPXORQ(z, z, z)
	}
	zVecs(n, mask, "sums", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			g := zLoad(zAt(pdy, i, v), masked)
			if masked {
				VMULPS(zLoad(zAt(pg, i, v), true), g, g)
			} else {
				VMULPS(zAt(pg, i, v), g, g)
			}
			xh := zLoad(zAt(px, i, v), masked)
			VSUBPS(m, xh, xh)
			VMULPS(rs, xh, xh)
			g0, g1 := zHalves(g)
			x0, x1 := zHalves(xh)
			VADDPD(g0, a0, a0)
			VADDPD(g1, a1, a1)
			VFMADD231PD(x0, g0, b0) // exact product of two float32s
			VFMADD231PD(x1, g1, b1)
		}
	})
	a := zSum64(a0, a1)
	b := zSum64(b0, b1)
	VDIVSD(cd, a, a)
	VDIVSD(cd, b, b)
	VCVTSD2SS(a, a, a)
	VCVTSD2SS(b, b, b)
	ma, mb := ZMM(), ZMM()
	VBROADCASTSS(a, ma)
	VBROADCASTSS(b, mb)
	zVecs(n, mask, "row", func(i Register, vecs int, masked bool) {
		for v := range vecs {
			xh := zLoad(zAt(px, i, v), masked)
			VSUBPS(m, xh, xh)
			VMULPS(rs, xh, xh)
			g := zLoad(zAt(pdy, i, v), masked)
			t := ZMM()
			VMULPS(xh, g, t)
			u := zLoad(zAt(pdg, i, v), masked)
			VADDPS(t, u, u)
			zStore(u, zAt(pdg, i, v), masked)
			u2 := zLoad(zAt(pdb, i, v), masked)
			VADDPS(g, u2, u2)
			zStore(u2, zAt(pdb, i, v), masked)
			if masked {
				VMULPS(zLoad(zAt(pg, i, v), true), g, g)
			} else {
				VMULPS(zAt(pg, i, v), g, g)
			}
			VSUBPS(ma, g, g)
			VMULPS(mb, xh, xh)
			VSUBPS(xh, g, g)
			VMULPS(rs, g, g)
			zStore(g, zAt(pdx, i, v), masked)
		}
	})
	ADDQ(rowBytes, px)
	ADDQ(rowBytes, pdy)
	ADDQ(rowBytes, pdx)
	ADDQ(U8(4), pm)
	ADDQ(U8(4), pr)
	DECQ(rows)
	JNZ(LabelRef("row"))
	VZEROUPPER()
	RET()
}

// adamZ generates f32AdamZ, f32Adam on AVX-512F: the same float32
// operations per lane (the flush of tiny moments as an opmask from the
// same comparison), two vectors of 16 an iteration interleaved.
func adamZ() {
	TEXT("f32AdamZ", NOSPLIT, "func(n int, p, grad, m, v *float32, b1, c1, b2, c2, invSqrtBC2, eps, step, decay float32)")
	Doc(
		"f32AdamZ is f32Adam on AVX-512F for the whole vectors of 16 elements",
		"(i < n&^15), bit-identical to it.",
	)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	pp := Load(Param("p"), GP64())
	pg := Load(Param("grad"), GP64())
	pm := Load(Param("m"), GP64())
	pv := Load(Param("v"), GP64())
	k := map[string]VecVirtual{}
	for _, name := range []string{"b1", "c1", "b2", "c2", "invSqrtBC2", "eps", "step", "decay"} {
		k[name] = ZMM()
		VBROADCASTSS(paramAddr(name), k[name])
	}
	abs, tiny := zbcast("abs"), ZMM()
	VBROADCASTSS(constTab.Offset(cFlush), tiny)
	flush := func(x VecVirtual) {
		t := ZMM()
		VPANDD(x, abs, t)
		f := K()
		VCMPPS(U8(0x15), tiny, t, f) // !(|x| < tiny), unordered true: as flushTiny
		VMOVAPS_Z(x, f, x)
	}
	i := GP64()
	XORQ(i, i)
	ANDQ(I32(-16), n)
	JZ(LabelRef("done"))
	const u = 2
	end := GP64()
	MOVQ(n, end)
	ANDQ(I32(-16*u), end)
	body := func(vecs int) {
		at := func(b Register, v int) Mem { return Mem{Base: b, Index: i, Scale: 4, Disp: 64 * v} }
		g, m, v, t := zregs(vecs), zregs(vecs), zregs(vecs), zregs(vecs)
		for j := range vecs {
			VMOVUPS(at(pg, j), g[j])
			VMULPS(at(pm, j), k["b1"], m[j])
			VMULPS(g[j], k["c1"], t[j])
			VADDPS(t[j], m[j], m[j])
		}
		for j := range vecs {
			flush(m[j])
			VMOVUPS(m[j], at(pm, j))
			VMULPS(g[j], k["c2"], t[j])
			VMULPS(g[j], t[j], t[j])
			VMULPS(at(pv, j), k["b2"], v[j])
			VADDPS(t[j], v[j], v[j])
		}
		for j := range vecs {
			flush(v[j])
			VMOVUPS(v[j], at(pv, j))
			VSQRTPS(v[j], v[j])
			VMULPS(k["invSqrtBC2"], v[j], v[j])
			VADDPS(k["eps"], v[j], v[j])
		}
		for j := range vecs {
			VDIVPS(v[j], m[j], m[j])
			VMULPS(k["step"], m[j], m[j])
			VMULPS(at(pp, j), k["decay"], g[j])
			VSUBPS(m[j], g[j], g[j])
			VMOVUPS(g[j], at(pp, j))
		}
	}
	CMPQ(end, I8(0))
	JE(LabelRef("one"))
	Label("loop")
	body(u)
	ADDQ(U32(16*u), i)
	CMPQ(i, end)
	JL(LabelRef("loop"))
	Label("one")
	CMPQ(i, n)
	JGE(LabelRef("done"))
	body(1)
	Label("done")
	VZEROUPPER()
	RET()
}

// zHalves widens the 16 floats of x into two new registers of 8 doubles.
func zHalves(x VecVirtual) (lo, hi VecVirtual) {
	lo, hi = ZMM(), ZMM()
	hy := YMM()
	VCVTPS2PD(x.AsY(), lo)
	VEXTRACTF64X4(U8(1), x, hy)
	VCVTPS2PD(hy, hi)
	return lo, hi
}

// zLoad loads the 16 floats at m into a new register, with masked only
// the lanes of K1 (the others 0).
func zLoad(m Mem, masked bool) VecVirtual {
	x := ZMM()
	if masked {
		VMOVUPS_Z(m, K1, x)
	} else {
		VMOVUPS(m, x)
	}
	return x
}

// zStore stores x at m, with masked only the lanes of K1.
func zStore(x VecVirtual, m Mem, masked bool) {
	if masked {
		VMOVUPS(x, K1, m)
	} else {
		VMOVUPS(x, m)
	}
}

// zSum64 returns a new register holding the sum of the 16 doubles of acc0
// and acc1 (acc0 is overwritten).
func zSum64(acc0, acc1 VecVirtual) VecVirtual {
	VADDPD(acc1, acc0, acc0)
	y := YMM()
	VEXTRACTF64X4(U8(1), acc0, y)
	VADDPD(y, acc0.AsY(), y)
	h := XMM()
	VEXTRACTF128(U8(1), y, h)
	x2 := XMM()
	VADDPD(h, y.AsX(), x2)
	VPERMILPD(U8(1), x2, h)
	VADDSD(h, x2, x2)
	return x2
}

// zNormRows sets up the row loop that the layer-norm kernels share: a
// pointer to saved[rows] (each row's 1/σ, after the means), C as a float64
// (the divisor of the means), and the length of a row in bytes.
func zNormRows(rows, n, saved Register) (pr Register, cd VecVirtual, rowBytes Register) {
	pr = GP64()
	LEAQ(Mem{Base: saved, Index: rows, Scale: 4}, pr)
	cd = XMM()
	VCVTSI2SDQ(n, cd, cd)
	rowBytes = GP64()
	MOVQ(n, rowBytes)
	SHLQ(U8(2), rowBytes)
	return pr, cd, rowBytes
}
