#!/usr/bin/env bash
# Start-up figure for the closing note: wall time of `xen-livepatch help`, `list` with nothing loaded and
# `list` with 20 payloads loaded, for Debian's C tool and our NativeAOT CLI, in the same dom0 of one boot of
# Debian's Xen 4.17 under QEMU (tests/qemu/run.sh), RUNS runs each after one warm-up run, the tools alternating.
# Beside them, the floor: an empty NativeAOT program (bench/empty-aot: the CLI's publish settings,
# src/Cli/NativeAot.props, and `return 0`). Each run also records its page faults and CPU time (wait4's rusage).
# With CLI_STARTUP_KNOBS=1, the floor is also published with each of the GC's start-up knobs baked in (a heap hard
# limit, the gen0 budget, conserve-memory) and timed beside it. Then one run each under strace -c -f (the host's
# strace, with its libraries) of the C tool's, our and the empty program's start: the syscall summaries are kept
# in OUT (CLI_STARTUP_OUT, default a temporary folder that is removed). Prints a table of medians (and min-max),
# the ratios ours/C and ours/empty and the host's load; exits 1 when ours/C is above LIMIT for a command and ours
# is not within 1.1x of the floor.
#
# With CLI_STARTUP_ARCH=arm64, the same in the arm64 dom0 of upstream Xen 4.17.3 under qemu-system-aarch64
# (tests/qemu-arm64: fetch.sh first), with Debian's arm64 C tool, our linux-arm64 publish and an arm64 floor; no
# strace there (the host's is x86).
#
#   usage: bench/cli-startup.sh [RUNS (default 10)] [LIMIT (default 1.5)]
#
# Needs ./build.sh first (our binary at artifacts/publish/xen-livepatch/xen-livepatch); gcc with a static libc
# (libc6-dev) builds the timer (bench/dom0-time.c); tests/qemu/fetch.sh runs when its cache is missing.
# Under QEMU's software emulation absolute times are slow and noisy: compare the columns, not the numbers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${1:-10}
limit=${2:-1.5}
arch=${CLI_STARTUP_ARCH:-x86_64}
case $arch in
  x86_64) rid=linux-x64; publish=xen-livepatch; cc=gcc; objcopy=objcopy; hello_arch=(); run_arch=(); xen="Debian's Xen 4.17" ;;
  arm64) rid=linux-arm64; publish=xen-livepatch-linux-arm64; cc=aarch64-linux-gnu-gcc; objcopy=aarch64-linux-gnu-objcopy
         hello_arch=(--arch arm64); run_arch=(--arch arm64); xen="upstream Xen 4.17.3 (arm64)" ;;
  *) echo "cli-startup: CLI_STARTUP_ARCH is x86_64 or arm64, not $arch" >&2; exit 64 ;;
