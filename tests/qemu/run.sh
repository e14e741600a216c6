#!/usr/bin/env bash
# Boots Debian's real Xen 4.17 hypervisor under QEMU (TCG software emulation, no KVM) with a Debian 12 PV
# dom0 running a busybox initramfs, runs a shell script inside dom0 and brings its output files back.
# With --arch arm64: upstream Xen 4.17.3 built for arm64 with live patching (tests/qemu-arm64/fetch.sh)
# under qemu-system-aarch64, with Debian 12's arm64 kernel, tools and busybox in dom0.
#
#   usage: tests/qemu/run.sh --script FILE --out OUTDIR [--files DIR] [--timeout SECONDS] [--smp N]
#                            [--memory MB] [--dom0-memory MB] [--cpu MODEL] [--cache DIR] [--xen IMAGE] [--keep]
#                            [--arch x86_64|arm64] [--share HOSTDIR[:GUESTDIR]]
#
#   --script FILE      shell script run in dom0 as `sh /work/run.sh`, in /work, with stdin from /dev/null.
#                      Its stdout+stderr go to the console and to /work/out/run.log, its exit code to
#                      /work/out/run.rc. Whatever it writes under /work/out comes back to OUTDIR.
#                      dom0 has busybox, Debian's xen-livepatch on PATH, /dev/xen/*, /proc/xen (xenfs),
#                      /sys/hypervisor, and DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 (there is no ICU).
#   --out OUTDIR       where the files of dom0's /work/out land (created if needed), plus serial.log:
#                      the whole serial console (Xen's "(XEN)" lines, the dom0 kernel and the script's
#                      output), with the file transfers replaced by one "[xen-qemu: ...]" line each.
#   --files DIR        copied (modes kept) to dom0's /work. The shared libraries of every dynamically
#                      linked ELF executable or .so in DIR are added to the initramfs (found with the
#                      host's ldd; on arm64 from the ELF's DT_NEEDED in Debian's arm64 packages), so
#                      programs built for dom0, e.g. a .NET NativeAOT binary, run there.
#   --timeout SECONDS  wall-clock limit of the QEMU run (default 300); a boot takes 10-20 s on an idle
#                      2-core machine (arm64: 3-5 s), twice that when the machine is busy.
#   --smp N            CPUs of the emulated machine, also dom0's vcpus (default 2; arm64: 1).
#   --memory MB        memory of the emulated machine (default 2048).
#   --dom0-memory MB   dom0's memory (default half of --memory, as in the team's reference recipe).
#   --cpu MODEL        QEMU CPU model (default qemu64, or $XEN_QEMU_CPU; arm64: cortex-a57). Not `max` on
#                      x86: with SMAP, the Debian dom0 crashes at its first instructions (`max,-smap` works).
#   --cache DIR        what fetch.sh downloaded (default <repo>/artifacts/qemu, or $XEN_QEMU_CACHE; arm64:
#                      <repo>/artifacts/qemu-arm64, or $XEN_QEMU_ARM64_CACHE); the architecture's fetch.sh
#                      runs first when DIR/READY is missing.
#   --arch ARCH        x86_64 (default) or arm64.
#   --xen IMAGE        boot this hypervisor instead of the cache's (x86: a Xen 4.17 build's xen/xen, the multiboot
#                      image; Debian's 4.17.7 dom0 tools speak to any 4.17; arm64: an Image).
#                      Upstream Xen 4.22.0 with the same Debian dom0: tests/qemu/build-xen.sh builds its xen/xen.
#   --keep             keep the temporary work directory (initramfs, raw console) and print its path.
#   --share HOSTDIR[:GUESTDIR]
#                      HOSTDIR (created if needed) is mounted read-write in dom0 at GUESTDIR (default /work/share)
#                      over virtio-9p before the script runs, and unmounted (synced) after it: what the
#                      script writes there is in HOSTDIR when run.sh returns, and a later boot given the same
#                      HOSTDIR finds it (a disk shared between boots). Files keep the owner dom0 gave them.
#                      x86_64 only.
#   Extra Xen / dom0 kernel command-line options: $XEN_QEMU_XEN_ARGS / $XEN_QEMU_DOM0_ARGS.
#
# Files the dom0 always returns: run.log, run.rc, build-id (hex), xensyms (the hypervisor's symbols; empty
# on arm64, where Linux has no /proc/xen/xensyms: tests/qemu-arm64/fetch.sh lists them from xen-syms).
# Exit status: 0 when the boot completed and every file came back intact, whatever the script's own exit
# code (read it from OUTDIR/run.rc); 1 when the boot failed (dom0 or Xen crash, corrupted transfer, ...);
# 2 for usage errors; 124 on timeout. Runs in separate OUTDIRs may go on at the same time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
say() { echo "xen-qemu: $*"; }
die() { echo "xen-qemu: error: $1" >&2; exit "${2:-1}"; }   # MESSAGE [STATUS]

