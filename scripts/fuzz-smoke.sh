#!/usr/bin/env bash
# Every fuzz target of the module for FUZZTIME (default 8s) each.
#
# A target fails when the fuzzer finds an input: it writes a reproducer
# under testdata/fuzz/<Target>/ and exits non-zero. Go 1.26's fuzz
# coordinator also exits non-zero with a bare "context deadline exceeded"
# when -fuzztime ends while a starved worker is mid-call (go.dev/issue/75804,
# fixed in Go 1.27); that run found nothing. Such a run is re-checked: the
# target's seed and cached corpus are replayed as a plain test, and the
# fuzzing is repeated once with an execution-count budget, which has no
# deadline to race. Only a reproducer, a failing replay or a second failure
# fails the smoke.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-8s}
RETRY_EXECS=${RETRY_EXECS:-20000x}
failed=0 flaked=0 passed=0

for pkg in $($GO list ./...); do
  dir=$($GO list -f '{{.Dir}}' "$pkg")
  for t in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //'); do
    corpus="$dir/testdata/fuzz/$t"
    before=$(ls "$corpus" 2>/dev/null | sort)
    echo "fuzz $pkg $t ($FUZZTIME)"
    out=$($GO test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if ((rc == 0)); then passed=$((passed + 1)); continue; fi
    after=$(ls "$corpus" 2>/dev/null | sort)
    if [[ "$before" != "$after" ]] || ! grep -q 'context deadline exceeded' <<<"$out" ||
      grep -qE 'panic:|Failing input written|_test\.go:[0-9]+:' <<<"$out"; then
      echo "FAIL: $t found a failing input (see above; reproducer under $corpus)"
      failed=$((failed + 1)); continue
    fi
    echo "note: $t stopped with Go's fuzz-deadline race and no input; replaying its corpus and fuzzing $RETRY_EXECS"
    if $GO test -count=1 -run "^$t\$" "$pkg" && $GO test -run '^$' -fuzz "^$t\$" -fuzztime "$RETRY_EXECS" "$pkg"; then
      flaked=$((flaked + 1))
    else
      echo "FAIL: $t failed again on the re-check"
      failed=$((failed + 1))
    fi
  done
done
echo "fuzz smoke: $passed passed, $flaked passed on re-check after the deadline race, $failed failed"
((failed == 0))
