package rnn

//go:generate go tool backpropgen rnn.bpg
