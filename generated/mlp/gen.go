package mlp

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen mlp.bpg
