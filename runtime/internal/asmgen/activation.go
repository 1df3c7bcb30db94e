package main

// The AVX2/FMA float32 transcendental kernels (in elementwise_amd64.s):
// e^x, the logistic sigmoid and tanh as stream kernels for Unary, GELU
// (tanh form) and its gradient in one pass each, the softmax rows'
// e^(x·scale − shift) with their sum in float64, and the fused per-row
// cell kernels of the recurrent layers.
//
// Unlike the other element-wise kernels these are not bit-identical to
// the Go loops (which compute in float64 through math or a table-based
// e^x); they are accurate to a few ulp of the float64 functions rounded
// to float32 (elementwise_act_amd64_test.go measures it over a dense
// sweep of all float32 values). They use FMA and AVX2 integer
// instructions, so their callers check cpu.X86.HasAVX2 && HasFMA.
//
//	e^x:      x = k·ln2 + r, |r| ≤ ln2/2, with k = round(x·log2e) and r
//	          reduced in two FMA steps (the first one exact); e^r by the
//	          degree-7 polynomial of Cephes' expf, 1 + r + r²·P(r);
//	          the result scaled by 2^⌊k/2⌋·2^(k-⌊k/2⌋), two exact powers
//	          of two, so that results in the subnormal range are rounded
//	          once. x is clamped to [-104, 89] first: e^-104 rounds to 0,
//	          e^89 overflows to +Inf. NaN propagates.
//	sigmoid:  e = e^-|x|, σ(x) = 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0,
//	          so there is no overflow and σ(x) for x < -87 is the
//	          (subnormal) e^x instead of 0.
//	tanh:     |x| < 0.625: x + x³·P(x²), Cephes' tanhf polynomial;
//	          otherwise 1 - 2/(e^2|x| + 1) (clamped: e^89 = +Inf gives
//	          exactly 1), with the sign of x put back by OR (so -0 → -0,
//	          ±Inf → ±1, NaN → NaN).
//
// Divisions are the correctly rounded VDIVPS.

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// vecTab holds the 32-byte vectors of the constants of vecConsts, used as
// memory operands (AVX2 has no embedded broadcast, and there are not
// enough registers to hold them all in the fused kernels).
var (
	vecTab Mem
	vecOff = map[string]int{}
)

func f32bits(f float32) uint32 { return math.Float32bits(f) }

var vecConsts = []struct {
	name string
	bits uint32
}{
	{"iota", 0}, // int32 0, 1, …, 7: lane l holds bits+l
	{"eight", 8},
	{"one", f32bits(1)},
	{"two", f32bits(2)},
	{"sign", 0x80000000},
	{"abs", 0x7fffffff},
	{"exp127", 127}, // int32 exponent bias
	{"expLo", f32bits(-104)},
	{"expHi", f32bits(89)},
	{"log2e", f32bits(1.44269504088896341)},
	{"ln2hi", f32bits(float32(math.Ln2))},
	{"ln2lo", f32bits(float32(math.Ln2 - float64(float32(math.Ln2))))},
	// Cephes expf: e^r = 1 + r + r²·(p0 r⁵ + p1 r⁴ + … + p5).
	{"exp0", f32bits(1.9875691500e-4)},
	{"exp1", f32bits(1.3981999507e-3)},
	{"exp2", f32bits(8.3334519073e-3)},
	{"exp3", f32bits(4.1665795894e-2)},
	{"exp4", f32bits(1.6666665459e-1)},
	{"exp5", f32bits(5.0000001201e-1)},
	// Cephes tanhf: tanh x = x + x·z·(t0 z⁴ + … + t4), z = x², |x| < 0.625.
	{"tanhMax", f32bits(0.625)},
	{"tanh0", f32bits(-5.70498872745e-3)},
	{"tanh1", f32bits(2.06390887954e-2)},
	{"tanh2", f32bits(-5.37397155531e-2)},
	{"tanh3", f32bits(1.33314422036e-1)},
	{"tanh4", f32bits(-3.33332819422e-1)},
	// GELU's tanh form (runtime.geluC and the cubic's coefficient, and 3
	// times it for the derivative), rounded to float32 as the Go loops
	// round them.
	{"half", f32bits(0.5)},
	{"geluC", f32bits(0.7978845608028654)},
	{"gelu2C", f32bits(2 * 0.7978845608028654)},
	{"geluA", f32bits(0.044715)},
	{"gelu3A", f32bits(3 * 0.044715)},
}

