#!/bin/sh
# run.sh builds llmc_bench.c against an llm.c checkout and times llm.c's
# train_gpt2.c training step, one thread, for the generated GPT's two
# configurations (model=gpt, model=gptlarge), the models interleaved round by
# round so that both see the same machine load.
#
#	examples/bench/llmc/run.sh LLMC_DIR
#	COUNT=5 BENCHTIME=3 examples/bench/llmc/run.sh ~/src/llm.c
#	make bench-llmc LLMC=~/src/llm.c
#
# LLMC_DIR is a clone of github.com/karpathy/llm.c (its work tree) or a git
# directory of one (a bare clone; HEAD is exported). llm.c's source is not
# part of this repository: the files train_gpt2.c needs are copied into a
# build directory outside it. The flags are llm.c's Makefile's for
# train_gpt2 on Linux (CFLAGS, -march=native, OpenMP with -DOMP, -lm -lgomp);
# llm.c's Makefile defaults CC to clang, this script to gcc (CC= overrides).
#
# Environment: CC (gcc), COUNT (rounds, 3; 0 builds only), MODELS ("gpt gptlarge"),
# BENCHTIME (seconds per run, 2), WARMUP (steps, 2), BUILD (the build
# directory, $TMPDIR/backpropgen-llmc), RAW (every benchmark line, for
# benchstat; $TMPDIR/backpropgen-llmc-bench.txt).
set -eu

LLMC=${1:-${LLMC:-}}
if [ -z "$LLMC" ]; then
	echo "usage: $0 LLMC_DIR (a clone of https://github.com/karpathy/llm.c)" >&2
	exit 2
fi
CC=${CC:-gcc}
COUNT=${COUNT:-3}
MODELS=${MODELS:-gpt gptlarge}
BENCHTIME=${BENCHTIME:-2}
WARMUP=${WARMUP:-2}
TMP=${TMPDIR:-/tmp}
BUILD=${BUILD:-$TMP/backpropgen-llmc}
RAW=${RAW:-$TMP/backpropgen-llmc-bench.txt}
HERE=$(cd "$(dirname "$0")" && pwd)

# the files train_gpt2.c includes, itself first
FILES="train_gpt2.c llmc/utils.h llmc/tokenizer.h llmc/dataloader.h llmc/rand.h"
rm -rf "$BUILD/src"
mkdir -p "$BUILD/src/llmc"
if [ -f "$LLMC/train_gpt2.c" ]; then
	for f in $FILES; do cp "$LLMC/$f" "$BUILD/src/$f"; done
	rev=$(git -C "$LLMC" rev-parse HEAD 2>/dev/null || echo "unknown revision")
elif git --git-dir="$LLMC" rev-parse --verify -q HEAD >/dev/null 2>&1; then
	for f in $FILES; do git --git-dir="$LLMC" show "HEAD:$f" >"$BUILD/src/$f"; done
	rev=$(git --git-dir="$LLMC" rev-parse HEAD)
else
	echo "$0: $LLMC is neither an llm.c work tree (no train_gpt2.c) nor a git directory" >&2
	exit 1
fi

CFLAGS="-Ofast -Wno-unused-result -Wno-ignored-pragmas -Wno-unknown-attributes -march=native -fopenmp -DOMP"
echo "# llm.c $rev from $LLMC"
echo "# $CC $CFLAGS -I$BUILD/src $HERE/llmc_bench.c -lm -lgomp -o $BUILD/llmc_bench"
# shellcheck disable=SC2086
$CC $CFLAGS -I"$BUILD/src" "$HERE/llmc_bench.c" -lm -lgomp -o "$BUILD/llmc_bench"
echo "# $($CC --version | head -n 1)"
if [ "$COUNT" = 0 ]; then # build only (make bench-compare LLMC=... runs it)
	exit 0
fi

# one thread (llmc_bench prints OpenMP's and the OS's thread counts)
export OMP_NUM_THREADS=1
rm -f "$RAW" "$RAW.tmp"
round=1
while [ "$round" -le "$COUNT" ]; do
	for m in $MODELS; do
		echo "# round $round/$COUNT: OMP_NUM_THREADS=1 $BUILD/llmc_bench -model $m -warmup $WARMUP -benchtime $BENCHTIME"
		"$BUILD/llmc_bench" -model "$m" -warmup "$WARMUP" -benchtime "$BENCHTIME" | tee -a "$RAW.tmp"
	done
	round=$((round + 1))
done
grep '^Benchmark' "$RAW.tmp" >"$RAW"
if grep '^# omp_get_max_threads' "$RAW.tmp" | grep -v 'omp_get_max_threads 1, OS threads 1,' >/dev/null; then
	echo "$0: warning: a run used more than one thread" >&2
fi
rm -f "$RAW.tmp"

# per model: the median and the range over the runs of the wall time per
# step, and the median GFLOP/s and CPU time per step (CPU below wall: other
# jobs took the core)
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f %.1f %.1f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }'; }
echo
echo "# model      runs  median ms/step  range ms/step      GFLOP/s  CPU ms/step"
for m in $MODELS; do
	grep "^BenchmarkTrainStep/model=$m/" "$RAW" >"$RAW.m" || continue
	set -- $(awk '{ print $3 / 1e6 }' "$RAW.m" | median) $(awk '{ print $5 }' "$RAW.m" | median) $(awk '{ print $7 / 1e6 }' "$RAW.m" | median)
	printf "# %-10s %4d  %14.1f  %6.1f – %-9.1f %7.1f  %11.1f\n" "$m" "$(wc -l <"$RAW.m")" "$1" "$2" "$3" "$4" "$7"
done
rm -f "$RAW.m"
echo "# benchmark lines: $RAW (benchstat $RAW)"
