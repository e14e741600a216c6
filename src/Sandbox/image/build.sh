#!/usr/bin/env bash
# Builds the sandbox hypervisor image: DIR/xen-syms, an ELF executable linked at its run address with a GNU
# build-id and its symbols (users build and check payloads against it, as against Xen's xen-syms).
#   usage: src/Sandbox/image/build.sh DIR
set -euo pipefail
out=${1:?usage: build.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# -mcmodel=large: absolute 64-bit addresses, so the hypercall table is plain .rodata at its link address;
# -fcf-protection=branch: functions start with ENDBR64, as in Xen built with CET-IBT.
cflags="-O2 -ffreestanding -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables -fno-pic -mcmodel=large
        -mno-red-zone -fcf-protection=branch -fno-builtin -Wall -Werror -c"
gcc $cflags "$here/hypervisor.c" -o "$tmp/hypervisor.o"
gcc $cflags "$here/bench.c" -o "$tmp/bench.o"
gcc -c "$here/entry.S" -o "$tmp/entry.o"
# Linked at 32 TiB, far from anything the .NET runtime maps; payloads go in the window after it.
ld -o "$out/xen-syms" -e hypercall -Ttext-segment=0x200000000000 --build-id=sha1 -z noexecstack -z separate-code \
   -z max-page-size=4096 "$tmp/hypervisor.o" "$tmp/bench.o" "$tmp/entry.o"
