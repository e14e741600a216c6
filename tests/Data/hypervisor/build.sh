#!/usr/bin/env bash
# Builds the test hypervisor image (like xen-syms: an ELF executable with symbols and a GNU build-id).
#   usage: build.sh ARCH OUT      (ARCH: x86_64 or aarch64)
set -euo pipefail
arch=${1:?usage: build.sh x86_64|aarch64 OUT}
out=${2:?usage: build.sh x86_64|aarch64 OUT}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags="-O2 -ffreestanding -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables -c"
case "$arch" in
  x86_64)
    gcc $flags -fpic -mno-red-zone -fcf-protection=none "$here/xen.c" -o "$tmp/xen.o"
    gcc $flags -fpic -mno-red-zone -fcf-protection=branch "$here/cet.c" -o "$tmp/cet.o"
    ld -o "$out" -e _start -Ttext=0xffff82d040200000 --build-id=sha1 -z noexecstack -z max-page-size=4096 "$tmp/xen.o" "$tmp/cet.o"
    ;;
  aarch64)
    aarch64-linux-gnu-gcc $flags "$here/xen.c" -o "$tmp/xen.o"
    aarch64-linux-gnu-ld -o "$out" -e _start -Ttext=0x00000a0000200000 --build-id=sha1 -z noexecstack -z max-page-size=4096 "$tmp/xen.o"
    ;;
  *) echo "build.sh: unknown architecture $arch" >&2; exit 2 ;;
esac
