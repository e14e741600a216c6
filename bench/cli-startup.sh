#!/usr/bin/env bash
# Start-up figure for the closing note: wall time of `xen-livepatch help`, `list` with nothing loaded and
# `list` with 20 payloads loaded, for Debian's C tool and our NativeAOT CLI, in the same dom0 of one boot of
# Debian's Xen 4.17 under QEMU (tests/qemu/run.sh), RUNS runs each after one warm-up run, the two tools alternating. Prints a table of
# medians (and min-max) and the ratio ours/C; exits 1 when a ratio is above LIMIT.
#
#   usage: bench/cli-startup.sh [RUNS (default 10)] [LIMIT (default 1.5)]
#
# Needs ./build.sh first (our binary at artifacts/publish/xen-livepatch/xen-livepatch); gcc with a static libc
# (libc6-dev) builds the timer (bench/dom0-time.c); tests/qemu/fetch.sh runs when its cache is missing.
# Under QEMU's software emulation absolute times are slow and noisy: compare the two columns, not the numbers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${1:-10}
limit=${2:-1.5}
ours=$repo/artifacts/publish/xen-livepatch/xen-livepatch
[ -x "$ours" ] || { echo "cli-startup: $ours is missing: run ./build.sh" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cli-startup.XXXXXX")
trap 'rm -rf "$work"' EXIT
files=$work/files
mkdir -p "$files/ours" "$files/p"
cp "$ours" "$files/ours/xen-livepatch"
gcc -O2 -static -o "$files/dom0-time" "$here/dom0-time.c"

# 20 copies of the hello-world payload with their own symbol names and build-ids (Xen refuses a payload that
# defines a symbol another loaded payload defines, or that has the build-id of one).
bash "$repo/tests/qemu/build-hello-payload.sh" "$work/hello" >/dev/null
for i in $(seq -w 1 20); do
  python3 -c 'import sys, struct, hashlib; sys.stdout.buffer.write(struct.pack("<III", 4, 20, 3) + b"GNU\0" + hashlib.sha1(sys.argv[1].encode()).digest())' \
    "bench $i" > "$work/note_$i.bin"
  objcopy --redefine-sym livepatch_xen_hello_world=livepatch_bench_$i --redefine-sym patched_function=patched_function_$i \
    --redefine-sym xen_hello_world=xen_hello_bench_$i --update-section .note.gnu.build-id="$work/note_$i.bin" \
    "$work/hello/xen_hello_world.livepatch" "$files/p/bench_$i.livepatch"
done

cat > "$work/script.sh" <<SCRIPT
C=/usr/sbin/xen-livepatch
O=/work/ours/xen-livepatch
# One warm-up run of each, then the two tools alternate run by run, so that whatever else the emulated machine
# does at a moment weighs on both alike.
measure() { # CASE ARGS...
  c=\$1; shift
  ./dom0-time 1 \$C "\$@" > /dev/null; ./dom0-time 1 \$O "\$@" > /dev/null
  for i in \$(seq $runs); do
    ./dom0-time 1 \$C "\$@" | sed "s/^/\$c C /" >> out/times
    ./dom0-time 1 \$O "\$@" | sed "s/^/\$c O /" >> out/times
  done
}
: > out/times
measure help help
measure list-empty list
for i in \$(ls p); do \$C upload \${i%.livepatch} p/\$i > /dev/null || echo "upload \$i failed"; done
\$C list > out/list20
measure list-20 list
SCRIPT

out=$work/out
# One CPU, as the QEMU tests boot: fewer emulation threads competing with each other on the host.
bash "$repo/tests/qemu/run.sh" --files "$files" --script "$work/script.sh" --out "$out" --timeout 600 --smp 1 >&2
[ "$(grep -c '| CHECKED' "$out/list20" || true)" = 20 ] || { echo "cli-startup: the 20 payloads did not load:" >&2; cat "$out/run.log" >&2; exit 1; }

python3 - "$out/times" "$runs" "$limit" <<'PY'
import sys, statistics
rows, runs, limit = {}, sys.argv[2], float(sys.argv[3])
for line in open(sys.argv[1]):
    case, tool, us, rc = line.split()
    rows.setdefault(case, {}).setdefault(tool, []).append(int(us) / 1000)
print(f"xen-livepatch start-up in the dom0 of Debian's Xen 4.17 under QEMU (TCG), {runs} runs each, wall ms")
print(f"{'command':<12} {'C tool median (min-max)':>26} {'ours median (min-max)':>26} {'ours/C':>7}")
worst = 0
for case in ("help", "list-empty", "list-20"):
    c, o = rows[case]["C"], rows[case]["O"]
    ratio = statistics.median(o) / statistics.median(c)
    worst = max(worst, ratio)
    fmt = lambda v: f"{statistics.median(v):7.1f} ({min(v):.1f}-{max(v):.1f})"
    label = {"help": "help", "list-empty": "list (0)", "list-20": "list (20)"}[case]
    print(f"{label:<12} {fmt(c):>26} {fmt(o):>26} {ratio:7.2f}")
sys.exit(0 if worst <= limit else 1)
PY
