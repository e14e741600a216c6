#!/usr/bin/env bash
# Builds the sandbox hypervisor image and its sample payloads into DIR (./build.sh uses artifacts/sandbox):
#   DIR/xen-syms                     the image, with symbols and a GNU build-id
#   DIR/payloads/xen_*.livepatch     the sample payloads, mirroring Xen's own test payloads
#   usage: src/Sandbox/build-artifacts.sh DIR
set -euo pipefail
out=${1:?usage: build-artifacts.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../tools/payload/build-payload.sh
"$here/image/build.sh" "$out"
image=$out/xen-syms
mkdir -p "$out/payloads"
p=$out/payloads
payload() { # name source [options...]
  local name=$1 src=$2; shift 2
  bash "$build" --arch x86_64 --image "$image" --out "$p/$name.livepatch" "$@" "$here/payloads/$src"
}
payload xen_hello_world hello_world.c --modinfo LIVEPATCH_RULEZ
payload xen_bye_world bye_world.c --depends-on "$p/xen_hello_world.livepatch"
payload xen_replace_world replace_world.c
payload xen_nop nop.c
payload xen_prepost_hooks prepost_hooks.c
payload xen_prepost_hooks_fail prepost_hooks_fail.c
payload xen_action_hooks action_hooks.c
payload xen_action_hooks_noapply action_hooks_noapply.c
payload xen_expectations expectations.c
payload xen_expectations_fail expectations_fail.c
