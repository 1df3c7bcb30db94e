// Package spec is what backpropgen's compiler and its runtime agree on:
// the version of the generated-code ABI, the kinds of element-wise
// operators, recurrent cells and initializers the kernels take, and the
// geometry of windowed and recurrent layers (what the memory plan must
// provide for them). It is a package of its own, imported by both, so that
// the compiler (ir, derive, emit) does not link the kernel library, and so
// that the emitter names the runtime's constants from their values (String)
// rather than from strings of its own: package runtime declares each of
// them as an alias of the value here, and emit's tests check every name.
package spec

// Version is the backpropgen release; the generator writes it into the
// header of every file it generates.
const Version = "v0.1.0"

// GenVersion is the generated-code ABI the runtime implements, and
// MinVersion the oldest one it still supports. Generated code contains
//
//	const _ = runtime.EnforceVersion(GenVersion - runtime.MinVersion)
//	const _ = runtime.EnforceVersion(runtime.GenVersion - GenVersion)
//
// so a mismatch is a compile error (a negative constant overflows uint).
const (
	GenVersion = 2
	MinVersion = 2
)
