#!/usr/bin/env bash
# Builds the sandbox hypervisor image: DIR/xen-syms, an ELF executable linked at its run address with a GNU
# build-id and its symbols (users build and check payloads against it, as against Xen's xen-syms), and
# DIR/build, the built copy of this tree it came from: the --base-build of 'xen-livepatch build-source'.
#   usage: src/Sandbox/image/build.sh DIR
set -euo pipefail
out=${1:?usage: build.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
rm -rf "$out/build"
mkdir -p "$out/build"
cp -p "$here"/Makefile "$here"/*.c "$here"/*.h "$here"/*.S "$out/build/"
make -s -C "$out/build" >&2
cp "$out/build/xen-syms" "$out/xen-syms"
