#!/usr/bin/env bash
# Builds a hello-world livepatch payload, OUTDIR/xen_hello_world.livepatch, for one Xen hypervisor image
# with the host's gcc, objcopy and ld (the way xen/test/livepatch/Makefile builds Xen's own test payloads):
#   * .text / .livepatch.funcs from tests/qemu/payloads/xen_hello_world.c: one struct livepatch_func
#     (version 2, 104 bytes) replacing xen_extra_version with a function returning "Hello World";
#   * .livepatch.depends and .livepatch.xen_depends: the hypervisor's GNU build-id note, cut out of the
#     image (Xen 4.17 requires both sections; the first payload depends on the hypervisor itself);
#   * .modinfo: "LIVEPATCH_RULEZ" (metadata that `xen-livepatch list` shows);
#   * linked with `ld -r --build-id=sha1` (a payload needs its own build-id).
# It also writes OUTDIR/xen-build-id: the hypervisor's build-id in hex.
#
#   usage: tests/qemu/build-hello-payload.sh [--arch arm64] OUTDIR [XEN_IMAGE]
#
# XEN_IMAGE defaults to CACHE/xen, the Debian hypervisor that tests/qemu/fetch.sh unpacks (CACHE is
# <repo>/artifacts/qemu or $XEN_QEMU_CACHE; fetch.sh runs first when CACHE/READY is missing). With --arch
# arm64 the payload is built with the aarch64 cross tools for CACHE/xen-syms, the arm64 Xen that
# tests/qemu-arm64/fetch.sh builds (CACHE: <repo>/artifacts/qemu-arm64 or $XEN_QEMU_ARM64_CACHE).
# OLD_SIZE=N in the environment overrides how many bytes of xen_extra_version may be patched (default: 12 on
# x86, the function's size in Debian's 4.17.7 image, where Xen needs at least 5, 9 when the function starts
# with ENDBR64; on arm64 the function's size in xen-syms, where Xen needs 4, one instruction).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "build-hello-payload: error: $*" >&2; exit 1; }

arch=x86_64
[ "${1:-}" = --arch ] && { arch=${2:-}; shift 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
out=$1
case "$arch" in
  x86_64)
    cache=${XEN_QEMU_CACHE:-$repo/artifacts/qemu} fetch=$here/fetch.sh image=xen cross='' bfd=(elf64-x86-64 i386:x86-64)
    cflags=(-O2 -fpic -mno-red-zone -fno-asynchronous-unwind-tables -fno-stack-protector -fcf-protection=none
            -ffunction-sections -Wall -Werror) ;;
  arm64)
    cache=${XEN_QEMU_ARM64_CACHE:-$repo/artifacts/qemu-arm64} fetch=$repo/tests/qemu-arm64/fetch.sh image=xen-syms
    cross=aarch64-linux-gnu- bfd=(elf64-littleaarch64 aarch64)
    # -ffreestanding: the host has no arm64 C library headers, gcc's own <stdint.h> serves. Without unwind
    # tables there is no .eh_frame (Xen would take its PREL32 relocations, but nothing reads it).
    cflags=(-O2 -ffreestanding -fno-pie -mgeneral-regs-only -fno-asynchronous-unwind-tables -fno-unwind-tables
            -fno-stack-protector -ffunction-sections -Wall -Werror) ;;
  *) die "unknown --arch '$arch' (x86_64 or arm64)" ;;
