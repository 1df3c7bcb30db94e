//go:build !amd64 || noasm

package runtime

// Without assembly attention runs on contiguous copies of its heads.

func attentionAsm[T Float](out, att, qkv, scratch []T, n, steps, C, heads, hs int, scale float64, causal bool) bool {
	return false
}

func attentionGradAsm[T Float](dqkv, dout, qkv, att, scratch []T, n, steps, C, heads, hs int, scale float64, causal, acc bool) bool {
	return false
}

func rowProductAsm[T Float](c, a, b []T, ldb int) bool { return false }
