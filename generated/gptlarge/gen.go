package gptlarge

//go:generate go tool backpropgen gptlarge.bpg