files='' script='' out='' timeout=300 smp='' memory=2048 dom0_mb='' keep=0 arch=x86_64 cpu='' cache='' xen='' share='' share_at=/work/share
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files=${2:?--files needs a directory}; shift 2 ;;
    --script) script=${2:?--script needs a file}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --smp) smp=${2:?--smp needs a number}; shift 2 ;;
    --memory) memory=${2:?--memory needs megabytes}; shift 2 ;;
    --dom0-memory) dom0_mb=${2:?--dom0-memory needs megabytes}; shift 2 ;;
    --cpu) cpu=${2:?--cpu needs a model}; shift 2 ;;
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    --xen) xen=${2:?--xen needs a hypervisor image}; shift 2 ;;
    --keep) keep=1; shift ;;
    --share) share=${2:?--share needs a directory}; shift 2
             if [[ "$share" == *:* ]]; then share_at=${share#*:}; share=${share%%:*}; fi ;;
    --arch) arch=${2:?--arch needs x86_64 or arm64}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "xen-qemu: unknown argument '$1'" >&2; usage ;;
  esac
done
[ -n "$script" ] && [ -n "$out" ] || { echo "xen-qemu: --script and --out are required" >&2; usage; }
case "$arch" in
  x86_64|amd64|x64)
    arch=x86_64 fetch=$here/fetch.sh qemu_bin=qemu-system-x86_64 qemu_pkg=qemu-system-x86 triplet=x86_64-linux-gnu
    cpu=${cpu:-${XEN_QEMU_CPU:-qemu64}} smp=${smp:-2} cache=${cache:-${XEN_QEMU_CACHE:-$repo/artifacts/qemu}} ;;
  arm64|aarch64)
    arch=arm64 fetch=$repo/tests/qemu-arm64/fetch.sh qemu_bin=qemu-system-aarch64 qemu_pkg=qemu-system-arm triplet=aarch64-linux-gnu
    cpu=${cpu:-cortex-a57} smp=${smp:-1} cache=${cache:-${XEN_QEMU_ARM64_CACHE:-$repo/artifacts/qemu-arm64}} ;;
  *) die "unknown --arch '$arch' (x86_64 or arm64)" 2 ;;
