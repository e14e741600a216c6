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
#   usage: tests/qemu/build-hello-payload.sh OUTDIR [XEN_IMAGE]
#
# XEN_IMAGE defaults to CACHE/xen, the Debian hypervisor that tests/qemu/fetch.sh unpacks (CACHE is
# <repo>/artifacts/qemu or $XEN_QEMU_CACHE; fetch.sh runs first when CACHE/READY is missing).
# OLD_SIZE=N in the environment overrides how many bytes of xen_extra_version may be patched (default 12,
# the function's size in Debian's 4.17.7 image; Xen needs at least 5, 9 when the function starts with ENDBR64).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "build-hello-payload: error: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
out=$1
cache=${XEN_QEMU_CACHE:-$repo/artifacts/qemu}
if [ $# -eq 2 ]; then
  xen=$2
else
  [ -f "$cache/READY" ] || "$here/fetch.sh" "$cache" >&2 || die "fetch.sh failed: see its messages above"
  xen=$cache/xen
fi
[ -f "$xen" ] || die "hypervisor image '$xen' not found"
for t in gcc objcopy ld nm readelf od; do
  command -v "$t" >/dev/null || die "$t is missing: apt-get install gcc binutils"
done
old_size=${OLD_SIZE:-12}

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
cflags=(-O2 -fpic -mno-red-zone -fno-asynchronous-unwind-tables -fno-stack-protector -fcf-protection=none
        -ffunction-sections -Wall -Werror)
src=$here/payloads/xen_hello_world.c
gcc "${cflags[@]}" -c "$src" -o "$tmp/pass1.o"
new_size=$(nm -S --defined-only "$tmp/pass1.o" | awk '$4 == "xen_hello_world" { print "0x" $2 }')
[ -n "$new_size" ] || die "cannot measure xen_hello_world in $tmp/pass1.o"
gcc "${cflags[@]}" -DNEW_SIZE="$new_size" -DOLD_SIZE="$old_size" -c "$src" -o "$tmp/xen_hello_world.o"

section_object() {   # BIN SECTION OBJ: an ELF64 x86-64 object whose only section SECTION holds BIN
  objcopy -I binary -O elf64-x86-64 -B i386:x86-64 \
    --rename-section ".data=$2,alloc,load,readonly,data,contents" -S "$1" "$3"
}
section_object "$tmp/xen-note.bin" .livepatch.depends "$tmp/depends.o"
section_object "$tmp/xen-note.bin" .livepatch.xen_depends "$tmp/xen_depends.o"
printf 'LIVEPATCH_RULEZ\0' > "$tmp/modinfo.bin"
section_object "$tmp/modinfo.bin" .modinfo "$tmp/modinfo.o"

payload=$out/xen_hello_world.livepatch
ld -r --build-id=sha1 -z noexecstack -o "$payload" \
  "$tmp/xen_hello_world.o" "$tmp/depends.o" "$tmp/xen_depends.o" "$tmp/modinfo.o"

funcs_size=$(readelf -W -S "$payload" | sed 's/^ *\[ *[0-9]*\] *//' | awk '$1 == ".livepatch.funcs" { print $5 }')
[ "$((16#${funcs_size:-0}))" = 104 ] || die ".livepatch.funcs of $payload is 0x${funcs_size:-?} bytes, not 104"
echo "build-hello-payload: $payload ($(stat -c %s "$payload") bytes, new_size $((new_size)), old_size $old_size) for Xen build-id $buildid"
