package seqmnist

//go:generate go tool backpropgen seqmnist.bpg