esac
if [ $# -eq 2 ]; then
  xen=$2
else
  [ -f "$cache/READY" ] || "$fetch" "$cache" >&2 || die "$fetch failed: see its messages above"
  xen=$cache/$image
fi
[ -f "$xen" ] || die "hypervisor image '$xen' not found"
for t in ${cross}gcc ${cross}objcopy ${cross}ld ${cross}nm readelf od; do
  command -v "$t" >/dev/null || die "$t is missing: apt-get install gcc binutils (and gcc-aarch64-linux-gnu for arm64)"
done
if [ "$arch" = arm64 ]; then
  old_size=${OLD_SIZE:-$(( 16#$(${cross}nm -S --defined-only "$xen" | awk '$4 == "xen_extra_version" { print $2 }' | head -n 1) ))}
else
  old_size=${OLD_SIZE:-12}
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xen-payload.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- the hypervisor's build-id note --------------------------------------------------------------------------
# `objcopy --only-section=.note` writes an empty file for Xen's ELF32 multiboot image, so the note is cut out
# by offset and size, from the first NOTE section that starts with a GNU build-id note.
hexbytes() { od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
le32() { local h; h=$(hexbytes "$1" "$2" 4); echo $((16#${h:6:2}${h:4:2}${h:2:2}${h:0:2})); }
note_off='' note_len='' buildid=''
while read -r off size; do
  off=$((16#$off)); size=$((16#$size))
  [ "$size" -ge 16 ] || continue
  namesz=$(le32 "$xen" "$off"); descsz=$(le32 "$xen" $((off + 4))); type=$(le32 "$xen" $((off + 8)))
  if [ "$namesz" = 4 ] && [ "$type" = 3 ] && [ "$(hexbytes "$xen" $((off + 12)) 4)" = 474e5500 ]; then   # "GNU\0", NT_GNU_BUILD_ID
    note_off=$off; note_len=$((16 + (descsz + 3) / 4 * 4))
    buildid=$(hexbytes "$xen" $((off + 16)) "$descsz")
    break
  fi
done < <(readelf -W -S "$xen" | sed 's/^ *\[ *[0-9]*\] *//' | awk '$2 == "NOTE" { print $4, $5 }')
[ -n "$buildid" ] || die "no GNU build-id note found in the sections of $xen"
dd if="$xen" of="$tmp/xen-note.bin" bs=1 skip="$note_off" count="$note_len" status=none
readelf -n "$xen" | grep -q "Build ID: $buildid" || die "the note cut out of $xen ($buildid) is not what readelf -n shows"
echo "$buildid" > "$out/xen-build-id"

# --- the payload ------------------------------------------------------------------------------------------------
src=$here/payloads/xen_hello_world.c
${cross}gcc "${cflags[@]}" -c "$src" -o "$tmp/pass1.o"
new_size=$(${cross}nm -S --defined-only "$tmp/pass1.o" | awk '$4 == "xen_hello_world" { print "0x" $2 }')
[ -n "$new_size" ] || die "cannot measure xen_hello_world in $tmp/pass1.o"
${cross}gcc "${cflags[@]}" -DNEW_SIZE="$new_size" -DOLD_SIZE="$old_size" -c "$src" -o "$tmp/xen_hello_world.o"

section_object() {   # BIN SECTION OBJ: an ELF64 object of the payload's machine whose only section SECTION holds BIN
  ${cross}objcopy -I binary -O "${bfd[0]}" -B "${bfd[1]}" \
    --rename-section ".data=$2,alloc,load,readonly,data,contents" -S "$1" "$3"
}
section_object "$tmp/xen-note.bin" .livepatch.depends "$tmp/depends.o"
section_object "$tmp/xen-note.bin" .livepatch.xen_depends "$tmp/xen_depends.o"
printf 'LIVEPATCH_RULEZ\0' > "$tmp/modinfo.bin"
section_object "$tmp/modinfo.bin" .modinfo "$tmp/modinfo.o"

payload=$out/xen_hello_world.livepatch
${cross}ld -r --build-id=sha1 -z noexecstack -o "$payload" \
  "$tmp/xen_hello_world.o" "$tmp/depends.o" "$tmp/xen_depends.o" "$tmp/modinfo.o"

funcs_size=$(readelf -W -S "$payload" | sed 's/^ *\[ *[0-9]*\] *//' | awk '$1 == ".livepatch.funcs" { print $5 }')
[ "$((16#${funcs_size:-0}))" = 104 ] || die ".livepatch.funcs of $payload is 0x${funcs_size:-?} bytes, not 104"
echo "build-hello-payload: $payload ($(stat -c %s "$payload") bytes, new_size $((new_size)), old_size $old_size) for Xen build-id $buildid"