esac
ours=$repo/artifacts/publish/$publish/xen-livepatch
[ -x "$ours" ] && [ -x "$ours-full" ] || { echo "cli-startup: $ours or $ours-full is missing: run ./build.sh" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cli-startup.XXXXXX")
trap 'rm -rf "$work"' EXIT
knobs=${CLI_STARTUP_KNOBS:-0}
files=$work/files
mkdir -p "$files/ours" "$files/p"
# Both programs, as install.sh installs them: the front runs Xen's commands, the whole tool the rest.
cp "$ours" "$ours-full" "$files/ours/"
"$cc" -O2 -static -o "$files/dom0-time" "$here/dom0-time.c"
publish_empty() { # DIR [MSBUILD PROPERTIES...]
  local dir=$1; shift
  mkdir -p "$files/$dir"
  dotnet publish "$here/empty-aot/EmptyAot.csproj" -c Release -r "$rid" --nologo -v quiet -clp:ErrorsOnly \
    -p:ArtifactsPath="$work/build-$dir" -o "$work/publish-$dir" "$@" >&2
  cp "$work/publish-$dir/empty-aot" "$files/$dir/empty-aot"
}
publish_empty empty
extra=''
if [ "$knobs" = 1 ]; then
  # Decimal values, as a runtimeconfig knob is read: 64 MiB, 256 KiB, level 5.
  publish_empty limit -p:XlpRuntimeKnob=System.GC.HeapHardLimit -p:XlpRuntimeKnobValue=67108864
  publish_empty gen0 -p:XlpRuntimeKnob=GCgen0size -p:XlpRuntimeKnobValue=262144
  publish_empty conserve -p:XlpRuntimeKnob=System.GC.ConserveMemory -p:XlpRuntimeKnobValue=5
  extra='limit gen0 conserve'
fi
trace=0
if [ "$arch" = x86_64 ]; then cp "$(command -v strace)" "$files/strace"; trace=1; fi

# 20 copies of the hello-world payload with their own symbol names and build-ids (Xen refuses a payload that
# defines a symbol another loaded payload defines, or that has the build-id of one).
bash "$repo/tests/qemu/build-hello-payload.sh" "${hello_arch[@]}" "$work/hello" >/dev/null
for i in $(seq -w 1 20); do
  python3 -c 'import sys, struct, hashlib; sys.stdout.buffer.write(struct.pack("<III", 4, 20, 3) + b"GNU\0" + hashlib.sha1(sys.argv[1].encode()).digest())' \
    "bench $i" > "$work/note_$i.bin"
  "$objcopy" --redefine-sym livepatch_xen_hello_world=livepatch_bench_$i --redefine-sym patched_function=patched_function_$i \
    --redefine-sym xen_hello_world=xen_hello_bench_$i --update-section .note.gnu.build-id="$work/note_$i.bin" \
    "$work/hello/xen_hello_world.livepatch" "$files/p/bench_$i.livepatch"
done

cat > "$work/script.sh" <<SCRIPT
C=/usr/sbin/xen-livepatch
[ -x \$C ] || C=\$(command -v xen-livepatch)
O=/work/ours/xen-livepatch
E=/work/empty/empty-aot
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
# The floor (and with CLI_STARTUP_KNOBS=1 the floor with each GC knob baked in), alternating with our help.
./dom0-time 1 \$E > /dev/null
for i in \$(seq $runs); do
  ./dom0-time 1 \$E | sed "s/^/help E /" >> out/times
  for k in $extra; do ./dom0-time 1 /work/\$k/empty-aot | sed "s/^/help E-\$k /" >> out/times; done
  ./dom0-time 1 \$O help | sed "s/^/help O /" >> out/times
done
# Where the time goes: the system calls of each start (strace's own cost is in these, not in the times above).
if [ $trace = 1 ]; then
  ./strace -f -c -o out/strace-C \$C help > /dev/null 2>&1
  ./strace -f -c -o out/strace-ours \$O help > /dev/null 2>&1
  ./strace -f -c -o out/strace-empty \$E > /dev/null 2>&1
fi
measure list-empty list
for i in \$(ls p); do \$C upload \${i%.livepatch} p/\$i > /dev/null || echo "upload \$i failed"; done
\$C list > out/list20
measure list-20 list
SCRIPT

out=${CLI_STARTUP_OUT:-$work/out}
host_load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# One CPU, as the QEMU tests boot: fewer emulation threads competing with each other on the host.
bash "$repo/tests/qemu/run.sh" "${run_arch[@]}" --files "$files" --script "$work/script.sh" --out "$out" --timeout 600 --smp 1 >&2
[ "$(grep -c '| CHECKED' "$out/list20" || true)" = 20 ] || { echo "cli-startup: the 20 payloads did not load:" >&2; cat "$out/run.log" >&2; exit 1; }

host_load_after=$(cut -d' ' -f1-3 /proc/loadavg)
for f in C ours empty; do
  [ "$trace" = 1 ] || break
  echo "strace -c -f of $f's start (calls, errors, the five costliest):" >&2
  grep ' total$' "$out/strace-$f" | awk '{ print "  total: " $4 " calls" (NF == 6 ? ", " $5 " errors" : "") }' >&2
  sed -n '3,7p' "$out/strace-$f" | awk '{ print "  " $NF ": " $4 " calls" }' >&2
done
python3 - "$out/times" "$runs" "$limit" "$host_load_before" "$host_load_after" "$xen" <<'PY'
import sys, statistics
rows, runs, limit = {}, sys.argv[2], float(sys.argv[3])
print(f"host load average (1, 5, 15 min) before: {sys.argv[4]}, after: {sys.argv[5]}")
for line in open(sys.argv[1]):
    case, tool, us, rc, minflt, majflt, ucpu, scpu = line.split()
    rows.setdefault(case, {}).setdefault(tool, []).append((int(us) / 1000, int(minflt), (int(ucpu) + int(scpu)) / 1000))
med = lambda v, k: statistics.median(x[k] for x in v)
fmt = lambda v: f"{med(v, 0):7.1f} ({min(x[0] for x in v):.1f}-{max(x[0] for x in v):.1f})"
print(f"xen-livepatch start-up in the dom0 of {sys.argv[6]} under QEMU (TCG), {runs} runs each: wall ms median (min-max),")
print("minor page faults and CPU ms (user+system) medians")
print(f"{'command, program':<40} {'wall ms':>22} {'faults':>7} {'cpu ms':>7} {'vs C':>6} {'vs empty':>9}")
floor = med(rows["help"]["E"], 0)
ok = True
labels = {"help": "help", "list-empty": "list (0)", "list-20": "list (20)"}
names = {"C": "Debian's C tool", "O": "ours", "E": "empty NativeAOT", "E-gen0": "empty, gen0 256 KiB",
         "E-limit": "empty, heap limit 64 MiB", "E-conserve": "empty, conserve-memory 5"}
for case in ("help", "list-empty", "list-20"):
    c = med(rows[case]["C"], 0)
    for tool in ("C", "O", "E", "E-limit", "E-gen0", "E-conserve"):
        v = rows[case].get(tool)
        if not v:
            continue
        vs_c = med(v, 0) / c
        vs_e = med(v, 0) / floor
        print(f"{labels[case] + ' ' + names[tool]:<40.40} {fmt(v):>22} {med(v, 1):7.0f} {med(v, 2):7.1f} {vs_c:6.2f} {vs_e:9.2f}")
        if tool == "O" and vs_c > limit and vs_e > 1.1:
            ok = False
sys.exit(0 if ok else 1)
PY
