//go:build !amd64 || noasm

package runtime

import "testing"

// forEachSgemmFamily runs f once: this build has no assembly kernels.
func forEachSgemmFamily(t *testing.T, f func(t *testing.T)) { f(t) }

// forEachRowFamily runs f once: this build has no assembly kernels.
func forEachRowFamily(t *testing.T, f func(t *testing.T)) { f(t) }
