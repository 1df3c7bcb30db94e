// Package modeltest holds what the tests that backpropgen generates for
// each model need beyond the standard library and gradcheck, and what the
// runtime's own tests over generated models share (random feeds).
package modeltest

import (
	"runtime"
	"strings"
)

// AllocsInside runs f and returns how many heap objects, and bytes, were
// allocated while it ran by code called, directly or not, from a function
// whose name ends in function (e.g. ".(*Model).TrainStep").
//
// runtime.MemStats counts every allocation of the process, and the Go
// runtime allocates on its own now and then (an OS thread for a goroutine
// blocked in a system call, under load), so a test that a call allocates
// nothing would fail once in a while for reasons outside the call. The
// memory profile knows where each allocation came from: AllocsInside
// records every allocation while f runs and keeps those made inside
// function.
func AllocsInside(function string, f func()) (objects, bytes int64) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	// The profile is as of the last completed garbage collections.
	runtime.GC()
	runtime.GC()
	o0, b0 := inside(function)
	f()
	runtime.GC()
	runtime.GC()
	o1, b1 := inside(function)
	return o1 - o0, b1 - b0
}

// inside sums the profile's allocations whose stack holds function.
func inside(function string) (objects, bytes int64) {
	n, _ := runtime.MemProfile(nil, true)
	records := make([]runtime.MemProfileRecord, n+64)
	n, _ = runtime.MemProfile(records, true)
	for _, r := range records[:n] {
		frames := runtime.CallersFrames(r.Stack())
		for {
			fr, more := frames.Next()
			if strings.HasSuffix(fr.Function, function) {
				objects += r.AllocObjects
				bytes += r.AllocBytes
				break
			}
			if !more {
				break
			}
		}
	}
	return objects, bytes
}
