// Package generated holds the checked-in packages that backpropgen generates
// for the reference models, one directory each, next to their descriptions.
// make check regenerates them all and fails on any difference.
package generated
