package main

import (
	"fmt"
	"strconv"
	"strings"
)

// byteSize is a number of bytes, written and read with binary units
// (16GiB, 512MiB, 0).
type byteSize int64

var byteUnits = []struct {
	name string
	size int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

func (b byteSize) String() string {
	for _, u := range byteUnits {
		if int64(b) >= u.size {
			v := float64(b) / float64(u.size)
			if v == float64(int64(v)) {
				return fmt.Sprintf("%d%s", int64(v), u.name)
			}
			return fmt.Sprintf("%.1f%s", v, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(b))
}

// Set reads a size such as 64GiB, 512MiB, 1.5TiB or a plain number of
// bytes (the flag.Value interface).
func (b *byteSize) Set(s string) error {
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.name) {
			num, mult = strings.TrimSuffix(s, u.name), u.size
			break
		}
	}
	num = strings.TrimSuffix(num, "B")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return fmt.Errorf("want a size such as 16GiB, 512MiB or 0 (no limit)")
	}
	*b = byteSize(v * float64(mult))
	return nil
}
