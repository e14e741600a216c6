#!/usr/bin/env bash
# Coverage-guided fuzzing of one parser that takes outside bytes (fuzz/Targets.cs; `./fuzz/run.sh --list`), with
# afl++ driving SharpFuzz's forkserver in one .NET process over instrumented copies of our assemblies. Starts from
# fuzz/corpus/TARGET, stops after SECONDS or EXECS executions, whichever comes first, and prints one line of
# figures (executions, time, exec/s, edges, crashes, hangs). Exit 0 when nothing crashed or hung; 1 otherwise, with
# the inputs in the findings directory (replay one: dotnet artifacts/fuzz/instrumented/xlp-fuzz.dll TARGET FILE).
#   usage: fuzz/run.sh TARGET [SECONDS=600] [EXECS=1000000]
#   knobs: XLP_FUZZ_OUT (findings; default artifacts/fuzz/findings/TARGET), XLP_FUZZ_TIMEOUT (ms per input,
#          default 5000), XLP_FUZZ_HEAP (the .NET heap's hard limit, default 0x40000000 = 1 GiB: a run that balloons
#          dies), XLP_FUZZ_NO_BUILD=1 (use the harness as built), XLP_FUZZ_NICE (default 10), XLP_FUZZ_BIN and
#          XLP_FUZZ_INST (the harness's build and its instrumented copy: a campaign can run from a snapshot),
#          XLP_FUZZ_IN (the inputs to start from, default fuzz/corpus/TARGET: a longer campaign resumes from a queue)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [ "${1:-}" = "" ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
  exit "$([ "${1:-}" = "" ] && echo 64 || echo 0)"
fi
bin=${XLP_FUZZ_BIN:-artifacts/bin/XenLivepatch.Fuzz/release}
if [ "$1" = "--list" ]; then
  exec dotnet "$bin/xlp-fuzz.dll" --list
fi
target=$1
seconds=${2:-600}
execs=${3:-1000000}
if [ ! -d "fuzz/corpus/$target" ]; then
  echo "fuzz/run.sh: no corpus for '$target' (fuzz/corpus/$target); fuzz/run.sh --list names the targets" >&2
  exit 64
fi

if ! command -v afl-fuzz >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "fuzz/run.sh: installing afl++" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends afl++ >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends afl++ >/dev/null; }
  else
    echo "fuzz/run.sh: afl-fuzz is missing: apt-get install afl++ (as root), then run again" >&2
    exit 1
  fi
fi

if [ "${XLP_FUZZ_NO_BUILD:-}" != 1 ]; then
  dotnet build fuzz/XenLivepatch.Fuzz.csproj -c Release --nologo -v quiet -clp:ErrorsOnly >&2
fi
# The instrumented copy is remade when the build is newer. Concurrent runs share it: the first one makes it.
inst=${XLP_FUZZ_INST:-artifacts/fuzz/instrumented}
mkdir -p artifacts/fuzz "$(dirname "$inst")"
(
  flock 9
  if [ ! -f "$inst/.done" ] || [ "$(cat "$inst/.done")" != "$bin" ] || [ -n "$(find "$bin" \( -name 'XenLivepatch.*.dll' -o -name 'xen-livepatch-full.dll' -o -name 'xlp-fuzz.dll' \) -newer "$inst/.done" | head -1)" ]; then
    rm -rf "$inst"
    cp -r "$bin" "$inst"
    dotnet "$bin/xlp-fuzz.dll" instrument "$inst" >&2
    echo "$bin" >"$inst/.done"
  fi
) 9>"$inst.lock"

out=${XLP_FUZZ_OUT:-artifacts/fuzz/findings/$target}
rm -rf "$out"
mkdir -p "$(dirname "$out")"
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1 AFL_FORKSRV_INIT_TMOUT=120000
export DOTNET_GCHeapHardLimit=${XLP_FUZZ_HEAP:-0x40000000} DOTNET_TieredCompilation=0 DOTNET_gcServer=0
export XLP_FUZZ_REPO="$repo"
# The ELF targets get the section names and magics our parsers look for (afl++ splices them in).
dict=()
case $target in elf|upload|info|build|signature) dict=(-x fuzz/dict/elf.dict) ;; esac
log=$(dirname "$out")/$target.log
start=$(date +%s)
nice -n "${XLP_FUZZ_NICE:-10}" afl-fuzz -i "${XLP_FUZZ_IN:-fuzz/corpus/$target}" -o "$out" -t "${XLP_FUZZ_TIMEOUT:-5000}" -m none "${dict[@]}" \
  -V "$seconds" -E "$execs" -- dotnet "$inst/xlp-fuzz.dll" "$target" >"$log" 2>&1 || {
  echo "fuzz/run.sh: afl-fuzz failed ($log):" >&2
  tail -20 "$log" >&2
  exit 1
}
stats=$out/default/fuzzer_stats
if [ ! -f "$stats" ]; then
  echo "fuzz/run.sh: afl-fuzz left no statistics ($log)" >&2
  tail -20 "$log" >&2
  exit 1
fi
field() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes=$(field saved_crashes)
hangs=$(field saved_hangs)
done_execs=$(field execs_done)
wall=$(( $(date +%s) - start ))
printf 'fuzz %s: %s executions in %s s (%s exec/s), %s edges (map %s), corpus %s, crashes %s, hangs %s\n' \
  "$target" "$done_execs" "$(field run_time)" "$(field execs_per_sec)" "$(field edges_found)" "$(field bitmap_cvg)" \
  "$(field corpus_count)" "$crashes" "$hangs"
echo "  (wall $wall s with start-up; findings in $out)"
if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
  for f in "$out"/default/crashes/id* "$out"/default/hangs/id*; do
    [ -f "$f" ] && echo "  $f"
  done
  exit 1
fi
