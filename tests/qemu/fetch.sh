#!/usr/bin/env bash
# Fetches what tests/qemu/run.sh needs to boot Debian's real Xen 4.17 hypervisor under QEMU (TCG, no KVM)
# with a Debian 12 PV dom0, without installing any of it on the host:
#   * installs qemu-system-x86 and busybox-static with apt-get when they are missing (needs root);
#   * apt-get downloads (never installs) xen-hypervisor-4.17-amd64, the current Debian 12 kernel image
#     (the one linux-image-amd64 depends on), xen-utils-4.17 and the libraries its xen-livepatch needs,
#     and unpacks them with dpkg -x into CACHE/root;
#   * gunzips the hypervisor into CACHE/xen and writes CACHE/READY when everything is in place.
#
#   usage: tests/qemu/fetch.sh [CACHE]        (CACHE defaults to <repo>/artifacts/qemu, or $XEN_QEMU_CACHE)
#
# Idempotent: when CACHE/READY exists it only says so. Delete CACHE (or CACHE/READY) to fetch again, for
# example to pick up a newer kernel. Safe to run concurrently: the second run waits for the first (flock).
#
# CACHE layout after a successful run:
#   debs/*.deb          the downloaded packages          root/            everything dpkg -x'ed
#   xen.gz, xen         the hypervisor (multiboot ELF32)  vmlinuz          the dom0 kernel
#   kernel-version      e.g. 6.1.0-56-amd64               build-id         the hypervisor's build-id (hex)
#   versions            package=version of every .deb     READY            written last
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-${XEN_QEMU_CACHE:-$repo/artifacts/qemu}}

say() { echo "xen-qemu fetch: $*"; }
die() { echo "xen-qemu fetch: error: $*" >&2; exit 1; }

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
if [ -f "$cache/READY" ]; then
  say "ready ($cache)"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: this harness needs a Debian 12 (bookworm) host"
is_root() { [ "$(id -u)" = 0 ]; }

