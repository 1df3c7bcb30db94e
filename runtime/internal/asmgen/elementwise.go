package main

// The AVX float32 element-wise, optimizer and reduction kernels
// (elementwise_amd64.s).
//
// Every kernel computes exactly what the Go loop it replaces computes under
// the default GOAMD64=v1 (where the compiler fuses nothing): the same
// operations, each rounded to float32, in the same order, so results are
// bit-identical (up to NaN payloads). There are therefore no FMAs here,
// and square roots and divisions are the correctly rounded VSQRTPS and
// VDIVPS, never the RCPPS/RSQRTPS approximations. The kernels are bound by
// memory or by the divider, not by the extra multiply-add µops.
//
// The exceptions are the transcendental kernels of activation.go (e^x,
// sigmoid, tanh and the fused recurrent cells that use them), which use
// FMA and are accurate to a few ulp; conv.go adds the exact copy, max-pool
// and double column-sum kernels of the convolution and recurrent layers.

import (
	"fmt"
	"math"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// constTab holds float32 constants the kernels broadcast, at these byte
// offsets (cZero is not in the table: it is made with VXORPS).
var constTab Mem

const (
	cZero  = -1
	cOne   = 0
	cHalf  = 4
	cSign  = 8  // -0: the sign bit
	cAbs   = 12 // all bits but the sign bit
	cFlush = 16 // momentFlush
)

// momentFlush is runtime.momentFlush (optim.go): the optimizer kernels set
// a moment with |m| < momentFlush to 0 after its update, as the Go loops
// do. The runtime tests check that both agree on either side of it.
const momentFlush = 0x1p-100

// flushTiny sets the lanes of x with |x| < momentFlush (ordered: NaN is
// kept) to +0, using the broadcast constants abs (cAbs) and tiny (cFlush)
// and the scratch register t. It is exactly the Go loops'
//
//	if -tiny < x && x < tiny { x = 0 }
func flushTiny(x, abs, tiny, t VecVirtual) {
	VANDPS(x, abs, t)
	VCMPPS(U8(0x15), tiny, t, t) // !(|x| < tiny), unordered true, quiet: NLT_UQ
	VANDPS(t, x, x)
}

func elementwiseKernels() {
	constTab = GLOBL("f32ConstTab", RODATA|NOPTR)
	DATA(cOne, U32(0x3f800000))
	DATA(cHalf, U32(0x3f000000))
	DATA(cSign, U32(0x80000000))
	DATA(cAbs, U32(0x7fffffff))
	DATA(cFlush, U32(math.Float32bits(momentFlush)))
	vectorConstants()
	for _, s := range streams() {
		s.gen()
	}
	for _, s := range activationStreams() {
		s.gen()
	}
	lstmKernels()
	expSumKernels()
	rowKernels()
	geluZKernels()
	expSumZKernels()
	convKernels()
	for _, op := range binOps {
		rowsKernel(op, false)
		if op.name == "Sub" || op.name == "Div" {
			rowsKernel(op, true)
		}
	}
	sumRows()
	maxAbs()
	maxAbsZ()
	normKernels()
}

// binOp is a binary operator: in Go assembler order, f(x, y, z) computes
// z = y op x.
type binOp struct {
	name, sym string
	f         func(mxy, xy, xy1 Op)
}

var binOps = []binOp{
	{"Add", "+", func(a, b, c Op) { VADDPS(a, b, c) }},
	{"Sub", "-", func(a, b, c Op) { VSUBPS(a, b, c) }},
	{"Mul", "*", func(a, b, c Op) { VMULPS(a, b, c) }},
	{"Div", "/", func(a, b, c Op) { VDIVPS(a, b, c) }},
}

// paramAddr returns the frame address of a parameter. (Parameters must
// not be named g: the Go assembler reads g+8(FP) as the g register.)
func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// A stream kernel runs body on every whole vector of 8 elements:
//
//	func name(n int, arrays... *float32, scalars... float32)
//
// for i < n&^7 in steps of 8, with at(a) the vector of array a at i. The
// scalars and then the constants are broadcast to the ymm registers k
// before the loop. The main loop does unroll vectors per iteration; a
// second loop does the remaining whole vectors one at a time.
type stream struct {
	name    string
	arrays  []string
	scalars []string
	consts  []int // constTab offsets, or cZero
	unroll  int
	doc     []string // the loop body, in Go
	body    func(at func(a int) Mem, k []VecVirtual)
	// vbody, instead of body, computes vecs vectors at once, each step
	// emitted for all of them before the next, at(a, v) the 32 bytes of
	// vector v in array a: for long chains of dependent operations (GELU),
	// whose independent vectors then sit side by side in the scheduler.
	vbody func(vecs int, at func(a, v int) Mem)
}

func (s stream) gen() {
	params := []string{"n int"}
	for _, a := range s.arrays {
		params = append(params, a+" *float32")
	}
	for _, a := range s.scalars {
		params = append(params, a+" float32")
	}
	TEXT(s.name, NOSPLIT, "func("+strings.Join(params, ", ")+")")
	doc := []string{
		s.name + " computes, for the whole vectors of 8 elements (n ≥ 0; the",
		"caller does the last n%8 elements):",
		"",
		"	for i < n&^7:",
	}
	for _, l := range s.doc {
		doc = append(doc, "		"+l)
	}
	Doc(doc...)
	Pragma("noescape")

	n := Load(Param("n"), GP64())
	ptr := make([]Register, len(s.arrays))
	for i, a := range s.arrays {
		ptr[i] = Load(Param(a), GP64())
	}
	var k []VecVirtual
	for _, a := range s.scalars {
		y := YMM()
		VBROADCASTSS(paramAddr(a), y)
		k = append(k, y)
	}
	for _, c := range s.consts {
		y := YMM()
		if c == cZero {
			VXORPS(y, y, y)
		} else {
			VBROADCASTSS(constTab.Offset(c), y)
		}
		k = append(k, y)
	}

	i := GP64()
	XORQ(i, i)
	at := func(u int) func(int) Mem {
		return func(a int) Mem { return Mem{Base: ptr[a], Index: i, Scale: 4, Disp: 32 * u} }
	}
	if s.unroll > 1 {
		// Whole iterations while i + w ≤ n (w need not be a power of 2).
		w := 8 * s.unroll
		nu := GP64()
		MOVQ(n, nu)
		SUBQ(U32(w), nu)
		JL(LabelRef("vec"))
		Label("loop")
		if s.vbody != nil {
			s.vbody(s.unroll, func(a, v int) Mem { return at(v)(a) })
		}
		for u := 0; s.vbody == nil && u < s.unroll; u++ {
			s.body(at(u), k)
		}
		ADDQ(U32(w), i)
		CMPQ(i, nu)
		JLE(LabelRef("loop"))
	}
	Label("vec")
	ANDQ(I32(-8), n)
	CMPQ(i, n)
	JGE(LabelRef("done"))
	Label("vecloop")
	if s.vbody != nil {
		s.vbody(1, func(a, v int) Mem { return at(v)(a) })
	} else {
		s.body(at(0), k)
	}
	ADDQ(U32(8), i)
	CMPQ(i, n)
	JL(LabelRef("vecloop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// load returns a new register holding m.
func load(m Mem) VecVirtual {
	y := YMM()
	VMOVUPS(m, y)
	return y
}

func streams() []stream {
	var ss []stream

	// Optimizers.
	ss = append(ss, stream{
		name:    "f32Adam",
		arrays:  []string{"p", "grad", "m", "v"},
		scalars: []string{"b1", "c1", "b2", "c2", "invSqrtBC2", "eps", "step", "decay"},
		consts:  []int{cAbs, cFlush},
		unroll:  2,
		doc: []string{
			"m[i] = flush(b1*m[i] + c1*grad[i])",
			"v[i] = flush(b2*v[i] + c2*grad[i]*grad[i])",
			"p[i] = p[i]*decay - step*(m[i]/(sqrt(v[i])*invSqrtBC2 + eps))",
			"",
			"flush(x) is 0 if |x| < 2^-100 (momentFlush), else x.",
		},
		body: func(at func(int) Mem, k []VecVirtual) {
			b1, c1, b2, c2, isbc2, eps, step, decay := k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
			abs, tiny := k[8], k[9]
			g := load(at(1))
			m, v, t := YMM(), YMM(), YMM()
			VMULPS(at(2), b1, m)
			VMULPS(g, c1, t)
			VADDPS(t, m, m)
			flushTiny(m, abs, tiny, t)
			VMOVUPS(m, at(2))
			VMULPS(g, c2, t)
			VMULPS(g, t, t)
			VMULPS(at(3), b2, v)
			VADDPS(t, v, v)
			flushTiny(v, abs, tiny, t)
			VMOVUPS(v, at(3))
			VSQRTPS(v, v)
			VMULPS(isbc2, v, v)
			VADDPS(eps, v, v)
			VDIVPS(v, m, m)
			VMULPS(step, m, m)
			VMULPS(at(0), decay, g)
			VSUBPS(m, g, g)
			VMOVUPS(g, at(0))
		},
	})
	ss = append(ss, stream{
		name:    "f32SGD",
		arrays:  []string{"p", "grad"},
		scalars: []string{"lr", "wd"},
		unroll:  4,
		doc:     []string{"p[i] -= lr * (grad[i] + wd*p[i])"},
		body: func(at func(int) Mem, k []VecVirtual) {
			p := load(at(0))
			t := YMM()
			VMULPS(p, k[1], t)
			VADDPS(at(1), t, t)
			VMULPS(k[0], t, t)
			VSUBPS(t, p, p)
			VMOVUPS(p, at(0))
		},
	})
	for _, nesterov := range []bool{false, true} {
		s := stream{
			name:    "f32SGDMomentum",
			arrays:  []string{"p", "grad", "b"},
			scalars: []string{"lr", "wd", "mu"},
			consts:  []int{cAbs, cFlush},
			unroll:  2,
			doc: []string{
				"gi := grad[i] + wd*p[i]",
				"b[i] = flush(mu*b[i] + gi)  // 0 if |b| < 2^-100 (momentFlush)",
				"p[i] -= lr * b[i]",
			},
		}
		if nesterov {
			s.name = "f32SGDNesterov"
			s.doc[2] = "p[i] -= lr * (gi + mu*b[i])"
		}
		s.body = func(at func(int) Mem, k []VecVirtual) {
			lr, wd, mu := k[0], k[1], k[2]
			p := load(at(0))
			gi, b := YMM(), YMM()
			VMULPS(p, wd, gi)
			VADDPS(at(1), gi, gi)
			VMULPS(at(2), mu, b)
			VADDPS(gi, b, b)
			t := YMM()
			flushTiny(b, k[3], k[4], t)
			VMOVUPS(b, at(2))
			if nesterov {
				VMULPS(b, mu, b)
				VADDPS(b, gi, b)
			}
			VMULPS(b, lr, b)
			VSUBPS(b, p, p)
			VMOVUPS(p, at(0))
		}
		ss = append(ss, s)
	}

	// Unary (out, x) and UnaryGrad (dx, y, dy).
	un := func(name, doc string, consts []int, f func(x Mem, k []VecVirtual, y VecVirtual)) stream {
		return stream{
			name: name, arrays: []string{"out", "x"}, consts: consts, unroll: 4,
			doc: []string{doc},
			body: func(at func(int) Mem, k []VecVirtual) {
				y := YMM()
				f(at(1), k, y)
				VMOVUPS(y, at(0))
			},
		}
	}
	ss = append(ss,
		un("f32Relu", "out[i] = x[i] < 0 ? 0 : x[i]  // NaN and -0 kept", []int{cZero},
			// VMAXPS returns its second (memory) operand unless the first, 0, is greater.
			func(x Mem, k []VecVirtual, y VecVirtual) { VMAXPS(x, k[0], y) }),
		un("f32Neg", "out[i] = -x[i]", []int{cSign},
			func(x Mem, k []VecVirtual, y VecVirtual) { VXORPS(x, k[0], y) }),
		un("f32Sqrt", "out[i] = sqrt(x[i])", nil,
			func(x Mem, k []VecVirtual, y VecVirtual) { VSQRTPS(x, y) }),
	)
	gr := func(name, doc string, consts []int, f func(y, dy Mem, k []VecVirtual) VecVirtual) stream {
		return stream{
			name: name, arrays: []string{"dx", "y", "dy"}, consts: consts, unroll: 4,
			doc: []string{doc},
			body: func(at func(int) Mem, k []VecVirtual) {
				VMOVUPS(f(at(1), at(2), k), at(0))
			},
		}
	}
	ss = append(ss,
		gr("f32ReluGrad", "dx[i] = y[i] > 0 ? dy[i] : 0  // 0 for a NaN y", []int{cZero},
			func(y, dy Mem, k []VecVirtual) VecVirtual {
				t := YMM()
				VCMPPS(U8(0x11), y, k[0], t) // 0 < y, ordered, quiet
				VANDPS(dy, t, t)
				return t
			}),
		gr("f32SigmoidGrad", "dx[i] = dy[i] * y[i] * (1 - y[i])", []int{cOne},
			func(y, dy Mem, k []VecVirtual) VecVirtual {
				v := load(y)
				t, u := YMM(), YMM()
				VMULPS(dy, v, t)
				VSUBPS(v, k[0], u)
				VMULPS(u, t, t)
				return t
			}),
		gr("f32TanhGrad", "dx[i] = dy[i] * (1 - y[i]*y[i])", []int{cOne},
			func(y, dy Mem, k []VecVirtual) VecVirtual {
				v := load(y)
				u := YMM()
				VMULPS(v, v, v)
				VSUBPS(v, k[0], u)
				VMULPS(dy, u, u)
				return u
			}),
		gr("f32SqrtGrad", "dx[i] = dy[i] * 0.5 / y[i]", []int{cHalf},
			func(y, dy Mem, k []VecVirtual) VecVirtual {
				t := YMM()
				VMULPS(dy, k[0], t)
				VDIVPS(y, t, t)
				return t
			}),
	)

	// Binary (out, a, b) and BinaryScalar (out, a, s).
	for _, op := range binOps {
		ss = append(ss, stream{
			name: "f32" + op.name, arrays: []string{"out", "a", "b"}, unroll: 4,
			doc: []string{"out[i] = a[i] " + op.sym + " b[i]"},
			body: func(at func(int) Mem, k []VecVirtual) {
				t := load(at(1))
				op.f(at(2), t, t)
				VMOVUPS(t, at(0))
			},
		})
		ss = append(ss, stream{
			name: "f32" + op.name + "Scalar", arrays: []string{"out", "a"}, scalars: []string{"s"}, unroll: 4,
			doc: []string{"out[i] = a[i] " + op.sym + " s"},
			body: func(at func(int) Mem, k []VecVirtual) {
				t := load(at(1))
				op.f(k[0], t, t)
				VMOVUPS(t, at(0))
			},
		})
		if op.name == "Sub" || op.name == "Div" {
			ss = append(ss, stream{
				name: "f32Scalar" + op.name, arrays: []string{"out", "a"}, scalars: []string{"s"}, unroll: 4,
				doc: []string{"out[i] = s " + op.sym + " a[i]"},
				body: func(at func(int) Mem, k []VecVirtual) {
					t := YMM()
					op.f(at(1), k[0], t)
					VMOVUPS(t, at(0))
				},
			})
		}
	}

	ss = append(ss, stream{
		name: "f32Axpy", arrays: []string{"y", "x"}, scalars: []string{"alpha"}, unroll: 4,
		doc: []string{"y[i] += alpha * x[i]"},
		body: func(at func(int) Mem, k []VecVirtual) {
			t := YMM()
			VMULPS(at(1), k[0], t)
			VADDPS(at(0), t, t)
			VMOVUPS(t, at(0))
		},
	})
	ss = append(ss, stream{
		name: "f32Fill", arrays: []string{"out"}, scalars: []string{"v"}, unroll: 4,
		doc: []string{"out[i] = v"},
		body: func(at func(int) Mem, k []VecVirtual) {
			VMOVUPS(k[0], at(0))
		},
	})
	return ss
}

// rowsKernel generates f32{Op}Row (or f32Row{Op} when left), the
// BinaryRows broadcast of a row vector b over the whole vectors of 8
// columns of every row of a rows×cols matrix.
func rowsKernel(op binOp, left bool) {
	name, expr := "f32"+op.name+"Row", "a[r*cols+c] "+op.sym+" b[c]"
	if left {
		name, expr = "f32Row"+op.name, "b[c] "+op.sym+" a[r*cols+c]"
	}
	TEXT(name, NOSPLIT, "func(rows, cols int, out, a, b *float32)")
	Doc(
		name+" computes, for the whole vectors of 8 columns (rows, cols ≥ 0;",
		"the caller does the last cols%8 columns of every row):",
		"",
		"	for r < rows, c < cols&^7:",
		"		out[r*cols+c] = "+expr,
	)
	Pragma("noescape")
	rows := Load(Param("rows"), GP64())
	cols := Load(Param("cols"), GP64())
	po := Load(Param("out"), GP64())
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	ld := GP64()
	MOVQ(cols, ld)
	SHLQ(U8(2), ld)
	ANDQ(I32(-8), cols)
	JLE(LabelRef("done"))
	TESTQ(rows, rows)
	JLE(LabelRef("done"))
	Label("row")
	i := GP64()
	XORQ(i, i)
	Label("col")
	at := func(p Register) Mem { return Mem{Base: p, Index: i, Scale: 4} }
	t := YMM()
	if left {
		VMOVUPS(at(pb), t)
		op.f(at(pa), t, t)
	} else {
		VMOVUPS(at(pa), t)
		op.f(at(pb), t, t)
	}
	VMOVUPS(t, at(po))
	ADDQ(U32(8), i)
	CMPQ(i, cols)
	JL(LabelRef("col"))
	ADDQ(ld, po)
	ADDQ(ld, pa)
	DECQ(rows)
	JNZ(LabelRef("row"))
	Label("done")
	VZEROUPPER()
	RET()
}

// sumRows generates f32SumRows, the column sums of SumRows: each block of
// columns is accumulated in registers down all the rows, in the order of
// the Go loop (one axpy per row), so results are bit-identical to it.
func sumRows() {
	TEXT("f32SumRows", NOSPLIT, "func(cols, rows int, out, in *float32, ld int, scale float32)")
	Doc(
		"f32SumRows computes, for the whole vectors of 8 columns (cols ≥ 0; the",
		"caller does the last cols%8 columns), in is rows×ld (ld ≥ cols):",
		"",
		"	for c < cols&^7:",
		"		for r < rows: out[c] += scale * in[r*ld+c]",
		"",
		"Blocks of 64, 32 and 8 columns are summed in ymm accumulators",
		"down all the rows.",
	)
	Pragma("noescape")
	cols := Load(Param("cols"), GP64())
	rows := Load(Param("rows"), GP64())
	po := Load(Param("out"), GP64())
	pi := Load(Param("in"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	sc := YMM()
	VBROADCASTSS(paramAddr("scale"), sc)
	TESTQ(rows, rows)
	JLE(LabelRef("done"))
	ANDQ(I32(-8), cols)
	widths := []int{8, 4, 1} // vectors per block
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
		acc := make([]VecVirtual, nv)
		for j := range acc {
			acc[j] = load(Mem{Base: po, Disp: 32 * j})
		}
		q, r := GP64(), GP64()
		MOVQ(pi, q)
		MOVQ(rows, r)
		rl := fmt.Sprintf("rows%d", w)
		Label(rl)
		for j := range acc {
			t := YMM()
			VMULPS(Mem{Base: q, Disp: 32 * j}, sc, t)
			VADDPS(t, acc[j], acc[j])
		}
		ADDQ(ld, q)
		DECQ(r)
		JNZ(LabelRef(rl))
		for j := range acc {
			VMOVUPS(acc[j], Mem{Base: po, Disp: 32 * j})
		}
		ADDQ(U32(4*w), po)
		ADDQ(U32(4*w), pi)
		SUBQ(U32(w), cols)
		JMP(LabelRef(lbl))
	}
	Label("done")
	VZEROUPPER()
	RET()
}

// maxAbs generates f32MaxAbsBits, the scan behind MaxAbs: with the sign
// bit cleared, the bits of float32s order as their magnitudes do when read
// as unsigned integers, and every NaN and infinity reads at least
// 0x7f800000 (the bits of +Inf). So the unsigned maximum of x AND
// 0x7fffffff over the lanes (VPAND, VPMAXUD: AVX2) is the largest magnitude
// when it is below 0x7f800000, and says that some element is NaN or
// infinite otherwise: one pass that both finds the bound and checks that
// every element is finite.
func maxAbs() {
	TEXT("f32MaxAbsBits", NOSPLIT, "func(n int, x *float32) uint32")
	Doc(
		"f32MaxAbsBits returns the largest of the bits of |x[i]| for i < n&^31,",
		"read as unsigned integers (n ≥ 0; AVX2; 0 when n < 32):",
		"",
		"	for i < n&^31: r = max(r, bits(x[i]) & 0x7fffffff)",
	)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	ANDQ(I32(-32), n)
	abs := YMM()
	VBROADCASTSS(constTab.Offset(cAbs), abs)
	var acc [4]VecVirtual
	for u := range acc {
		acc[u] = YMM()
		VPXOR(acc[u], acc[u], acc[u])
	}
	i := GP64()
	XORQ(i, i)
	CMPQ(i, n)
	JGE(LabelRef("reduce"))
	Label("loop")
	for u := range acc {
		t := YMM()
		VPAND(Mem{Base: x, Index: i, Scale: 4, Disp: 32 * u}, abs, t)
		VPMAXUD(t, acc[u], acc[u])
	}
	ADDQ(U32(32), i)
	CMPQ(i, n)
	JL(LabelRef("loop"))
	Label("reduce")
	VPMAXUD(acc[1], acc[0], acc[0])
	VPMAXUD(acc[3], acc[2], acc[2])
	VPMAXUD(acc[2], acc[0], acc[0])
	hi := XMM()
	VEXTRACTI128(U8(1), acc[0], hi)
	VPMAXUD(hi, acc[0].AsX(), hi)
	t := XMM()
	VPSHUFD(U8(0x4e), hi, t) // swap the 64-bit halves
	VPMAXUD(t, hi, hi)
	VPSHUFD(U8(0xb1), hi, t) // swap the 32-bit pairs
	VPMAXUD(t, hi, hi)
	r := GP32()
	VMOVD(hi, r)
	VZEROUPPER()
	Store(r, ReturnIndex(0))
	RET()
}

// maxAbsZ generates f32MaxAbsBitsZ, f32MaxAbsBits on AVX-512F in blocks of
// 64 elements.
func maxAbsZ() {
	TEXT("f32MaxAbsBitsZ", NOSPLIT, "func(n int, x *float32) uint32")
	Doc(
		"f32MaxAbsBitsZ is f32MaxAbsBits on AVX-512F, for i < n&^63.",
	)
	Pragma("noescape")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	ANDQ(I32(-64), n)
	abs := ZMM()
	VPBROADCASTD(constTab.Offset(cAbs), abs)
	var acc [4]VecVirtual
	for u := range acc {
		acc[u] = ZMM()
		VPXORD(acc[u], acc[u], acc[u])
	}
	i := GP64()
	XORQ(i, i)
	CMPQ(i, n)
	JGE(LabelRef("reduce"))
	Label("loop")
	for u := range acc {
		t := ZMM()
		VPANDD(Mem{Base: x, Index: i, Scale: 4, Disp: 64 * u}, abs, t)
		VPMAXUD(t, acc[u], acc[u])
	}
	ADDQ(U32(64), i)
	CMPQ(i, n)
	JL(LabelRef("loop"))
	Label("reduce")
	VPMAXUD(acc[1], acc[0], acc[0])
	VPMAXUD(acc[3], acc[2], acc[2])
	VPMAXUD(acc[2], acc[0], acc[0])
	y := YMM()
	VEXTRACTI64X4(U8(1), acc[0], y)
	VPMAXUD(y, acc[0].AsY(), y)
	hi := XMM()
	VEXTRACTI128(U8(1), y, hi)
	VPMAXUD(hi, y.AsX(), hi)
	t := XMM()
	VPSHUFD(U8(0x4e), hi, t)
	VPMAXUD(t, hi, hi)
	VPSHUFD(U8(0xb1), hi, t)
	VPMAXUD(t, hi, hi)
	r := GP32()
	VMOVD(hi, r)
	VZEROUPPER()
	Store(r, ReturnIndex(0))
	RET()
}

// Column kernels of the normalization layers (runtime/norm.go), over the
// whole vectors of 8 of the first cols columns of a rows×ld block, the
// caller doing the rest. Each runs down the rows once per block of
// columns, the block's per-column operands and accumulators in ymm
// registers; the caller keeps the blocks of rows short (in L1) and adds
// the sums into float64.

// colKernel generates one: nv vectors per column block for each width in
// widths (in vectors), loading the per-column vectors named in cols from
// the parameters, then body(row, perColumn, acc) for each vector of a row.
type colKernel struct {
	name, sig string
	doc       []string
	perCol    []string // per-column operand pointers, loaded once per block
	accs      []string // accumulated per-column outputs (loaded, summed into, stored)
	rowPtrs   []string // per-row operand pointers, stepping ld a row
	widths    []int
	body      func(row func(p, j int) Mem, per func(p, j int) VecVirtual, acc func(a, j int) VecVirtual, j int)
}

func (k colKernel) gen() {
	TEXT(k.name, NOSPLIT, k.sig)
	Doc(k.doc...)
	Pragma("noescape")
	cols := Load(Param("cols"), GP64())
	rows := Load(Param("rows"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	ptr := map[string]Register{}
	for _, n := range append(append(append([]string{}, k.perCol...), k.accs...), k.rowPtrs...) {
		ptr[n] = Load(Param(n), GP64())
	}
	TESTQ(rows, rows)
	JLE(LabelRef("done"))
	ANDQ(I32(-8), cols)
	for bi, nv := range k.widths {
		w := 8 * nv
		next := "done"
		if bi+1 < len(k.widths) {
			next = fmt.Sprintf("block%d", 8*k.widths[bi+1])
		}
		lbl := fmt.Sprintf("block%d", w)
		Label(lbl)
		CMPQ(cols, U32(w))
		JL(LabelRef(next))
		per := map[[2]int]VecVirtual{}
		for p, n := range k.perCol {
			for j := range nv {
				per[[2]int{p, j}] = load(Mem{Base: ptr[n], Disp: 32 * j})
			}
		}
		acc := map[[2]int]VecVirtual{}
		for a, n := range k.accs {
			for j := range nv {
				acc[[2]int{a, j}] = load(Mem{Base: ptr[n], Disp: 32 * j})
			}
		}
		q := make([]Register, len(k.rowPtrs))
		for i, n := range k.rowPtrs {
			q[i] = GP64()
			MOVQ(ptr[n], q[i])
		}
		r := GP64()
		MOVQ(rows, r)
		rl := fmt.Sprintf("rows%d", w)
		Label(rl)
		for j := range nv {
			k.body(func(p, j int) Mem { return Mem{Base: q[p], Disp: 32 * j} },
				func(p, j int) VecVirtual { return per[[2]int{p, j}] },
				func(a, j int) VecVirtual { return acc[[2]int{a, j}] }, j)
		}
		for i := range q {
			ADDQ(ld, q[i])
		}
		DECQ(r)
		JNZ(LabelRef(rl))
		for a, n := range k.accs {
			for j := range nv {
				VMOVUPS(acc[[2]int{a, j}], Mem{Base: ptr[n], Disp: 32 * j})
			}
		}
		for _, n := range append(append(append([]string{}, k.perCol...), k.accs...), k.rowPtrs...) {
			ADDQ(U32(4*w), ptr[n])
		}
		SUBQ(U32(w), cols)
		JMP(LabelRef(lbl))
	}
	Label("done")
	VZEROUPPER()
	RET()
}

func normKernels() {
	colKernel{
		name: "f32ColSumSqDev", sig: "func(cols, rows int, acc, mean, x *float32, ld int)",
		doc: []string{
			"f32ColSumSqDev computes, for the whole vectors of 8 columns (the caller",
			"does the last cols%8), x rows×ld:",
			"",
			"	for c < cols&^7, r < rows: acc[c] += (x[r*ld+c] - mean[c])²",
		},
		perCol: []string{"mean"}, accs: []string{"acc"}, rowPtrs: []string{"x"}, widths: []int{4, 1},
		body: func(row func(p, j int) Mem, per func(p, j int) VecVirtual, acc func(a, j int) VecVirtual, j int) {
			d := YMM()
			VMOVUPS(row(0, j), d)
			VSUBPS(per(0, j), d, d)
			VMULPS(d, d, d)
			VADDPS(d, acc(0, j), acc(0, j))
		},
	}.gen()
	colKernel{
		name: "f32ColDotDev", sig: "func(cols, rows int, sdy, sdyx, mean, dy, x *float32, ld int)",
		doc: []string{
			"f32ColDotDev computes, for the whole vectors of 8 columns (the caller",
			"does the last cols%8), dy and x rows×ld:",
			"",
			"	for c < cols&^7, r < rows:",
			"		sdy[c] += dy[r*ld+c]",
			"		sdyx[c] += dy[r*ld+c] * (x[r*ld+c] - mean[c])",
		},
		perCol: []string{"mean"}, accs: []string{"sdy", "sdyx"}, rowPtrs: []string{"dy", "x"}, widths: []int{4, 1},
		body: func(row func(p, j int) Mem, per func(p, j int) VecVirtual, acc func(a, j int) VecVirtual, j int) {
			g, d := YMM(), YMM()
			VMOVUPS(row(0, j), g)
			VADDPS(g, acc(0, j), acc(0, j))
			VMOVUPS(row(1, j), d)
			VSUBPS(per(0, j), d, d)
			VMULPS(d, g, d)
			VADDPS(d, acc(1, j), acc(1, j))
		},
	}.gen()
	colKernel{
		name: "f32ColScaleShiftDev", sig: "func(cols, rows int, mean, k, beta, out, x *float32, ld int)",
		doc: []string{
			"f32ColScaleShiftDev computes, for the whole vectors of 8 columns (the",
			"caller does the last cols%8), out and x rows×ld:",
			"",
			"	for c < cols&^7, r < rows: out[r*ld+c] = (x[r*ld+c] - mean[c])*k[c] + beta[c]",
		},
		perCol: []string{"mean", "k", "beta"}, rowPtrs: []string{"out", "x"}, widths: []int{4, 1},
		body: func(row func(p, j int) Mem, per func(p, j int) VecVirtual, acc func(a, j int) VecVirtual, j int) {
			d := YMM()
			VMOVUPS(row(1, j), d)
			VSUBPS(per(0, j), d, d)
			VMULPS(per(1, j), d, d)
			VADDPS(per(2, j), d, d)
			VMOVUPS(d, row(0, j))
		},
	}.gen()
	colKernel{
		name: "f32ColNormGrad", sig: "func(cols, rows int, mean, a, b, c, dx, dy, x *float32, ld int)",
		doc: []string{
			"f32ColNormGrad computes, for the whole vectors of 8 columns (the caller",
			"does the last cols%8), dx, dy and x rows×ld:",
			"",
			"	for c < cols&^7, r < rows:",
			"		dx[r*ld+c] = a[c]*dy[r*ld+c] - b[c]*(x[r*ld+c] - mean[c]) - c[c]",
		},
		perCol: []string{"mean", "a", "b", "c"}, rowPtrs: []string{"dx", "dy", "x"}, widths: []int{2, 1},
		body: func(row func(p, j int) Mem, per func(p, j int) VecVirtual, acc func(a, j int) VecVirtual, j int) {
			d, g := YMM(), YMM()
			VMOVUPS(row(2, j), d)
			VSUBPS(per(0, j), d, d)
			VMULPS(per(2, j), d, d)
			VMULPS(row(1, j), per(1, j), g)
			VSUBPS(d, g, g)
			VSUBPS(per(3, j), g, g)
			VMOVUPS(g, row(0, j))
		},
	}.gen()
}
