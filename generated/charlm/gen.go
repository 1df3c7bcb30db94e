package charlm

//go:generate go tool backpropgen charlm.bpg
