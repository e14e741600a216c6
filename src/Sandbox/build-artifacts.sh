#!/usr/bin/env bash
# Builds the sandbox hypervisor image and its sample payloads into DIR (./build.sh uses artifacts/sandbox):
#   DIR/xen-syms                     the image, with symbols and a GNU build-id
#   DIR/payloads/xen_*.livepatch     the sample payloads, mirroring Xen's own test payloads, made by
#                                    'xen-livepatch build' from payloads/<sample>.c. payloads/*_funcs.c hold
#                                    the same function entries in C, for the gcc/objcopy/ld recipe
#                                    (tools/payload/build-payload.sh) that the tests compare build with.
# The CLI is $XEN_LIVEPATCH when set (a command: a path, or "dotnet path/xen-livepatch-full.dll"), otherwise
# artifacts/publish/xen-livepatch/xen-livepatch, which ./build.sh publishes before it runs this script.
#   usage: src/Sandbox/build-artifacts.sh DIR
set -euo pipefail
out=${1:?usage: build-artifacts.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
read -r -a xlp <<< "${XEN_LIVEPATCH:-$repo/artifacts/publish/xen-livepatch/xen-livepatch}"
command -v "${xlp[0]}" >/dev/null 2>&1 ||
  { echo "build-artifacts.sh: ${xlp[0]} not found: run ./build.sh (it publishes the CLI first), or set XEN_LIVEPATCH" >&2; exit 1; }
"$here/image/build.sh" "$out"
image=$out/xen-syms
p=$out/payloads
mkdir -p "$p"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# As Xen's payloads are compiled (and tools/payload/build-payload.sh compiles them): one section per
# function, no red zone, no CET (the image's ENDBR64s are skipped by the patch, the payload needs none).
cflags="-O2 -ffreestanding -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables -ffunction-sections
        -fpic -mno-red-zone -fcf-protection=none -Wall -Werror -I$here/payloads -c"
payload() { # name source.c|- [build options...]
  local name=$1 src=$2
  shift 2
  local objs=()
  if [ "$src" != - ]; then
    gcc $cflags "$here/payloads/$src" -o "$tmp/$name.o"
    objs=("$tmp/$name.o")
  fi
  "${xlp[@]}" build --target "$image" -o "$p/$name.livepatch" "$@" "${objs[@]}" >/dev/null
}
payload xen_hello_world hello_world.c --metadata LIVEPATCH_RULEZ
payload xen_bye_world bye_world.c --depends-on "$p/xen_hello_world.livepatch" --resolve
payload xen_replace_world replace_world.c
payload xen_nop - --nop xen_minor_version:-1 --resolve
payload xen_prepost_hooks prepost_hooks.c
payload xen_prepost_hooks_fail prepost_hooks_fail.c
payload xen_action_hooks action_hooks.c
payload xen_action_hooks_noapply action_hooks_noapply.c
payload xen_expectations expectations.c --expect xen_extra_version:8
payload xen_expectations_fail expectations_fail.c --expect xen_extra_version=deadc0debabe
