package widemlp

//go:generate go tool backpropgen widemlp.bpg
