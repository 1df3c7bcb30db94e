package charlmstep

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen charlmstep.bpg
