#!/usr/bin/env bash
# Runs every Go fuzz target of the project for a while each (default 60s),
# on top of its seed corpus (the seed corpus alone runs in `make unit`).
# Every target runs even when one fails; the failures are listed at the end
# (a failing input is written under the package's testdata/fuzz).
set -uo pipefail
export PATH=/usr/local/go/bin:$PATH
dur=${1:-60s}
failed=()
n=0
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' internal cmd | xargs -n1 dirname | sort -u); do
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
    n=$((n + 1))
    echo "fuzzing ./$dir $f for $dur (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    if ! go test "./$dir" -run '^$' -fuzz "^$f\$" -fuzztime "$dur"; then
      failed+=("./$dir $f")
    fi
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: ${#failed[@]} of $n targets failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "fuzz-smoke: all $n targets ran clean for $dur each"
