package emit

import (
	"go/constant"
	"go/importer"
	"go/token"
	"go/types"
	"reflect"
	"testing"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

// TestRuntimeNames checks every name of package runtime that the emitter
// derives from a spec value (the operators of the op table, the cells,
// the initializers, the geometry types) against package runtime itself,
// type-checked from source: each must be a constant of that value, or a
// type of that name, so that a misspelt or renumbered name fails here and
// not when some user's generated package does not compile.
func TestRuntimeNames(t *testing.T) {
	pkg, err := importer.ForCompiler(token.NewFileSet(), "source", nil).Import(rtPath)
	if err != nil {
		t.Fatal(err)
	}
	constant := func(name string, want uint64) {
		t.Helper()
		obj, ok := pkg.Scope().Lookup(name).(*types.Const)
		if !ok {
			t.Errorf("runtime.%s is not a constant of package runtime", name)
			return
		}
		if v, exact := constantUint(obj.Val()); !exact || v != want {
			t.Errorf("runtime.%s = %v, want %d", name, obj.Val(), want)
		}
	}
	for _, op := range ir.Ops() {
		if op.Unary != nil {
			constant(op.Unary.String(), uint64(*op.Unary))
		}
		if op.Binary != nil {
			constant(op.Binary.String(), uint64(*op.Binary))
		}
	}
	for _, u := range spec.UnaryOps() {
		constant(u.String(), uint64(u))
	}
	for _, c := range spec.Cells() {
		constant(c.GoName(), uint64(c))
	}
	for i := spec.Init(0); i < spec.NumInits; i++ {
		constant(i.GoName(), uint64(i))
	}
	for _, v := range []any{spec.Conv2DGeom{}, spec.RNNGeom{}} {
		name := reflect.TypeOf(v).Name()
		if _, ok := pkg.Scope().Lookup(name).(*types.TypeName); !ok {
			t.Errorf("runtime.%s is not a type of package runtime", name)
		}
	}
}

func constantUint(v constant.Value) (uint64, bool) { return constant.Uint64Val(v) }
