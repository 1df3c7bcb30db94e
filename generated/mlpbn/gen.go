package mlpbn

//go:generate go tool backpropgen mlpbn.bpg