// vectorConstants emits f32VecTab.
func vectorConstants() {
	vecTab = GLOBL("f32VecTab", RODATA|NOPTR)
	for i, c := range vecConsts {
		vecOff[c.name] = 32 * i
		for l := 0; l < 8; l++ {
			v := c.bits
			if c.name == "iota" {
				v += uint32(l)
			}
			DATA(32*i+4*l, U32(v))
		}
	}
}

// vc returns the vector constant name as a memory operand.
func vc(name string) Mem {
	off, ok := vecOff[name]
	if !ok {
		panic("asmgen: no vector constant " + name)
	}
	return vecTab.Offset(off)
}

// vload returns a new register holding the vector constant name.
func vload(name string) VecVirtual {
	y := YMM()
	VMOVUPS(vc(name), y)
	return y
}

// emitExp returns a new register holding e^x (x a register or memory
// operand, left unchanged). lo and hi select the clamps of x to [-104,
// 89]; a caller may drop one that its argument cannot need (x ≤ 0 never
// overflows). NaN propagates through both: VMAXPS and VMINPS return their
// second source, x, when either operand is NaN.
func emitExp(x Op, lo, hi bool) VecVirtual {
	r, ok := x.(VecVirtual)
	if !ok {
		r = load(x.(Mem))
	}
	return emitExpY([]VecVirtual{r}, lo, hi)[0]
}

// emitSigmoid returns a new register holding σ(x) for the register x.
func emitSigmoid(x VecVirtual) VecVirtual {
	nx := YMM()
	VORPS(vc("sign"), x, nx) // -|x|
	e := emitExp(nx, true, false)
	d := YMM()
	VADDPS(vc("one"), e, d)
	num := vload("one")
	VBLENDVPS(x, e, num, num) // e where x's sign bit is set, else 1
	VDIVPS(d, num, num)
	return num
}

// emitTanh returns a new register holding tanh x for the register x.
func emitTanh(x VecVirtual) VecVirtual {
	a := YMM()
	VANDPS(vc("abs"), x, a)
	// Large |x|: 1 - 2/(e^2|x| + 1).
	a2 := YMM()
	VADDPS(a, a, a2)
	e := emitExp(a2, false, true)
	VADDPS(vc("one"), e, e)
	q := vload("two")
	VDIVPS(e, q, q)
	big := vload("one")
	VSUBPS(q, big, big)
	// Small |x|: |x| + |x|·z·P(z), z = x².
	z := YMM()
	VMULPS(a, a, z)
	p := vload("tanh0")
	for _, c := range []string{"tanh1", "tanh2", "tanh3", "tanh4"} {
		VFMADD213PS(vc(c), z, p)
	}
	VMULPS(a, z, z)
	VFMADD213PS(a, z, p) // p = p·|x|·z + |x|
	m := YMM()
	VCMPPS(U8(0x11), vc("tanhMax"), a, m) // |x| < 0.625, false for NaN
	VBLENDVPS(m, p, big, big)
	VANDPS(vc("sign"), x, a)
	VORPS(a, big, big)
	return big
}

