package mlp

//go:generate go tool backpropgen mlp.bpg
