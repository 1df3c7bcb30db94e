package mlpb128

//go:generate go tool backpropgen mlpb128.bpg
