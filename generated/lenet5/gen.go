package lenet5

//go:generate go tool backpropgen lenet5.bpg
