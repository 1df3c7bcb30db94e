package lstm

//go:generate go tool backpropgen lstm.bpg
