// Package runtime holds the kernels, optimizers, initializers and
// checkpoint code that backpropgen's generated model packages call.
//
// Every kernel is generic over Float (float32 by default in generated code,
// float64 for gradient checks) and works on compact row-major slices. A
// kernel never allocates and never grows a slice: callers pass buffers sized
// by the generated memory plan. Tensors carry no shape at run time; the
// generated code passes the sizes it computed from the model description.
package runtime

import "github.com/backpropgen/backpropgen/runtime/spec"

// Float is the element type of every tensor.
type Float interface{ ~float32 | ~float64 }

// Version is the backpropgen release this runtime belongs to; the generator
// writes it into every generated file's header.
const Version = spec.Version

// GenVersion is the generated-code ABI this runtime implements, and
// MinVersion the oldest one it still supports. Generated code contains
//
//	const _ = runtime.EnforceVersion(GenVersion - runtime.MinVersion)
//	const _ = runtime.EnforceVersion(runtime.GenVersion - GenVersion)
//
// so a mismatch between the generator and this package is a compile error
// (a negative constant overflowing uint) instead of a wrong answer.
const (
	GenVersion = spec.GenVersion
	MinVersion = spec.MinVersion
)

// EnforceVersion is used only in constant expressions by generated code.
type EnforceVersion uint