// emitExpY is emitExp for the registers xs (left unchanged), each step
// emitted for all of them before the next: the same operations per lane,
// so the same bits, with independent vectors side by side.
func emitExpY(xs []VecVirtual, lo, hi bool) []VecVirtual {
	n := len(xs)
	t := yregs(n)
	for i := range n {
		switch {
		case lo:
			VMOVUPS(vc("expLo"), t[i])
			VMAXPS(xs[i], t[i], t[i]) // x as the second source: NaN propagates
		case hi:
			VMOVUPS(vc("expHi"), t[i])
			VMINPS(xs[i], t[i], t[i])
		default:
			VMOVUPS(xs[i], t[i])
		}
	}
	if lo && hi {
		for i := range n {
			h := vload("expHi")
			VMINPS(t[i], h, t[i])
		}
	}
	k := yregs(n)
	for i := range n {
		VMULPS(vc("log2e"), t[i], k[i])
	}
	for i := range n {
		VROUNDPS(U8(0), k[i], k[i]) // to nearest even
	}
	for i := range n {
		VFNMADD231PS(vc("ln2hi"), k[i], t[i])
	}
	for i := range n {
		VFNMADD231PS(vc("ln2lo"), k[i], t[i])
	}
	p := make([]VecVirtual, n)
	for i := range n {
		p[i] = vload("exp0")
	}
	for _, c := range []string{"exp1", "exp2", "exp3", "exp4", "exp5"} {
		for i := range n {
			VFMADD213PS(vc(c), t[i], p[i]) // p = p·r + c
		}
	}
	for i := range n {
		r2 := YMM()
		VMULPS(t[i], t[i], r2)
		VFMADD213PS(t[i], r2, p[i]) // p = p·r² + r
	}
	for i := range n {
		VADDPS(vc("one"), p[i], p[i])
	}
	for i := range n {
		k1 := YMM()
		VCVTPS2DQ(k[i], k[i])
		VPSRAD(U8(1), k[i], k1)
		VPSUBD(k1, k[i], k[i])
		VPADDD(vc("exp127"), k1, k1)
		VPADDD(vc("exp127"), k[i], k[i])
		VPSLLD(U8(23), k1, k1)
		VPSLLD(U8(23), k[i], k[i])
		VMULPS(k1, p[i], p[i])
		VMULPS(k[i], p[i], p[i])
	}
	return p
}

// yregs returns n new ymm registers.
func yregs(n int) []VecVirtual {
	r := make([]VecVirtual, n)
	for i := range r {
		r[i] = YMM()
	}
	return r
}

// emitGeluSigmoidY returns new registers holding σ(2u), u = √(2/π)·(x +
// 0.044715·x³) (each product rounded in turn, no FMA, as the Go loop
// computes it, with 2√(2/π) for the last factor), for the registers xs:
// GELU's tanh approximation is x·σ(2u). Each step is emitted for all of xs
// before the next, with the operations per lane of emitSigmoid (emitExp
// with its low clamp only, the blend and the division), so the bits of the
// Go loop. A vector is a chain of some thirty dependent operations;
// side by side, several fill the FP pipes that one chain leaves idle.
func emitGeluSigmoidY(xs []VecVirtual) []VecVirtual {
	n := len(xs)
	u := yregs(n)
	for i, x := range xs {
		VMULPS(vc("geluA"), x, u[i])
	}
	for i, x := range xs {
		VMULPS(x, u[i], u[i])
	}
	for i, x := range xs {
		VMULPS(x, u[i], u[i])
	}
	for i, x := range xs {
		VADDPS(x, u[i], u[i])
	}
	for i := range n {
		VMULPS(vc("gelu2C"), u[i], u[i])
	}
	// σ(u): e = e^-|u|, then emitSigmoid's blend and division.
	nu := yregs(n)
	for i := range n {
		VORPS(vc("sign"), u[i], nu[i]) // -|u|
	}
	p := emitExpY(nu, true, false)
	num := make([]VecVirtual, n)
	for i := range n {
		d := YMM()
		VADDPS(vc("one"), p[i], d)
		num[i] = vload("one")
		VBLENDVPS(u[i], p[i], num[i], num[i]) // e where u's sign bit is set, else 1
		VDIVPS(d, num[i], num[i])
	}
	return num
}

// geluVecs is the number of vectors f32Gelu and f32GeluGrad compute side
// by side (emitGeluSigmoidY).
const geluVecs = 3

