package lstm

//go:generate go run github.com/backpropgen/backpropgen/cmd/backpropgen lstm.bpg
