package mlpb128

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen mlpb128.bpg
