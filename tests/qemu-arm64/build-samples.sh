#!/usr/bin/env bash
# Builds the sample payloads, mirroring Xen's own test payloads, for the real arm64 Xen that fetch.sh builds:
# the sandbox's samples (src/Sandbox/payloads/*.c) compiled with aarch64-linux-gnu-gcc and -DLIVEPATCH_XEN
# (Xen 4.17's struct payload and printk instead of the sandbox's services: xen_payload.h), made into payloads
# by `xen-livepatch build --target xen-syms` (which writes their function entries, dependencies and
# build-ids). Into OUTDIR:
#   xen_hello_world (metadata LIVEPATCH_RULEZ, load/unload hooks), xen_bye_world (stacked on hello_world),
#   xen_replace_world, xen_nop (NOPs the first instruction of xen_minor_version), xen_prepost_hooks(+_fail),
#   xen_action_hooks(+_noapply), xen_expectations(+_fail).
#
#   usage: tests/qemu-arm64/build-samples.sh OUTDIR [XEN_SYMS]
#
# XEN_SYMS defaults to CACHE/xen-syms (CACHE: <repo>/artifacts/qemu-arm64 or $XEN_QEMU_ARM64_CACHE; fetch.sh runs
# first when CACHE/READY is missing). The CLI is $XEN_LIVEPATCH when set (a command: a path, or "dotnet
# path/xen-livepatch-full.dll"), otherwise artifacts/publish/xen-livepatch/xen-livepatch (./build.sh publishes it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
out=$1
cache=${XEN_QEMU_ARM64_CACHE:-$repo/artifacts/qemu-arm64}
if [ $# -eq 2 ]; then
  xen=$2
else
  [ -f "$cache/READY" ] || "$here/fetch.sh" "$cache" >&2 || { echo "build-samples.sh: fetch.sh failed" >&2; exit 1; }
  xen=$cache/xen-syms
fi
read -r -a xlp <<< "${XEN_LIVEPATCH:-$repo/artifacts/publish/xen-livepatch/xen-livepatch}"
command -v "${xlp[0]}" >/dev/null 2>&1 ||
  { echo "build-samples.sh: ${xlp[0]} not found: run ./build.sh (it publishes the CLI), or set XEN_LIVEPATCH" >&2; exit 1; }
command -v aarch64-linux-gnu-gcc >/dev/null || { echo "build-samples.sh: aarch64-linux-gnu-gcc is missing: apt-get install gcc-aarch64-linux-gnu" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# As Xen builds its own code: one section per function, no FP/SIMD registers (-mgeneral-regs-only), no PIE
# (ADRP/ADD to the payload's strings, direct BL to printk). -ffreestanding: gcc's own <stdint.h>, no arm64 libc.
src=$repo/src/Sandbox/payloads
cflags="-O2 -ffreestanding -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables
        -ffunction-sections -fno-pie -mgeneral-regs-only -Wall -Werror -DLIVEPATCH_XEN -c"
payload() { # name source.c|- [build options...]
  local name=$1
  shift
  local objs=()
  if [ "$1" != - ]; then
    aarch64-linux-gnu-gcc $cflags "$src/$1" -o "$tmp/$name.o"
    objs=("$tmp/$name.o")
  fi
  shift
  "${xlp[@]}" build --target "$xen" -o "$out/$name.livepatch" "$@" "${objs[@]}" >/dev/null
}
payload xen_hello_world hello_world.c --metadata LIVEPATCH_RULEZ
payload xen_bye_world bye_world.c --depends-on "$out/xen_hello_world.livepatch" --resolve
payload xen_replace_world replace_world.c
payload xen_nop - --nop xen_minor_version:4 --resolve
payload xen_prepost_hooks prepost_hooks.c
payload xen_prepost_hooks_fail prepost_hooks_fail.c
payload xen_action_hooks action_hooks.c
payload xen_action_hooks_noapply action_hooks_noapply.c
payload xen_expectations expectations.c --expect xen_extra_version:8
payload xen_expectations_fail expectations_fail.c --expect xen_extra_version=deadc0debabe
echo "build-samples.sh: $(ls "$out"/*.livepatch | wc -l) payloads in $out for $(basename "$xen") (build-id $(aarch64-linux-gnu-readelf -n "$xen" | sed -n 's/.*Build ID: //p'))"