esac
[ -f "$script" ] || die "script '$script' not found" 2
[ -z "$files" ] || [ -d "$files" ] || die "--files '$files' is not a directory" 2
[ -z "$xen" ] || [ -f "$xen" ] || die "--xen '$xen' is not a file" 2
if [ -n "$share" ]; then
  [ "$arch" = x86_64 ] || die "--share is for x86_64 boots (virtio-9p over PCI)" 2
  [[ "$share_at" == /* ]] || die "--share's guest directory must be absolute, not '$share_at'" 2
  mkdir -p "$share" || die "cannot create --share directory '$share'" 2
  share=$(cd "$share" && pwd)
  [[ "$share" != *[\ ,]* ]] || die "the --share directory '$share' must not contain spaces or commas" 2
fi
for n in "$timeout" "$smp" "$memory" ${dom0_mb:+"$dom0_mb"}; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive integer" 2
done
dom0_mb=${dom0_mb:-$((memory / 2))}
[ "$dom0_mb" -ge 256 ] && [ "$dom0_mb" -le $((memory - 128)) ] \
  || die "--dom0-memory must be at least 256 (MB) and leave 128 MB of --memory to Xen" 2

# --- the downloads ------------------------------------------------------------------------------------------
[ -f "$cache/READY" ] || "$fetch" "$cache" || die "$fetch failed: see its messages above"
cache=$(cd "$cache" && pwd)
kver=$(cat "$cache/kernel-version")
command -v "$qemu_bin" >/dev/null || die "$qemu_bin is missing: run $fetch as root, or apt-get install $qemu_pkg"
[ -x /bin/busybox ] || die "/bin/busybox is missing: run $fetch as root, or apt-get install busybox-static"
# QEMU's multiboot loader splits module arguments on spaces and commas.
[[ "$cache" != *[\ ,]* ]] || die "the cache path '$cache' must not contain spaces or commas" 2

work=$(mktemp -d "${TMPDIR:-/tmp}/xen-qemu.XXXXXX")
if [ "$keep" = 1 ]; then
  trap 'say "work directory kept: $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
[[ "$work" != *[\ ,]* ]] || die "the work directory '$work' must not contain spaces or commas (set TMPDIR)" 2
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/run.rc" "$out/run.log" "$out/build-id" "$out/xensyms" "$out/serial.log" "$out/serial.raw.log"

# --- the initramfs --------------------------------------------------------------------------------------------
I=$work/initramfs
mkdir -p "$I"/usr/{bin,sbin,lib,lib64} "$I"/{proc,sys,dev,tmp,run,etc/xen-qemu,work/out}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$I/$d"; done   # merged /usr, as on Debian 12
mkdir -p "$I/usr/lib/modules/xen-qemu"

# busybox and its applets (the arm64 one from Debian's busybox-static has the host's applets: same package)
if [ "$arch" = arm64 ]; then cp "$cache/root/bin/busybox" "$I/usr/bin/busybox"; else cp /bin/busybox "$I/usr/bin/busybox"; fi
for a in $(/bin/busybox --list-full); do
  [ -e "$I/$a" ] || [ -L "$I/$a" ] || ln -s /usr/bin/busybox "$I/$a"
done

# Copies the shared libraries FILE needs (host ldd, LD_LIBRARY_PATH=$2) to the same paths in the initramfs.
# Libraries found under $cache/root (the extracted Xen packages) go to their path inside the package.
# Returns 3 when FILE is not dynamically linked, 1 (after listing them) when libraries are missing.
copy_libs() {
  [ "$arch" = arm64 ] && { copy_foreign_libs "$@"; return; }
  local file=$1 libpath=${2:-} skip=${3:-} listing lib dst
  if ! listing=$(LD_LIBRARY_PATH=$libpath ldd "$file" 2>&1); then
    [[ "$listing" == *"not a dynamic executable"* ]] && return 3
    echo "$listing" >&2
    return 1
  fi
  if grep 'not found' <<<"$listing" >&2; then
    return 1
  fi
  for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$listing"); do
    [ -n "$skip" ] && [[ "$(readlink -f "$lib")" == "$skip"/* ]] && continue   # shipped in DIR itself
    dst=${lib#"$cache/root"}
    [ -e "$I$dst" ] && continue
    mkdir -p "$(dirname "$I$dst")"
    cp -L "$lib" "$I$dst"
  done
}

# The same for an ELF of another machine (arm64): no ldd runs it, so its DT_NEEDED entries (and theirs) and
# its interpreter are looked up in the libraries Debian's arm64 packages hold under $cache/root.
copy_foreign_libs() {
  local file=$1 skip=${3:-} todo n p d seen=' ' interp
  local dirs=("$cache/root/usr/lib/$triplet" "$cache/root/lib/$triplet" "$cache/root/usr/lib" "$cache/root/lib")
  [ -z "$skip" ] || dirs=("$skip" "${dirs[@]}")
  interp=$(readelf -W -l "$file" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  [ -n "$interp" ] || return 3
  [ -e "$I$interp" ] || { mkdir -p "$(dirname "$I$interp")"; cp -L "$cache/root$interp" "$I$interp" || return 1; }
  todo=("$file")
  while [ ${#todo[@]} -gt 0 ]; do
    for n in $(readelf -W -d "${todo[0]}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [[ "$seen" == *" $n "* ]] && continue
      seen+="$n "
      p=''
      for d in "${dirs[@]}"; do [ -e "$d/$n" ] && { p=$d/$n; break; }; done
      [ -n "$p" ] || { echo "library $n (needed by ${todo[0]##*/}) is in none of: ${dirs[*]}" >&2; return 1; }
      todo+=("$p")
      [ -n "$skip" ] && [[ "$p" == "$skip"/* ]] && continue   # shipped in DIR itself
      mkdir -p "$I/usr/lib/$triplet"
      [ -e "$I/usr/lib/$triplet/$n" ] || cp -L "$p" "$I/usr/lib/$triplet/$n"
    done
    todo=("${todo[@]:1}")
  done
}

# Debian's xen-livepatch and its libraries (on x86, libc and ld-linux come from the host, the same Debian 12)
cp "$cache/root/usr/lib/xen-4.17/bin/xen-livepatch" "$I/usr/sbin/xen-livepatch"
copy_libs "$I/usr/sbin/xen-livepatch" "$cache/root/usr/lib/$triplet" \
  || die "cannot resolve the libraries of Debian's xen-livepatch (see above); delete $cache/READY and run tests/qemu/fetch.sh"

# the Xen kernel modules, dependencies first (from each module's modinfo "depends=")
kdir=$cache/root/lib/modules/$kver/kernel
modules=()
add_module() {
  local m=$1 ko dep
  for dep in "${modules[@]}"; do [ "${dep//_/-}" = "${m//_/-}" ] && return 0; done   # - and _ are equivalent
  ko=$(find "$kdir" \( -name "$m.ko" -o -name "${m//-/_}.ko" -o -name "${m//_/-}.ko" \) -print -quit)
  [ -n "$ko" ] || die "kernel module $m.ko not found under $kdir"
  for dep in $(tr '\0' '\n' < "$ko" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dep"; done
  modules+=("$m")
  cp "$ko" "$I/usr/lib/modules/xen-qemu/$m.ko"
}
for m in xen-privcmd xen-evtchn xen-gntdev xen-gntalloc xenfs; do add_module "$m"; done
# virtio-9p for --share: the PCI transport, the 9p client and file system (netfs and fscache come as dependencies).
if [ -n "$share" ]; then
  for m in virtio_pci 9pnet_virtio 9p; do add_module "$m"; done
  echo "$share_at" > "$I/etc/xen-qemu/share"
fi
printf '%s\n' "${modules[@]}" > "$I/etc/xen-qemu/modules"

# the caller's files and script; libraries of the ELF programs among the files
if [ -n "$files" ]; then
  files=$(cd "$files" && pwd)
  cp -a "$files/." "$I/work/"
  [ -e "$files/run.sh" ] && say "warning: $files/run.sh is replaced by the script"
  while IFS= read -r -d '' f; do
    [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || continue   # ELF magic
    [ -x "$f" ] || [[ "$f" == *.so || "$f" == *.so.* ]] || continue
    rc=0
    copy_libs "$f" "" "$files" || rc=$?
    case $rc in
      0) say "libraries of ${f#"$files"/} added" ;;
      3) ;;   # static or not a program of this machine
      *) die "cannot resolve the shared libraries of ${f#"$files"/} (see above)" ;;
    esac
  done < <(find "$files" -type f -print0)
fi
cp "$script" "$I/work/run.sh"
cp "$here/init.sh" "$I/init"
chmod 755 "$I/init" "$I/work/run.sh"
token=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
echo "$token" > "$I/etc/xen-qemu/token"

(cd "$I" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) > "$work/initrd"

# --- boot -------------------------------------------------------------------------------------------------------
# Without Xen's "noreboot", a crashed dom0 or a Xen panic reboots the machine, which ends QEMU (-no-reboot);
# panic=1 does the same for a dom0 kernel panic.
common_xen_args="dom0_mem=${dom0_mb}M,max:${dom0_mb}M dom0_max_vcpus=$smp loglvl=all guest_loglvl=all bootscrub=0 ${XEN_QEMU_XEN_ARGS:-}"
if [ "$arch" = arm64 ]; then
  # xen is an arm64 Image: QEMU starts it at EL2 with the device tree in x0. guest-loader adds the dom0 kernel and
  # initramfs to the device tree as multiboot modules. QEMU puts the device tree at RAM base + 128 MiB
  # (0x48000000) and nothing may be loaded there: the kernel (about 32 MiB) goes above it at 0x49000000, the
  # initramfs at 0x4c000000.
  xen_args="console=dtuart dtuart=/pl011@9000000 $common_xen_args"
  dom0_args="console=hvc0 earlycon=xenboot loglevel=7 panic=1 rdinit=/init ${XEN_QEMU_DOM0_ARGS:-}"
  [[ "$dom0_args" != *,* ]] || die "dom0 kernel arguments must not contain commas (QEMU's -device option separator)" 2
  qemu=(qemu-system-aarch64 -machine virt,virtualization=on,gic-version=3,accel=tcg -cpu "$cpu" -smp "$smp" -m "$memory"
        -nographic -no-reboot -monitor none -serial stdio -nic none
        -kernel "${xen:-$cache/xen}" -append "$xen_args"
        -device "guest-loader,addr=0x49000000,kernel=$cache/vmlinuz,bootargs=$dom0_args"
        -device "guest-loader,addr=0x4c000000,initrd=$work/initrd")
else
  xen_args="console=com1 com1=115200 $common_xen_args"
  dom0_args="console=hvc0 earlyprintk=xen loglevel=7 panic=1 ${XEN_QEMU_DOM0_ARGS:-}"
  [[ "$dom0_args" != *,* ]] || die "dom0 kernel arguments must not contain commas (QEMU's multiboot module separator)" 2
  qemu=(qemu-system-x86_64 -machine q35,accel=tcg -cpu "$cpu" -smp "$smp" -m "$memory"
        -nographic -no-reboot -monitor none -serial stdio -nic none
        -kernel "${xen:-$cache/xen}" -append "$xen_args"
        -initrd "$cache/vmlinuz $dom0_args,$work/initrd")
  if [ -n "$share" ]; then
    qemu+=(-virtfs "local,path=$share,mount_tag=xenqemushare,security_model=passthrough,id=xenqemushare")
  fi
fi
printf '%q ' "${qemu[@]}" > "$work/qemu.cmd"; echo >> "$work/qemu.cmd"
say "booting $arch Xen ${xen:-$(sed -n '/^xen: /{s/^xen: [^=]*=//;s/ .*//;p}' "$cache/READY")} with dom0 kernel $kver (cpu $cpu, smp $smp, ${memory} MB, dom0 ${dom0_mb} MB, timeout ${timeout}s)"
start=$(date +%s%N)
rc=0
# At a lower priority: an emulated boot only takes longer when the host is busy, while the tests running beside
# it (the sandbox's vCPU threads in a rendezvous) have deadlines.
timeout --kill-after=10 "$timeout" nice -n 10 "${qemu[@]}" < /dev/null > "$work/serial.raw" 2> "$work/qemu.err" || rc=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
elapsed=$(printf '%d.%d' $((elapsed / 1000)) $((elapsed % 1000 / 100)))

# --- the console: files out, the rest into serial.log -------------------------------------------------------------
blocks=$work/blocks
mkdir -p "$blocks"
: > "$blocks/manifest"
awk -v tok="$token" -v dir="$blocks" -v logf="$out/serial.log" '
  { gsub(/\r/, "") }
  inblk && $1 == "@@XQ-END" && $2 == tok {
    printf "%d\t%s\t%s\t%s\n", n, $3, $4, name > (dir "/manifest")
    print "[xen-qemu: file " name " (" $3 " bytes) transferred]" > logf
    close(blk); inblk = 0; next
  }
  inblk && /^[A-Za-z0-9+\/=]+$/ { print > blk; next }
  $1 == "@@XQ-BEGIN" && $2 == tok {
    if (inblk) close(blk)
    name = $0; sub(/^@@XQ-BEGIN [^ ]+ /, "", name)
    n++; blk = dir "/" n ".b64"; printf "" > blk; inblk = 1; next
  }
  $1 == "@@XQ-DONE" && $2 == tok { print $3 > (dir "/done"); print "[xen-qemu: " $3 " files transferred]" > logf; next }
  { print > logf }
' "$work/serial.raw"

fail() {   # REASON: explain, show the end of the console, exit
  local status=$1; shift
  cp "$work/serial.raw" "$out/serial.raw.log"
  {
    echo "xen-qemu: error: $*"
    echo "xen-qemu: QEMU exited with $rc after ${elapsed}s; command: $(cat "$work/qemu.cmd")"
    [ -s "$work/qemu.err" ] && { echo "xen-qemu: QEMU stderr:"; sed 's/^/  /' "$work/qemu.err"; }
    echo "xen-qemu: last console lines (full console in $out/serial.log):"
    grep -av '^$' "$out/serial.log" | tail -n 40 | sed 's/^/  | /'
  } >&2
  exit "$status"
}
crash=$(grep -a -m 3 -E 'Hardware Dom0 crashed|Domain 0 crashed|Panic on CPU|Kernel panic - not syncing|Attempted to kill init' "$out/serial.log" || true)
if [ ! -f "$blocks/done" ]; then
  if [ -n "$crash" ]; then
    hint=''
    [[ "$cpu" == max* && "$cpu" != *-smap* ]] && hint=" (with -cpu $cpu, SMAP makes the PV dom0 crash: use qemu64 or max,-smap)"
    fail 1 "the boot failed: $(echo "$crash" | paste -sd'|' | sed 's/|/ | /g')$hint"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    fail 124 "timed out after ${timeout}s (the script may hang; --timeout SECONDS raises the limit)"
  else
    fail 1 "dom0 did not finish: QEMU exited with $rc before the files came back"
  fi
fi

# --- decode and verify every file ---------------------------------------------------------------------------------
mkdir -p "$work/out"
count=0
while IFS=$'\t' read -r n size sum name; do
  case "/$name/" in
    *'/../'*|*'/./'*|//) fail 1 "dom0 sent a file with an unsafe name: '$name'" ;;
  esac
  [[ "$name" != /* ]] || fail 1 "dom0 sent a file with an absolute name: '$name'"
  dst=$work/out/$name
  mkdir -p "$(dirname "$dst")"
  base64 -d "$blocks/$n.b64" 2>/dev/null | gzip -dc > "$dst" 2>/dev/null \
    || fail 1 "the transfer of '$name' is corrupted (base64/gzip); raw console in $out/serial.raw.log"
  got_size=$(stat -c %s "$dst")
  got_sum=$(md5sum < "$dst"); got_sum=${got_sum%% *}
  [ "$got_size" = "$size" ] && [ "$got_sum" = "$sum" ] \
    || fail 1 "the transfer of '$name' is corrupted: $got_size bytes md5 $got_sum, dom0 sent $size bytes md5 $sum"
  count=$((count + 1))
done < "$blocks/manifest"
[ "$count" = "$(cat "$blocks/done")" ] \
  || fail 1 "dom0 sent $(cat "$blocks/done") files but $count came back intact; raw console in $out/serial.raw.log"
for f in run.rc run.log build-id xensyms; do
  [ -f "$work/out/$f" ] || fail 1 "dom0 did not return $f"
done
cp -a "$work/out/." "$out/"
[ -n "$crash" ] && say "warning: the console reports a crash after the files came back: $crash"

say "boot finished in ${elapsed}s: script exit code $(cat "$out/run.rc"), $count files in $out"
