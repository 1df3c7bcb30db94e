package cnn

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen cnn.bpg
