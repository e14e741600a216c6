#!/bin/sh
# /init of the dom0 initramfs that tests/qemu/run.sh builds (busybox sh, PID 1 of the PV dom0).
#
#   1. mounts proc, sysfs, devtmpfs; loads the Xen kernel modules listed in /etc/xen-qemu/modules (in that
#      order, dependencies first); mounts xenfs on /proc/xen;
#   2. writes /work/out/xensyms (copy of /proc/xen/xensyms; empty on arm, which has none) and
#      /work/out/build-id (the hypervisor's build-id in hex, from /sys/hypervisor/properties/buildid);
#   3. mounts run.sh --share's directory (virtio-9p) where /etc/xen-qemu/share says, when it exists; runs
#      `sh /work/run.sh` (the caller's script) in /work with stdin from /dev/null, its stdout and stderr
#      tee'd to the console and to /work/out/run.log; its exit code goes to /work/out/run.rc; unmounts the share;
#   4. streams every file under /work/out back over the console, each one as
#         @@XQ-BEGIN <token> <name>
#         <gzip'ed content, base64, 76 columns>
#         @@XQ-END <token> <size> <md5> <name>
#      followed by `@@XQ-DONE <token> <file count>` (the token, a random string run.sh puts in
#      /etc/xen-qemu/token, keeps the script's own output from being taken for a marker);
#   5. powers off (poweroff -f): Xen then switches the machine off and QEMU exits.
#
# PID 1 must never exit (the kernel would panic), so nothing here stops on errors: they are logged as
# "xen-qemu: ..." lines and the run goes on, and the end is always the power-off.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/work TERM=dumb
# .NET programs (e.g. NativeAOT builds of our CLI) find no ICU here: make them use invariant globalization.
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1

conf=/etc/xen-qemu
token=$(cat "$conf/token")
log() { echo "xen-qemu: $*"; }

power_off() {
  sync
  poweroff -f
  sleep 10
  log "poweroff -f failed; halting here"
  while :; do sleep 3600; done
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
log "dom0 userland up: Linux $(uname -r), $(grep -c '^processor' /proc/cpuinfo) vcpu(s), $(awk '/MemTotal/{print $2" "$3}' /proc/meminfo)"

while read -r m; do
  [ -n "$m" ] || continue
  insmod "/lib/modules/xen-qemu/$m.ko" || log "insmod $m FAILED"
done < "$conf/modules"
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen || log "mount -t xenfs xenfs /proc/xen FAILED"

mkdir -p /work/out
if [ -e /proc/xen/xensyms ]; then   # x86 only: Linux lists no hypervisor symbols on arm
  cat /proc/xen/xensyms > /work/out/xensyms || log "cannot read /proc/xen/xensyms"
else
  : > /work/out/xensyms
fi
od -An -tx1 /sys/hypervisor/properties/buildid | tr -d ' \n' > /work/out/build-id \
  || log "cannot read /sys/hypervisor/properties/buildid"
log "hypervisor: $(cat /sys/hypervisor/type) $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra), build-id $(cat /work/out/build-id)"

# run.sh --share: the host directory over virtio-9p, where the caller asked.
share=''
if [ -f "$conf/share" ]; then
  share=$(cat "$conf/share")
  mkdir -p "$share"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 xenqemushare "$share" || log "mount of the shared directory on $share FAILED"
fi

log "running /work/run.sh"
cd /work
{ sh /work/run.sh </dev/null; echo $? > /work/out/run.rc; } 2>&1 | tee /work/out/run.log
log "/work/run.sh exited with $(cat /work/out/run.rc)"
if [ -n "$share" ]; then
  cd /
  sync
  umount "$share" || log "umount $share FAILED"
fi

# Keep kernel messages off the console while the files go out (Xen's own lines may still appear; run.sh
# verifies every file's size and md5).
echo 1 > /proc/sys/kernel/printk
cd /work/out
find . -type f | sed 's|^\./||' | sort > /tmp/xen-qemu-files
n=0
while IFS= read -r f; do
  size=$(wc -c < "$f")
  sum=$(md5sum < "$f")
  echo "@@XQ-BEGIN $token $f"
  gzip -c < "$f" | base64
  echo "@@XQ-END $token $size ${sum%% *} $f"
  n=$((n + 1))
done < /tmp/xen-qemu-files
echo "@@XQ-DONE $token $n"
power_off
