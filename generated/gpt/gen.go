package gpt

//go:generate go tool backpropgen gpt.bpg
