#!/usr/bin/env bash
# Prepares what `tests/qemu/run.sh --arch arm64` needs to boot a real arm64 Xen 4.17 with live patching under
# QEMU (TCG, no KVM) with a Debian 12 arm64 dom0, without installing any of the arm64 parts on the host:
#   * installs qemu-system-arm, busybox-static, gcc-aarch64-linux-gnu (+binutils), make, flex, bison and
#     python3 with apt-get when they are missing (needs root);
#   * builds upstream Xen 4.17.3 for arm64 from its release tarball with CONFIG_LIVEPATCH=y (Debian's arm64
#     hypervisor is built without it), with the build stamps pinned so that the build-id is the same on
#     every machine with Debian 12's cross compiler; keeps the image (CACHE/xen) and its symbols
#     (CACHE/xen-syms);
#   * apt-get downloads (never installs) Debian's arm64 kernel (the one linux-image-arm64 depends on),
#     xen-utils-4.17 with the libraries its xen-livepatch needs, libc6 and busybox-static, through a private
#     package list (the host's apt configuration is not changed), and unpacks them with dpkg -x into CACHE/root;
#   * writes CACHE/READY when everything is in place.
#
#   usage: tests/qemu-arm64/fetch.sh [CACHE]   (CACHE defaults to <repo>/artifacts/qemu-arm64, or $XEN_QEMU_ARM64_CACHE)
#
# The Xen tarball: $XEN_TARBALL, else xen-4.17.3.tar.xz in the project's shared sources (tests/xen-src-dir.sh:
# shared/xen-src above the checkout or above the repository it was cloned from). Idempotent; delete CACHE (or CACHE/READY) to start over.
# Safe to run concurrently: the second run waits for the first (flock).
#
# CACHE layout after a successful run:
#   xen                the hypervisor (an arm64 Image QEMU boots at EL2)   xen-syms     its ELF with symbols
#   build-id           its build-id (hex)                                 xen-config   the .config it was built with
#   xensyms            its symbols as /proc/xen/xensyms lists them on x86 ("address type name"; arm has no such file)
#   vmlinuz            the dom0 kernel                                     kernel-version  e.g. 6.1.0-57-arm64
#   root/              every package dpkg -x'ed                           versions     package=version of every .deb
#   build/             the Xen source tree it was built in                 READY        written last
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-${XEN_QEMU_ARM64_CACHE:-$repo/artifacts/qemu-arm64}}
xen_version=4.17.3

say() { echo "xen-qemu-arm64 fetch: $*"; }
die() { echo "xen-qemu-arm64 fetch: error: $*" >&2; exit 1; }

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
if [ -f "$cache/READY" ]; then
  say "ready ($cache)"
  exit 0
fi
command -v apt-get >/dev/null || die "apt-get not found: this harness needs a Debian 12 (bookworm) host"
is_root() { [ "$(id -u)" = 0 ]; }

