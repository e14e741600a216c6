#!/usr/bin/env bash
# Builds an upstream x86-64 Xen hypervisor from its release tarball, for `run.sh --xen`: defconfig (which has
# CONFIG_LIVEPATCH=y on x86), with the build stamps (date, host, user) pinned. The build-id still depends on the
# compiler and on the build directory (the image holds source paths), so the tests build their payloads against
# the xen-syms of the build they boot, and the recorded verdicts do not depend on the build-id.
#
#   usage: tests/qemu/build-xen.sh [VERSION] [CACHE]
#          VERSION defaults to 4.22.0; CACHE to <repo>/artifacts/xen-VERSION (or $XEN_BUILD_CACHE)
#
# The tarball: xen-VERSION.tar.xz in the project's shared sources (tests/xen-src-dir.sh: $XLP_XEN_SRC, else
# shared/xen-src above the checkout or above the repository it was cloned from). Needs gcc, binutils, make, flex, bison and python3 (installed with apt-get when
# missing and run as root). About a minute on 2 idle cores, several when the machine is busy; progress on stderr.
# Idempotent (CACHE/READY); safe to run concurrently (the second run waits for the first).
#
# CACHE after a successful run:
#   xen        the multiboot image QEMU boots          xen-syms    its ELF with symbols
#   build-id   its build-id (hex)                      xen-config  the .config it was built with
#   READY      written last; build/ is the tree it was built in (make.log there)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=${1:-4.22.0}
cache=${2:-${XEN_BUILD_CACHE:-$repo/artifacts/xen-$version}}

say() { echo "build-xen: $*" >&2; }
die() { echo "build-xen: error: $*" >&2; exit 1; }

[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "'$version' is not a Xen release number such as 4.22.0"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
[ -f "$cache/READY" ] && { say "ready ($cache)"; exit 0; }

missing=()
for t in gcc:gcc ld:binutils make:make flex:flex bison:bison python3:python3 xz:xz-utils; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing host packages: ${missing[*]}; install them as root: apt-get install ${missing[*]}"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi

exec 9>"$cache/.lock"
flock 9
[ -f "$cache/READY" ] && { say "ready ($cache)"; exit 0; }

tarball=''
if src=$("$repo/tests/xen-src-dir.sh"); then tarball=$src/xen-$version.tar.xz; fi
[ -n "$tarball" ] && [ -f "$tarball" ] \
  || die "xen-$version.tar.xz is not found (shared/xen-src above the checkout, or the directory \$XLP_XEN_SRC)"

src=$cache/build/xen-$version
rm -rf "$cache/build"
mkdir -p "$cache/build"
say "unpacking $(basename "$tarball")"
tar -C "$cache/build" -xf "$tarball"
[ -d "$src/xen" ] || die "$(basename "$tarball") has no xen-$version/xen directory"
mk=(make -C "$src/xen" XEN_TARGET_ARCH=x86_64)
# The date, time, host, user and domain of the build go into the image, and so into its build-id.
export XEN_BUILD_DATE="Thu Jan  1 00:00:00 UTC 2026" XEN_BUILD_TIME="00:00:00" XEN_BUILD_HOST="xen-qemu" \
       XEN_WHOAMI="ci" XEN_DOMAIN="example.invalid"
"${mk[@]}" -s defconfig >/dev/null
grep -q '^CONFIG_LIVEPATCH=y' "$src/xen/.config" || die "defconfig of Xen $version has no CONFIG_LIVEPATCH=y ($src/xen/.config)"
say "building Xen $version (x86_64, defconfig, CONFIG_LIVEPATCH=y): about a minute on 2 idle cores"
t0=$(date +%s)
nice -n 5 "${mk[@]}" -j"$(nproc)" >"$cache/build/make.log" 2>&1 \
  || { tail -n 30 "$cache/build/make.log" >&2; die "the Xen build failed (log: $cache/build/make.log)"; }
say "built in $(( $(date +%s) - t0 )) s"
cp "$src/xen/.config" "$cache/xen-config"
cp "$src/xen/xen" "$cache/xen.new" && mv "$cache/xen.new" "$cache/xen"
cp "$src/xen/xen-syms" "$cache/xen-syms.new" && mv "$cache/xen-syms.new" "$cache/xen-syms"
buildid=$(readelf -n "$cache/xen-syms" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p' | head -n 1)
[ -n "$buildid" ] || die "no GNU build-id note in $cache/xen-syms"
echo "$buildid" > "$cache/build-id"
echo "xen=$version" > "$cache/READY"
say "ready: $cache/xen (build-id $buildid)"
