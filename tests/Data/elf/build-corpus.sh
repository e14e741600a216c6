#!/usr/bin/env bash
# Builds the ELF test corpus into DIR from the C sources beside this script, and writes DIR/manifest.txt:
# one line per file, "<name> <path>". The tests compare every file against readelf.
#   usage: build-corpus.sh DIR
# Variants cover x86-64 and aarch64 (-O0/-O2, -fpic/-fno-pic, debug info, function sections), ELF32
# little endian (i386, REL relocations; x32), ELF64 and ELF32 big endian (aarch64_be, ILP32), objects
# linked by ld (-r with a build-id, executables, shared objects) and an assembler object with more
# than 65280 sections (extended section numbering).
set -euo pipefail
out=${1:?usage: build-corpus.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
manifest=$out/manifest.txt
: > "$manifest"
common="-c -ffreestanding -fno-stack-protector -Wall -Werror"

have() { command -v "$1" >/dev/null 2>&1; }

compile() { # name compiler flags...
  local name=$1 cc=$2; shift 2
  for src in "$here"/src/*.c; do
    local base; base=$(basename "$src" .c)
    local obj="$out/$name-$base.o"
    "$cc" $common "$@" "$src" -o "$obj"
    echo "$name-$base $obj" >> "$manifest"
  done
}

compile x86_64-O0-nopic       gcc -O0 -fno-pic -fcommon
compile x86_64-O2-nopic       gcc -O2 -fno-pic -fno-asynchronous-unwind-tables
compile x86_64-O0-pic         gcc -O0 -fpic
compile x86_64-O2-pic         gcc -O2 -fpic -ffunction-sections -fdata-sections
compile x86_64-O2-pic-g       gcc -O2 -fpic -g
compile x86_64-O2-large       gcc -O2 -mcmodel=large -fno-pic
compile i386-O2-pic           gcc -m32 -O2 -fpic
compile i386-O0-nopic         gcc -m32 -O0 -fno-pic -fcommon
compile x32-O2                gcc -mx32 -O2 -fpic
if have aarch64-linux-gnu-gcc; then
  compile aarch64-O0-nopic    aarch64-linux-gnu-gcc -O0 -fno-pic -fcommon
  compile aarch64-O2-nopic    aarch64-linux-gnu-gcc -O2 -fno-pic
  compile aarch64-O0-pic      aarch64-linux-gnu-gcc -O0 -fpic
  compile aarch64-O2-pic      aarch64-linux-gnu-gcc -O2 -fpic -ffunction-sections -g
  compile aarch64be-O2        aarch64-linux-gnu-gcc -mbig-endian -O2 -fpic
  compile aarch64ilp32be-O2   aarch64-linux-gnu-gcc -mabi=ilp32 -mbig-endian -O2
fi

# Linked files: ld -r with a build-id (how livepatch payloads are linked), an executable, a shared object.
ld -r --build-id=sha1 -z noexecstack -o "$out/x86_64-ld-r-buildid.o" "$out"/x86_64-O2-pic-{data,functions,sections}.o
echo "x86_64-ld-r-buildid $out/x86_64-ld-r-buildid.o" >> "$manifest"
gcc -O2 -fno-pic -ffreestanding -nostdlib -static -Wl,--build-id=sha1 -Wl,-e,compose -Wl,--unresolved-symbols=ignore-all \
  "$here/src/functions.c" -o "$out/x86_64-exec"
echo "x86_64-exec $out/x86_64-exec" >> "$manifest"
gcc -O2 -fpic -shared -nostdlib -Wl,--build-id=md5 "$here/src/data.c" "$here/src/functions.c" -o "$out/x86_64-shared.so"
echo "x86_64-shared $out/x86_64-shared.so" >> "$manifest"
if have aarch64-linux-gnu-gcc; then
  aarch64-linux-gnu-ld -r --build-id=sha1 -o "$out/aarch64-ld-r-buildid.o" "$out"/aarch64-O2-pic-{data,functions,sections}.o
  echo "aarch64-ld-r-buildid $out/aarch64-ld-r-buildid.o" >> "$manifest"
fi

# Extended section numbering: 66000 sections need e_shnum = 0 and SHT_SYMTAB_SHNDX.
python3 - "$out/many.s" <<'PY' 2>/dev/null || awk 'BEGIN { for (i = 0; i < 66000; i++) printf ".section .s%d,\"ax\",@progbits\n.globl f%d\nf%d: ret\n", i, i, i }' > "$out/many.s"
import sys
with open(sys.argv[1], "w") as f:
    for i in range(66000):
        f.write(f'.section .s{i},"ax",@progbits\n.globl f{i}\nf{i}: ret\n')
PY
as --64 -o "$out/x86_64-many-sections.o" "$out/many.s"
echo "x86_64-many-sections $out/x86_64-many-sections.o" >> "$manifest"