// activationStreams returns the stream kernels of Unary Exp, Sigmoid,
// Tanh and Gelu, UnaryGrad Gelu, and the SimpleRNN row kernels.
func activationStreams() []stream {
	act := func(name, doc string, f func(x Mem) VecVirtual) stream {
		return stream{
			name: name, arrays: []string{"out", "x"}, unroll: 2,
			doc: []string{doc},
			body: func(at func(int) Mem, k []VecVirtual) {
				VMOVUPS(f(at(1)), at(0))
			},
		}
	}
	return []stream{
		act("f32Exp", "out[i] = e^x[i]  // a few ulp; AVX2, FMA",
			func(x Mem) VecVirtual { return emitExp(x, true, true) }),
		act("f32Sigmoid", "out[i] = 1/(1 + e^-x[i])  // a few ulp; AVX2, FMA",
			func(x Mem) VecVirtual { return emitSigmoid(load(x)) }),
		act("f32Tanh", "out[i] = tanh(x[i])  // a few ulp; AVX2, FMA",
			func(x Mem) VecVirtual { return emitTanh(load(x)) }),
		{
			// The Go loop's float32 operations in its order around
			// f32Sigmoid's sigmoid, so the result is bit-identical to the
			// chunked loop (geluTanhLoop) on the same CPU.
			name: "f32Gelu", arrays: []string{"out", "x"}, unroll: geluVecs,
			doc: []string{
				"s := σ(1.5957692 * (x[i] + 0.044715*x[i]*x[i]*x[i]))  // σ as f32Sigmoid",
				"out[i] = x[i] * s  // = 0.5*x[i]*(1 + tanh(u)); AVX2, FMA",
			},
			vbody: func(vecs int, at func(a, v int) Mem) {
				x := yregs(vecs)
				for v := range vecs {
					VMOVUPS(at(1, v), x[v])
				}
				sg := emitGeluSigmoidY(x)
				for v := range vecs {
					VMULPS(x[v], sg[v], sg[v])
					VMOVUPS(sg[v], at(0, v))
				}
			},
		},
		{
			name: "f32GeluGrad", arrays: []string{"dx", "x", "dy"}, unroll: geluVecs,
			doc: []string{
				"s := σ(1.5957692 * (x[i] + 0.044715*x[i]*x[i]*x[i]))  // as f32Gelu",
				"dx[i] = dy[i] * (s + x[i]*s*(1-s)*1.5957692*(1+0.134145*x[i]*x[i]))",
			},
			vbody: func(vecs int, at func(a, v int) Mem) {
				x := yregs(vecs)
				for v := range vecs {
					VMOVUPS(at(1, v), x[v])
				}
				sg := emitGeluSigmoidY(x)
				for v := range vecs {
					// b = x·s·(1 - s)·2√(2/π)·(1 + 3·0.044715·x²), left to right.
					one := vload("one")
					b, t := YMM(), YMM()
					VMULPS(sg[v], x[v], b)
					VSUBPS(sg[v], one, t)
					VMULPS(t, b, b)
					VMULPS(vc("gelu2C"), b, b)
					VMULPS(vc("gelu3A"), x[v], t)
					VMULPS(x[v], t, t)
					VADDPS(one, t, t)
					VMULPS(t, b, b)
					// (s + b)·dy
					VADDPS(b, sg[v], sg[v])
					VMULPS(at(2, v), sg[v], sg[v])
					VMOVUPS(sg[v], at(0, v))
				}
			},
		},
		{
			name: "f32RNNFwd", arrays: []string{"a", "h", "b", "bh"}, unroll: 1,
			doc: []string{
				"v := tanh(a[i] + b[i] + h[i] + bh[i])  // sums in this order; AVX2, FMA",
				"a[i], h[i] = v, v",
			},
			body: func(at func(int) Mem, k []VecVirtual) {
				v := load(at(0))
				VADDPS(at(2), v, v)
				VADDPS(at(1), v, v)
				VADDPS(at(3), v, v)
				t := emitTanh(v)
				VMOVUPS(t, at(0))
				VMOVUPS(t, at(1))
			},
		},
		{
			name: "f32RNNBwd", arrays: []string{"dh", "h", "gh", "gx"}, unroll: 2,
			doc: []string{
				"v := dh[i] * (1 - h[i]*h[i])",
				"gh[i], gx[i] = v, v",
			},
			consts: []int{cOne},
			body: func(at func(int) Mem, k []VecVirtual) {
				v := load(at(1))
				VMULPS(v, v, v)
				u := YMM()
				VSUBPS(v, k[0], u)
				VMULPS(at(0), u, u)
				VMOVUPS(u, at(2))
				VMOVUPS(u, at(3))
			},
		},
	}
}

