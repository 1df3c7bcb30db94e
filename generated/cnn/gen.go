package cnn

//go:generate go tool backpropgen cnn.bpg