# --- 1. host tools: QEMU and a static busybox (the dom0 userland) -------------------------------------------
host_pkgs=()
command -v qemu-system-x86_64 >/dev/null || host_pkgs+=(qemu-system-x86)
[ -x /bin/busybox ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' \
  || host_pkgs+=(busybox-static)
if [ ${#host_pkgs[@]} -gt 0 ]; then
  if ! is_root; then
    die "missing host packages: ${host_pkgs[*]}. Install them as root:
    apt-get update && apt-get install -y --no-install-recommends ${host_pkgs[*]}"
  fi
  say "installing ${host_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${host_pkgs[@]}" >/dev/null; then
    say "apt-get install failed; running apt-get update once and retrying"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${host_pkgs[@]}" >/dev/null \
      || die "apt-get install ${host_pkgs[*]} failed"
  fi
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is still missing after installing qemu-system-x86"
[ -x /bin/busybox ] || die "/bin/busybox is still missing after installing busybox-static"

# --- 2. one fetch at a time per cache ------------------------------------------------------------------------
exec 9>"$cache/.lock"
flock 9
if [ -f "$cache/READY" ]; then   # another run finished while we waited
  say "ready ($cache)"
  exit 0
fi

# --- 3. download the packages (apt-get download: nothing is installed) ------------------------------------------
xen_pkgs=(xen-hypervisor-4.17-amd64 xen-utils-4.17
          libxenmisc4.17 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4
          libxentoollog1 libyajl2 libxendevicemodel1 libxentoolcore1 libxenhypfs1)

# The kernel package linux-image-amd64 currently depends on, e.g. linux-image-6.1.0-56-amd64.
resolve_kernel() {
  apt-cache depends linux-image-amd64 2>/dev/null \
    | awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

mkdir -p "$cache/debs"
download() {   # download every package that has no .deb yet; returns non-zero on any failure
  local kpkg pkg missing=()
  kpkg=$(resolve_kernel)
  if [ -z "$kpkg" ]; then
    echo "cannot resolve the kernel package: 'apt-cache depends linux-image-amd64' names no linux-image-<version>" >&2
    return 1
  fi
  echo "$kpkg" > "$cache/.kernel-package"
  for pkg in "${xen_pkgs[@]}" "$kpkg"; do
    compgen -G "$cache/debs/${pkg}_*.deb" >/dev/null || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "downloading ${missing[*]}"
  (cd "$cache/debs" && apt-get download "${missing[@]}")
}
if ! download 2>"$cache/.apt.err"; then
  # A fresh machine may have no package lists yet, or stale ones naming packages the archive dropped.
  if ! is_root; then
    cat "$cache/.apt.err" >&2
    die "apt-get download failed. The package lists may be missing or stale: run 'apt-get update' as root, then retry"
  fi
  say "package look-up or download failed ($(tail -n 1 "$cache/.apt.err")); running apt-get update once and retrying"
  apt-get update -qq
  download 2>"$cache/.apt.err" || { cat "$cache/.apt.err" >&2; die "apt-get download failed (see above)"; }
fi
kpkg=$(cat "$cache/.kernel-package")
say "kernel package: $kpkg"

# --- 4. unpack (dpkg -x) into a fresh root, then swap it in ------------------------------------------------------
want_debs=()
for pkg in "${xen_pkgs[@]}" "$kpkg"; do
  deb=$(ls -1 "$cache/debs/${pkg}"_*.deb | sort -V | tail -n 1)
  want_debs+=("$deb")
done
rm -rf "$cache/root.new"
mkdir -p "$cache/root.new"
: > "$cache/versions.new"
for deb in "${want_debs[@]}"; do
  say "unpacking $(basename "$deb")"
  dpkg -x "$deb" "$cache/root.new"
  dpkg-deb -W --showformat='${Package}=${Version}\n' "$deb" >> "$cache/versions.new"
done
rm -rf "$cache/root"
mv "$cache/root.new" "$cache/root"
mv "$cache/versions.new" "$cache/versions"

# --- 5. hypervisor, kernel, sanity checks ---------------------------------------------------------------------
xen_gz="$cache/root/boot/xen-4.17-amd64.gz"
[ -f "$xen_gz" ] || die "xen-hypervisor-4.17-amd64 did not contain /boot/xen-4.17-amd64.gz"
cp "$xen_gz" "$cache/xen.gz"
gzip -dc "$cache/xen.gz" > "$cache/xen.new"
mv "$cache/xen.new" "$cache/xen"

kver=${kpkg#linux-image-}
[ -f "$cache/root/boot/vmlinuz-$kver" ] || die "$kpkg did not contain /boot/vmlinuz-$kver"
ln -sfn "root/boot/vmlinuz-$kver" "$cache/vmlinuz"
echo "$kver" > "$cache/kernel-version"

moddir="$cache/root/lib/modules/$kver/kernel/drivers/xen"
for m in xen-privcmd xen-evtchn xen-gntdev xen-gntalloc xenfs/xenfs; do
  [ -f "$moddir/$m.ko" ] || die "kernel module $m.ko not found under $moddir"
done

tool="$cache/root/usr/lib/xen-4.17/bin/xen-livepatch"
[ -x "$tool" ] || die "xen-utils-4.17 did not contain /usr/lib/xen-4.17/bin/xen-livepatch"
if LD_LIBRARY_PATH="$cache/root/usr/lib/x86_64-linux-gnu" ldd "$tool" | grep 'not found' >&2; then
  die "libraries of xen-livepatch are missing (above): add their packages to xen_pkgs in $0"
fi

buildid=$(readelf -n "$cache/xen" 2>/dev/null | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p' | head -n 1)
[ -n "$buildid" ] || die "no GNU build-id note in $cache/xen"
echo "$buildid" > "$cache/build-id"

rm -f "$cache/.apt.err" "$cache/.kernel-package"
{
  echo "xen: $(grep '^xen-hypervisor' "$cache/versions")"
  echo "kernel: $kver ($(grep "^$kpkg=" "$cache/versions"))"
  echo "build-id: $buildid"
} > "$cache/READY"
say "ready ($cache)"; sed "s/^/  /" "$cache/READY"
