package rnn

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen rnn.bpg