# --- 1. host tools ----------------------------------------------------------------------------------------------
host_pkgs=()
need() { command -v "$1" >/dev/null || host_pkgs+=("$2"); }
need qemu-system-aarch64 qemu-system-arm
need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
need aarch64-linux-gnu-ld binutils-aarch64-linux-gnu
need make make
need flex flex
need bison bison
need python3 python3
need xz xz-utils
[ -x /bin/busybox ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' \
  || host_pkgs+=(busybox-static)
if [ ${#host_pkgs[@]} -gt 0 ]; then
  is_root || die "missing host packages: ${host_pkgs[*]}. Install them as root:
    apt-get update && apt-get install -y --no-install-recommends ${host_pkgs[*]}"
  say "installing ${host_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${host_pkgs[@]}" >/dev/null; then
    say "apt-get install failed; running apt-get update once and retrying"
    apt-get update -qq
    apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${host_pkgs[@]}" >/dev/null || die "apt-get install ${host_pkgs[*]} failed"
  fi
fi

exec 9>"$cache/.lock"
flock 9
if [ -f "$cache/READY" ]; then
  say "ready ($cache)"
  exit 0
fi

# --- 2. the hypervisor --------------------------------------------------------------------------------------------
tarball=${XEN_TARBALL:-}
if [ -z "$tarball" ]; then
  if src=$("$repo/tests/xen-src-dir.sh"); then tarball=$src/xen-$xen_version.tar.xz; fi
fi
[ -n "$tarball" ] && [ -f "$tarball" ] \
  || die "xen-$xen_version.tar.xz not found (tests/xen-src-dir.sh looks for shared/xen-src above the checkout and its origin): set XEN_TARBALL or XLP_XEN_SRC"
if [ ! -f "$cache/xen-syms" ]; then
  src=$cache/build/xen-$xen_version
  rm -rf "$cache/build"
  mkdir -p "$cache/build"
  say "unpacking $(basename "$tarball")"
  tar -C "$cache/build" -xf "$tarball"
  mk=(make -C "$src/xen" XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
  # Xen writes the date, time, host, user and domain of the build into the image, and so into its build-id:
  # pinned, two builds of the same tree with the same compiler get the same build-id (payloads load only on
  # the build they were made for).
  export XEN_BUILD_DATE="Thu Jan  1 00:00:00 UTC 2026" XEN_BUILD_TIME="00:00:00" XEN_BUILD_HOST="xen-qemu-arm64" \
         XEN_WHOAMI="ci" XEN_DOMAIN="example.invalid"
  "${mk[@]}" -s defconfig >/dev/null
  # LIVEPATCH defaults to y on x86 only.
  sed -i 's/^# CONFIG_LIVEPATCH is not set$/CONFIG_LIVEPATCH=y/' "$src/xen/.config"
  "${mk[@]}" -s olddefconfig >/dev/null
  grep -q '^CONFIG_LIVEPATCH=y' "$src/xen/.config" || die "CONFIG_LIVEPATCH=y did not stick in $src/xen/.config"
  say "building Xen $xen_version for arm64 with CONFIG_LIVEPATCH=y (about a minute on 2 cores)"
  t0=$(date +%s)
  "${mk[@]}" -j"$(nproc)" >"$cache/build/make.log" 2>&1 || { tail -n 30 "$cache/build/make.log" >&2; die "the Xen build failed (log: $cache/build/make.log)"; }
  say "built in $(( $(date +%s) - t0 )) s"
  cp "$src/xen/.config" "$cache/xen-config"
  cp "$src/xen/xen" "$cache/xen.new" && mv "$cache/xen.new" "$cache/xen"
  cp "$src/xen/xen-syms" "$cache/xen-syms.new" && mv "$cache/xen-syms.new" "$cache/xen-syms"
fi
buildid=$(aarch64-linux-gnu-readelf -n "$cache/xen-syms" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p' | head -n 1)
[ -n "$buildid" ] || die "no GNU build-id note in $cache/xen-syms"
echo "$buildid" > "$cache/build-id"
# The symbols Xen resolves payload names against, in the x86 /proc/xen/xensyms format.
aarch64-linux-gnu-nm --defined-only "$cache/xen-syms" | awk 'NF == 3' > "$cache/xensyms"

# --- 3. the dom0's packages (a private package list: the host's apt state and sources are not changed) --------------
lists=$cache/apt-lists
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
apt_opts=(-o "Dir::State::Lists=$lists" -o "Dir::Cache=$cache/apt-cache" -o APT::Architectures::=amd64 -o APT::Architectures::=arm64
          -o "Dir::Etc::SourceList=$sources" -o "Dir::Etc::SourceParts=/nonexistent")
mkdir -p "$lists/partial" "$cache/apt-cache/archives/partial" "$cache/debs"
if ! compgen -G "$lists/*binary-arm64_Packages*" >/dev/null; then
  say "reading Debian's arm64 package lists (a private copy in $lists)"
  apt-get "${apt_opts[@]}" update -qq >"$cache/.apt.log" 2>&1 || { cat "$cache/.apt.log" >&2; die "apt-get update of the arm64 lists failed"; }
fi
kpkg=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64:arm64 2>/dev/null \
  | awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-[0-9]/ { sub(":arm64", "", $2); print $2; exit }')
[ -n "$kpkg" ] || die "cannot resolve the kernel package: 'apt-cache depends linux-image-arm64:arm64' names no linux-image-<version>"
pkgs=(xen-utils-4.17 libxenmisc4.17 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4
      libxentoollog1 libyajl2 libxendevicemodel1 libxentoolcore1 libxenhypfs1 libc6 libgcc-s1 busybox-static "$kpkg")
missing=()
for p in "${pkgs[@]}"; do compgen -G "$cache/debs/${p}_*_arm64.deb" >/dev/null || missing+=("$p:arm64"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "downloading ${missing[*]}"
  (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "${missing[@]}" >"$cache/.apt.log" 2>&1) \
    || { cat "$cache/.apt.log" >&2; die "apt-get download failed (delete $lists to read the lists again)"; }
fi
rm -rf "$cache/root.new"
mkdir -p "$cache/root.new"
: > "$cache/versions.new"
for p in "${pkgs[@]}"; do
  deb=$(ls -1 "$cache/debs/${p}"_*_arm64.deb | sort -V | tail -n 1)
  dpkg -x "$deb" "$cache/root.new"
  dpkg-deb -W --showformat='${Package}=${Version}\n' "$deb" >> "$cache/versions.new"
done
rm -rf "$cache/root"
mv "$cache/root.new" "$cache/root"
mv "$cache/versions.new" "$cache/versions"

kver=${kpkg#linux-image-}
[ -f "$cache/root/boot/vmlinuz-$kver" ] || die "$kpkg did not contain /boot/vmlinuz-$kver"
ln -sfn "root/boot/vmlinuz-$kver" "$cache/vmlinuz"
echo "$kver" > "$cache/kernel-version"
[ -x "$cache/root/usr/lib/xen-4.17/bin/xen-livepatch" ] || die "xen-utils-4.17 did not contain /usr/lib/xen-4.17/bin/xen-livepatch"
[ -x "$cache/root/bin/busybox" ] || die "busybox-static did not contain /bin/busybox"
rm -f "$cache/.apt.log"
{
  echo "xen: xen-$xen_version-arm64=$xen_version (upstream, built from $(basename "$tarball") with CONFIG_LIVEPATCH=y)"
  echo "kernel: $kver ($(grep "^$kpkg=" "$cache/versions"))"
  echo "tools: $(grep '^xen-utils-4.17=' "$cache/versions")"
  echo "build-id: $buildid"
} > "$cache/READY"
say "ready ($cache)"; sed "s/^/  /" "$cache/READY"
