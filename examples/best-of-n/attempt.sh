#!/bin/sh
# One attempt of the best-of-n run in tasks.toml: a stand-in for an agent's try or a
# training run with seed $1. It prints its score as an [AOP:SCORE] line, and fanout
# keeps the attempt with the highest. The same seed always gets the same score; in
# real use the score would be tests passed, a benchmark or a grader's mark.
set -eu
seed=$1
if [ $((seed % 4)) -eq 0 ]; then
    echo "seed $seed: diverged, loss is NaN" >&2
    exit 1                      # a failed attempt never wins
fi
accuracy=$(((seed * 37 + 11) % 100))
printf '[AOP:SCORE] 0.%02d\n' "$accuracy"
printf 'seed %s: accuracy 0.%02d\n' "$seed" "$accuracy"     # the last line: the summary
