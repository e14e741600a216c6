#!/usr/bin/env bash
# Rebuilds the checked-in inputs of the 'xen-livepatch info' golden tests (tests/Cli.Tests/InfoCommandTests.cs):
#   xen-syms, xen-syms-arm64                  the test hypervisor (tests/Data/hypervisor/build.sh)
#   greeting.livepatch, greeting-arm64.livepatch
#                                             greeting.c built for it by 'xen-livepatch build'
# They are kept in git so that the golden texts do not move with the compiler; after running this, run the
# tests with GOLDEN_UPDATE=1 and review the diff of tests/Data/golden/info.
#   usage: tests/Data/tooling/make-fixtures.sh [XEN_LIVEPATCH]   (default: artifacts/publish/xen-livepatch/xen-livepatch)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
xlp=${1:-$repo/artifacts/publish/xen-livepatch/xen-livepatch}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$repo/tests/Data/hypervisor/build.sh" x86_64 "$here/xen-syms"
bash "$repo/tests/Data/hypervisor/build.sh" aarch64 "$here/xen-syms-arm64"
flags="-O2 -ffreestanding -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables -ffunction-sections -c"
gcc $flags -fpic -mno-red-zone -fcf-protection=none "$here/greeting.c" -o "$tmp/greeting.o"
aarch64-linux-gnu-gcc $flags "$here/greeting.c" -o "$tmp/greeting-arm64.o"
options=(--metadata version=1 --metadata origin=tests --expect xen_extra_version:4)
"$xlp" build -o "$here/greeting.livepatch" --target "$here/xen-syms" "${options[@]}" --nop xen_major_version:-1 "$tmp/greeting.o"
"$xlp" build -o "$here/greeting-arm64.livepatch" --target "$here/xen-syms-arm64" "${options[@]}" --nop xen_major_version:4 "$tmp/greeting-arm64.o"
