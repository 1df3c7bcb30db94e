package charlmstep

//go:generate go tool backpropgen charlmstep.bpg
