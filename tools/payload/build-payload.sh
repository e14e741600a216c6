#!/usr/bin/env bash
# Builds a livepatch payload the way Xen's own tests do (xen/test/livepatch/Makefile): compile, turn the
# hypervisor's build-id note into .livepatch.depends and .livepatch.xen_depends objects with objcopy,
# link with 'ld -r --build-id=sha1', make .livepatch.funcs read-only.
#
#   usage: build-payload.sh --arch x86_64|aarch64 --image XEN_SYMS --out OUT [options] SOURCE.c|SOURCE.S ...
#     --depends-on PAYLOAD   .livepatch.depends is PAYLOAD's build-id (stacking), not the hypervisor's
#     --no-depends           no .livepatch.depends
#     --no-xen-depends       no .livepatch.xen_depends (the seed design's payloads have none)
#     --modinfo TEXT         a .modinfo section holding TEXT and a NUL
#     --cflags "FLAGS"       more compiler flags (for example -DLIVEPATCH_V1 -O0)
#     --no-readonly-funcs    leave .livepatch.funcs writable (skip the objcopy step)
#
# Sources may use SZ_<symbol>, OLD_SZ_<symbol>, ADDR_<symbol> and BYTES8_<symbol>: the script compiles
# twice and defines them as <symbol>'s size (the payload's own first), size in the hypervisor image, address
# (the image's first) and first 8 bytes in the image (as a comma list, for expectations).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Payload sources include livepatch.h from their own folder, or from tests/Data/payloads.
header_dir=${LIVEPATCH_HEADER_DIR:-$here/../../tests/Data/payloads}
arch="" image="" out="" depends_on="" no_depends=0 no_xen_depends=0 modinfo="" cflags="" readonly_funcs=1
sources=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --depends-on) depends_on=$2; shift 2 ;;
    --no-depends) no_depends=1; shift ;;
    --no-xen-depends) no_xen_depends=1; shift ;;
    --modinfo) modinfo=$2; shift 2 ;;
    --cflags) cflags=$2; shift 2 ;;
    --no-readonly-funcs) readonly_funcs=0; shift ;;
    -*) echo "build-payload.sh: unknown option $1" >&2; exit 2 ;;
    *) sources+=("$1"); shift ;;
  esac
done
[ -n "$arch" ] && [ -n "$image" ] && [ -n "$out" ] && [ ${#sources[@]} -gt 0 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
case "$arch" in
  x86_64) cross=""; bfd=elf64-x86-64; bfdarch=i386:x86-64; archflags="-fpic -mno-red-zone -fcf-protection=none" ;;
  aarch64) cross=aarch64-linux-gnu-; bfd=elf64-littleaarch64; bfdarch=aarch64; archflags="" ;;
  *) echo "build-payload.sh: unknown architecture $arch" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
base="-O2 -ffreestanding -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables -ffunction-sections -I$header_dir -c"

tokens=$(cat "${sources[@]}" | grep -o '\b\(SZ\|OLD_SZ\|ADDR\|BYTES8\)_[A-Za-z0-9_]*' | sort -u || true)
compile() { # defines...
  objs=()
  local i=0
  for src in "${sources[@]}"; do
    obj="$tmp/$i.o"; i=$((i + 1))
    ${cross}gcc $base $archflags $cflags "$@" "$src" -o "$obj"
    objs+=("$obj")
  done
}
defs=()
for t in $tokens; do
  case "$t" in
    BYTES8_*) defs+=("-D$t=0") ;;
    *) defs+=("-D$t=0") ;;
  esac
done
compile "${defs[@]}"
defs=()
# One nm per file (not per token): payloads may use thousands of tokens.
${cross}nm -S "${objs[@]}" 2>/dev/null | awk 'NF == 4 && !($4 in seen) { seen[$4] = 1; print $4, $1, $2 }' > "$tmp/payload.syms"
${cross}nm -S "$image" | awk 'NF == 4 && !($4 in seen) { seen[$4] = 1; print $4, $1, $2 }' > "$tmp/image.syms"
lookup() { # file symbol -> "address size" or nothing
  awk -v s="$2" '$1 == s { print $2, $3; exit }' "$1"
}
for t in $tokens; do
  case "$t" in
    OLD_SZ_*) sym=${t#OLD_SZ_} ;;
    BYTES8_*) sym=${t#BYTES8_} ;;
    *) sym=${t#*_} ;;
  esac
  case "$t" in
    SZ_*) line=$(lookup "$tmp/payload.syms" "$sym"); [ -n "$line" ] || line=$(lookup "$tmp/image.syms" "$sym") ;;
    OLD_SZ_*|BYTES8_*) line=$(lookup "$tmp/image.syms" "$sym") ;;
    *) line=$(lookup "$tmp/image.syms" "$sym"); [ -n "$line" ] || line=$(lookup "$tmp/payload.syms" "$sym") ;;
  esac
  [ -n "$line" ] || { echo "build-payload.sh: $t: symbol $sym is neither in the payload nor in $image" >&2; exit 1; }
  case "$t" in
    SZ_*|OLD_SZ_*) defs+=("-D$t=0x${line#* }") ;;
    ADDR_*) defs+=("-D$t=0x${line%% *}UL") ;;
    BYTES8_*)
      a=${line%% *}
      hex=$(${cross}objdump -s --start-address=0x$a --stop-address=$(printf '0x%x' $((16#$a + 8))) "$image" |
            awk 'NR > 4 && NF >= 2 { for (i = 2; i <= NF && i <= 5; i++) printf "%s", $i }' | cut -c1-16)
      [ ${#hex} = 16 ] || { echo "build-payload.sh: cannot read 8 bytes of $sym in $image" >&2; exit 1; }
      defs+=("-D$t=$(echo "$hex" | sed 's/\(..\)/0x\1,/g; s/,$//')")
      ;;
  esac
done
compile "${defs[@]}"

note_object() { # section from-file
  ${cross}objcopy -O binary --only-section=.note.gnu.build-id "$2" "$tmp/$1.bin"
  [ -s "$tmp/$1.bin" ] || { echo "build-payload.sh: $2 has no .note.gnu.build-id" >&2; exit 1; }
  ${cross}objcopy -I binary -O $bfd -B $bfdarch --rename-section=.data=$1,alloc,load,readonly,data,contents -S "$tmp/$1.bin" "$tmp/$1.o"
  objs+=("$tmp/$1.o")
}
[ $no_depends = 1 ] || note_object .livepatch.depends "${depends_on:-$image}"
[ $no_xen_depends = 1 ] || note_object .livepatch.xen_depends "$image"
if [ -n "$modinfo" ]; then
  printf '%s\0' "$modinfo" > "$tmp/modinfo.bin"
  ${cross}objcopy -I binary -O $bfd -B $bfdarch --rename-section=.data=.modinfo,alloc,load,readonly,data,contents -S "$tmp/modinfo.bin" "$tmp/modinfo.o"
  objs+=("$tmp/modinfo.o")
fi
${cross}ld -r --build-id=sha1 -z noexecstack -o "$out" "${objs[@]}"
if [ $readonly_funcs = 1 ] && ${cross}readelf -S "$out" | grep -q '\.livepatch\.funcs'; then
  ${cross}objcopy --set-section-flags .livepatch.funcs=alloc,readonly "$out"
fi
