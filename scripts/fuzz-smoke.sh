#!/usr/bin/env bash
# Runs every Go fuzz target of the project for a short time each (default 10s).
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
dur=${1:-10s}
grep -rl --include='*_test.go' '^func Fuzz' internal cmd | xargs -n1 dirname | sort -u | while read -r dir; do
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //'); do
    echo "fuzzing ./$dir $f for $dur"
    go test "./$dir" -run '^$' -fuzz "^$f\$" -fuzztime "$dur"
  done
done