// gateKernel sets up a kernel over the whole vectors of 8 of the H
// columns of rows made of G-gate blocks: it loads H and the pointer
// parameters, and calls body for every vector with gate(p, q) the
// vector of gate block q (0 to 3) of the array of pointer p and at(p) the
// vector of a one-block array. The pointers advance by 32 bytes per
// vector; gate blocks are addressed with the byte offsets H·4 and H·12
// held in registers.
func gateKernel(name string, ptrs []string, doc []string, body func(gate func(p, q int) Mem, at func(p int) Mem)) {
	params := []string{"H int"}
	for _, p := range ptrs {
		params = append(params, p+" *float32")
	}
	TEXT(name, NOSPLIT, "func("+join(params)+")")
	Doc(doc...)
	Pragma("noescape")
	n := Load(Param("H"), GP64())
	p := make([]Register, len(ptrs))
	for i, s := range ptrs {
		p[i] = Load(Param(s), GP64())
	}
	hb, h3 := GP64(), GP64()
	MOVQ(n, hb)
	SHLQ(U8(2), hb)
	LEAQ(Mem{Base: hb, Index: hb, Scale: 2}, h3)
	SHRQ(U8(3), n)
	JZ(LabelRef("done"))
	Label("loop")
	gate := func(i, q int) Mem {
		switch q {
		case 0:
			return Mem{Base: p[i]}
		case 1:
			return Mem{Base: p[i], Index: hb, Scale: 1}
		case 2:
			return Mem{Base: p[i], Index: hb, Scale: 2}
		case 3:
			return Mem{Base: p[i], Index: h3, Scale: 1}
		}
		panic(fmt.Sprint("asmgen: gate ", q))
	}
	at := func(i int) Mem { return Mem{Base: p[i]} }
	body(gate, at)
	for _, r := range p {
		ADDQ(U32(32), r)
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

// lstmKernels generates the fused LSTM row kernels.
func lstmKernels() {
	// Pointers: 0 a, 1 hu, 2 b, 3 bh (4 gate blocks each), 4 cp, 5 c, 6 tc, 7 h, 8 y.
	gateKernel("f32LSTMFwd", []string{"a", "hu", "b", "bh", "cp", "c", "tc", "h", "y"}, []string{
		"f32LSTMFwd computes one LSTM row for the whole vectors of 8 of its H",
		"columns (the caller does the last H%8; AVX2, FMA). a, hu, b and bh are",
		"4H long, made of the gate blocks i, f, g, o of H columns each:",
		"",
		"	for j < H&^7, q < 4:",
		"		a[q*H+j] = a[q*H+j] + b[q*H+j] + hu[q*H+j] + bh[q*H+j]",
		"	for j < H&^7:",
		"		i, f, g, o := σ(a[j]), σ(a[H+j]), tanh(a[2H+j]), σ(a[3H+j])",
		"		a[j], a[H+j], a[2H+j], a[3H+j] = i, f, g, o",
		"		c[j] = f*cp[j] + i*g",
		"		tc[j] = tanh(c[j])",
		"		h[j] = o * tc[j]; y[j] = h[j]",
	}, func(gate func(p, q int) Mem, at func(p int) Mem) {
		var act [4]VecVirtual
		for q := range act {
			v := load(gate(0, q))
			VADDPS(gate(2, q), v, v)
			VADDPS(gate(1, q), v, v)
			VADDPS(gate(3, q), v, v)
			if q == 2 {
				act[q] = emitTanh(v)
			} else {
				act[q] = emitSigmoid(v)
			}
			VMOVUPS(act[q], gate(0, q))
		}
		i, f, g, o := act[0], act[1], act[2], act[3]
		VMULPS(at(4), f, f)
		VMULPS(g, i, i)
		VADDPS(i, f, f)
		VMOVUPS(f, at(5))
		tc := emitTanh(f)
		VMOVUPS(tc, at(6))
		VMULPS(tc, o, o)
		VMOVUPS(o, at(7))
		VMOVUPS(o, at(8))
	})

	// Pointers: 0 dh, 1 dc, 2 a (4 blocks), 3 cp, 4 tc, 5 gh, 6 gx (4 blocks).
	gateKernel("f32LSTMBwd", []string{"dh", "dc", "a", "cp", "tc", "gh", "gx"}, []string{
		"f32LSTMBwd computes the pre-activation gradients of one LSTM row for",
		"the whole vectors of 8 of its H columns (the caller does the last",
		"H%8), with the same float32 operations in the same order as the Go",
		"loop (bit-identical; AVX only). a, gh and gx are 4H long (gate blocks",
		"i, f, g, o):",
		"",
		"	for j < H&^7:",
		"		i, f, g, o, tv := a[j], a[H+j], a[2H+j], a[3H+j], tc[j]",
		"		c := dc[j] + dh[j]*o*(1-tv*tv)",
		"		dc[j] = c * f",
		"		vi, vf := c*g*i*(1-i), c*cp[j]*f*(1-f)",
		"		vg, vo := c*i*(1-g*g), dh[j]*tv*o*(1-o)",
		"		gh[j], gh[H+j], gh[2H+j], gh[3H+j] = vi, vf, vg, vo",
		"		gx[j], gx[H+j], gx[2H+j], gx[3H+j] = vi, vf, vg, vo",
	}, func(gate func(p, q int) Mem, at func(p int) Mem) {
		one := vload("one")
		d := load(at(0))
		tv := load(at(4))
		o := load(gate(2, 3))
		// c := dc + ((d*o) * (1 - tv*tv))
		c, t := YMM(), YMM()
		VMULPS(tv, tv, t)
		VSUBPS(t, one, t)
		VMULPS(o, d, c)
		VMULPS(t, c, c)
		VADDPS(at(1), c, c)
		f := load(gate(2, 1))
		VMULPS(f, c, t)
		VMOVUPS(t, at(1))
		store := func(v VecVirtual, q int) {
			VMOVUPS(v, gate(5, q))
			VMOVUPS(v, gate(6, q))
		}
		// vo = ((d*tv)*o)*(1-o)
		vo := YMM()
		VMULPS(tv, d, vo)
		VMULPS(o, vo, vo)
		VSUBPS(o, one, t)
		VMULPS(t, vo, vo)
		store(vo, 3)
		// vf = ((c*cp)*f)*(1-f)
		vf := YMM()
		VMULPS(at(3), c, vf)
		VMULPS(f, vf, vf)
		VSUBPS(f, one, t)
		VMULPS(t, vf, vf)
		store(vf, 1)
		i := load(gate(2, 0))
		g := load(gate(2, 2))
		// vi = ((c*g)*i)*(1-i)
		vi := YMM()
		VMULPS(g, c, vi)
		VMULPS(i, vi, vi)
		VSUBPS(i, one, t)
		VMULPS(t, vi, vi)
		store(vi, 0)
		// vg = (c*i)*(1-g*g)
		VMULPS(g, g, g)
		VSUBPS(g, one, g)
		VMULPS(i, c, c)
		VMULPS(g, c, c)
		store(c, 2)
	})
}

// expSumKernels generates the softmax rows' exponentials: e^(x·scale −
// shift) for the whole vectors of 8 elements, with the reduction by FMA
// (one rounding) and e^ as f32Exp, summed in float64 (each vector widened
// to two of 4 doubles) so that the sums are as accurate as the Go loops'.
// f32ExpSum also stores the exponentials; f32SumExp only sums them
// (log-sum-exp). The argument is clamped as f32Exp's is, so x·scale −
// shift = -1e30 or -Inf gives 0, not NaN.
func expSumKernels() {
	for _, store := range []bool{true, false} {
		name, sig := "f32SumExp", "func(n int, x *float32, scale, shift float32) float64"
		doc := []string{
			"f32SumExp returns, for the whole vectors of 8 elements (n ≥ 0; the",
			"caller does the last n%8 elements):",
			"",
			"	for i < n&^7:",
			"		sum += float64(e^(x[i]*scale - shift))  // e^ as f32Exp; one rounding before it (FMA); AVX2",
		}
		if store {
			name, sig = "f32ExpSum", "func(n int, out *float32, x *float32, scale, shift float32) float64"
			doc = []string{
				"f32ExpSum computes, for the whole vectors of 8 elements (n ≥ 0; the",
				"caller does the last n%8 elements), and returns sum:",
				"",
				"	for i < n&^7:",
				"		out[i] = e^(x[i]*scale - shift)  // e^ as f32Exp; one rounding before it (FMA); AVX2",
				"		sum += float64(out[i])",
			}
		}
		TEXT(name, NOSPLIT, sig)
		Doc(doc...)
		Pragma("noescape")
		n := Load(Param("n"), GP64())
		var po Register
		if store {
			po = Load(Param("out"), GP64())
		}
		px := Load(Param("x"), GP64())
		sc, sh := YMM(), YMM()
		VBROADCASTSS(paramAddr("scale"), sc)
		VBROADCASTSS(paramAddr("shift"), sh)
		acc0, acc1 := YMM(), YMM()
		VXORPD(acc0, acc0, acc0)
		VXORPD(acc1, acc1, acc1)
		i, n2 := GP64(), GP64()
		XORQ(i, i)
		ANDQ(I32(-8), n)
		// Two vectors an iteration (emitExpY), added to the sums in the
		// order one at a time would add them, then the one left.
		body := func(vecs int) {
			u := yregs(vecs)
			for v := range vecs {
				VMOVUPS(Mem{Base: px, Index: i, Scale: 4, Disp: 32 * v}, u[v])
				VFMSUB213PS(sh, sc, u[v]) // u = u·scale − shift
			}
			e := emitExpY(u, true, true)
			for v := range vecs {
				if store {
					VMOVUPS(e[v], Mem{Base: po, Index: i, Scale: 4, Disp: 32 * v})
				}
				lo, hi := YMM(), YMM()
				hx := XMM()
				VCVTPS2PD(e[v].AsX(), lo)
				VEXTRACTF128(U8(1), e[v], hx)
				VCVTPS2PD(hx, hi)
				VADDPD(lo, acc0, acc0)
				VADDPD(hi, acc1, acc1)
			}
		}
		MOVQ(n, n2)
		SUBQ(U32(16), n2)
		JL(LabelRef("one"))
		Label("loop")
		body(2)
		ADDQ(U32(16), i)
		CMPQ(i, n2)
		JLE(LabelRef("loop"))
		Label("one")
		CMPQ(i, n)
		JGE(LabelRef("sum"))
		body(1)
		ADDQ(U32(8), i)
		Label("sum")
		VADDPD(acc1, acc0, acc0)
		h := XMM()
		VEXTRACTF128(U8(1), acc0, h)
		s := XMM()
		VADDPD(h, acc0.AsX(), s)
		VPERMILPD(U8(1), s, h)
		VADDSD(h, s, s)
		Store(s, ReturnIndex(0))
		VZEROUPPER()
		RET()
	}
}
