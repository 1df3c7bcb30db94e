package seqmnist

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen seqmnist.bpg
