package lenet5

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen lenet5.bpg
