package charlm

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen charlm.bpg
