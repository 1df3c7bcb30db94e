package widemlp

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen widemlp.bpg
