#!/usr/bin/env bash
# The sandbox on a busy host: HOGS CPU-bound processes keep every core busy while our CLI (the NativeAOT binary
# ./build.sh publishes) drives a sandbox with 2 vCPUs, in two parts:
#   1. ROUNDS rounds by one CLI: apply xen_hello_world, replace it with xen_replace_world, revert that, unload
#      xen_hello_world and upload it again (4 actions a round; Xen does not apply again a payload with .data that
#      was reverted). Any EBUSY or "Operation didn't complete." is a failure.
#   2. CLIS CLIs at once, ROUNDS rounds each, each applying (--nodeps) and reverting a payload of its own. Exit 2
#      (EBUSY: another CLI's action is pending, or its payload is not on top) is retried, as an operator would;
#      at the end no payload may read "in progress", and every one is reverted and unloaded.
# At the end the sandbox reports every value its vCPUs read: anything but the image's and the payloads' is a
# torn read, and a failure; and how many rendezvous waited past the deadline for vCPU threads the host did not run.
# Prints counts, times and the load average (start and end); exits 0 when all holds.
#   usage: bench/busy-host.sh [ROUNDS=500] [HOGS=4] [CLIS=4]
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-500}
hogs=${2:-4}
clis=${3:-4}
xlp=${XEN_LIVEPATCH:-artifacts/publish/xen-livepatch/xen-livepatch}
image=artifacts/sandbox/xen-syms
payloads=artifacts/sandbox/payloads
[ -x "$xlp" ] && [ -f "$image" ] || { echo "busy-host.sh: run ./build.sh first ($xlp, $image)" >&2; exit 1; }

work=$(mktemp -d /tmp/xlp-busy.XXXXXX)
sock=$work/s.sock
log=$work/sandbox.log
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  # SIGTERM: a background job of a non-interactive shell starts with SIGINT ignored.
  [ -n "${server:-}" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$xlp" sandbox --socket "$sock" --vcpus 2 >"$log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "serving the livepatch sysctl" "$log" && break; sleep 0.1; done
grep -q "serving the livepatch sysctl" "$log" || { cat "$log"; echo "busy-host.sh: the sandbox did not start" >&2; exit 1; }
export XEN_LIVEPATCH_SANDBOX=$sock

for _ in $(seq "$hogs"); do (while :; do :; done) & pids+=($!); done
echo "host: $hogs CPU-bound processes on $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# One action; its outcome counted as ok, ebusy, incomplete or other (with the text kept).
declare -A count=()
act() {
  local out
  out=$("$xlp" "$@" 2>&1)
  local rc=$?
  if [ $rc -eq 0 ]; then count[ok]=$((${count[ok]:-0} + 1))
  elif grep -q "didn't complete" <<<"$out"; then count[incomplete]=$((${count[incomplete]:-0} + 1)); echo "  $*: $out"
  elif grep -q "Error 16" <<<"$out"; then count[ebusy]=$((${count[ebusy]:-0} + 1)); echo "  $*: $out"
  else count[other]=$((${count[other]:-0} + 1)); echo "  $*: rc $rc: $out"
  fi
}

"$xlp" upload xen_replace_world "$payloads/xen_replace_world.livepatch" >/dev/null
start=$(date +%s.%N)
for r in $(seq "$rounds"); do
  "$xlp" upload xen_hello_world "$payloads/xen_hello_world.livepatch" >/dev/null || count[other]=$((${count[other]:-0} + 1))
  act apply xen_hello_world
  act replace xen_replace_world
  act revert xen_replace_world
  act unload xen_hello_world
  [ $((r % 50)) -eq 0 ] && echo "  part 1: $r/$rounds rounds" >&2
done
end=$(date +%s.%N)
"$xlp" unload xen_replace_world >/dev/null
part1_bad=$(( ${count[ebusy]:-0} + ${count[incomplete]:-0} + ${count[other]:-0} ))
printf 'part 1: %d rounds, %d actions in %.1f s: %d completed, %d EBUSY, %d did not complete, %d other\n' \
  "$rounds" $((rounds * 4)) "$(awk "BEGIN { print $end - $start }")" "${count[ok]:-0}" "${count[ebusy]:-0}" "${count[incomplete]:-0}" "${count[other]:-0}"

# Part 2: CLIS workers, each on a NOP payload of its own (distinct build-ids through their metadata).
for i in $(seq "$clis"); do
  "$xlp" build --target "$image" -o "$work/stress$i.livepatch" --nop xen_minor_version:-1 --resolve --metadata "WORKER=$i" >/dev/null
  "$xlp" upload "stress$i" "$work/stress$i.livepatch" >/dev/null
done
worker() { # i: ROUNDS apply/revert rounds; prints "done retries failures"
  local i=$1 retries=0 failures=0 rc tries
  for _ in $(seq "$rounds"); do
    for verb in apply revert; do
      tries=0
      while :; do
        if [ $verb = apply ]; then "$xlp" apply "stress$i" --nodeps >/dev/null 2>&1; else "$xlp" revert "stress$i" >/dev/null 2>&1; fi
        rc=$?
        [ $rc -ne 2 ] && break
        retries=$((retries + 1)); tries=$((tries + 1))
        [ $tries -ge 200 ] && break
        sleep 0.0$((RANDOM % 5))
      done
      [ $rc -ne 0 ] && failures=$((failures + 1))
    done
  done
  echo "$retries $failures"
}
start=$(date +%s.%N)
workers=()
for i in $(seq "$clis"); do worker "$i" >"$work/worker$i" & workers+=($!); done
wait "${workers[@]}"
end=$(date +%s.%N)
retries=0; failures=0
for i in $(seq "$clis"); do read -r r f <"$work/worker$i"; retries=$((retries + r)); failures=$((failures + f)); done
stuck=0
for i in $(seq "$clis"); do
  if "$xlp" get "stress$i" | grep -q "rc -11"; then stuck=$((stuck + 1)); fi
  for _ in $(seq 50); do "$xlp" revert "stress$i" >/dev/null 2>&1; [ $? -ne 2 ] && break; sleep 0.05; done
  "$xlp" unload "stress$i" >/dev/null 2>&1 || failures=$((failures + 1))
done
left=$("$xlp" list)
printf 'part 2: %d CLIs x %d rounds (%d actions) in %.1f s: %d retries on exit 2, %d failed, %d left in progress, list after: %s\n' \
  "$clis" "$rounds" $((clis * rounds * 2)) "$(awk "BEGIN { print $end - $start }")" "$retries" "$failures" "$stuck" "$left"

for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
pids=()
kill -TERM "$server"; wait "$server"; server=
echo "host at the end: load average $(cut -d' ' -f1-3 /proc/loadavg)"
grep "rendezvous," "$log"
values=$(grep "sandbox: vcpu[0-9]* read XENVER_extraversion" "$log" | grep -o '"[^"]*" [0-9,]* times' | sed 's/^"\(.*\)" [0-9,]* times$/\1/' | sort -u)
echo "values the vCPUs read: $(tr '\n' ',' <<<"$values")"
torn=$(grep -v -x -e '-sandbox' -e 'Hello World' -e 'Hello Again Wor' <<<"$values" | grep -c . || true)
[ -n "$values" ] || { echo "busy-host.sh: the sandbox did not report what its vCPUs read" >&2; torn=1; }
[ "$part1_bad" -eq 0 ] && [ "$failures" -eq 0 ] && [ "$stuck" -eq 0 ] && [ "$left" = "Nothing to list" ] && [ "$torn" -eq 0 ]
