#!/usr/bin/env bash
# The test command: runs every test project of the solution (building what is stale) and ends with one
# line "N passed, N failed", the totals over all test assemblies. Extra arguments go to 'dotnet test'
# (for example: ./test.sh --filter "FullyQualifiedName~Readelf").
#   usage: ./test.sh [dotnet test options]
set -uo pipefail
cd "$(dirname "$0")"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet test XenLivepatch.slnx -c Release --nologo "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# One summary line per test assembly: "Passed!  - Failed:     0, Passed:    14, Skipped: ..."
passed=0
failed=0
while read -r f p; do
  passed=$((passed + p))
  failed=$((failed + f))
done < <(sed -n 's/^\(Passed\|Failed\)! *- *Failed: *\([0-9]*\), *Passed: *\([0-9]*\),.*/\2 \3/p' "$log")
# A run that failed without a failing test (a build error, a crashed test host) still counts as a failure.
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit "$rc"
