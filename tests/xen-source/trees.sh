#!/usr/bin/env bash
# Builds Xen 4.17 hypervisor trees for the advisory tests, and keeps them: CACHE/tree-NNN is the 4.17.3 release
# with the first NNN commits of the stable series (../shared/xen-src/series-4.17.3..4.17.4) applied, configured
# with defconfig (CONFIG_LIVEPATCH=y) and built with fixed build stamps: its xen/xen boots under tests/qemu, its
# xen/xen-syms is the running hypervisor a payload is built for, and it is the --base-build of build-source.
# Each tree is made from the nearest lower one already built (copied, the next commits applied, rebuilt
# incrementally: make rebuilds what they touch), the first from the tarball. CACHE/tree-NNN/READY marks a
# complete tree; a tree without it is rebuilt. Several processes may run this at once (one builds, the others wait).
#   usage: tests/xen-source/trees.sh CACHE NNN [NNN...]
#   env:   XLP_XEN_SRC (default: tests/xen-src-dir.sh finds shared/xen-src above the checkout or its origin), JOBS (make -j, default: CPUs)
set -euo pipefail
cache=${1:?usage: trees.sh CACHE NNN [NNN...]}
shift
[ $# -gt 0 ] || { echo "trees.sh: which trees? give commit counts (0 for the release itself)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
src=$("$repo/tests/xen-src-dir.sh") || src=''
[ -n "$src" ] && [ -f "$src/xen-4.17.3.tar.xz" ] || { echo "trees.sh: Xen's sources are not found (shared/xen-src above the checkout, or XLP_XEN_SRC)" >&2; exit 1; }
series=("$src"/series-4.17.3..4.17.4/*.patch)
jobs=${JOBS:-$(nproc)}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# The stamps build-source uses for a tree it builds itself: two builds of one tree are byte-identical.
export XEN_BUILD_DATE="Mon Jan  1 00:00:00 UTC 2024" XEN_BUILD_TIME=00:00:00 XEN_WHOAMI=xen-livepatch XEN_DOMAIN=build XEN_BUILD_HOST=xen-livepatch
unset MAKEFLAGS MFLAGS MAKELEVEL

exec 9> "$cache/.lock"
flock 9

name() { printf 'tree-%03d' "$((10#$1))"; }

for want in "$@"; do
  n=$((10#$want))
  [ "$n" -le "${#series[@]}" ] || { echo "trees.sh: the series has ${#series[@]} commits, not $n" >&2; exit 2; }
  dst=$cache/$(name "$n")
  [ -f "$dst/READY" ] && continue
  rm -rf "$dst" "$dst.tmp"
  from=-1
  for ((k = n; k >= 0; k--)); do
    [ -f "$cache/$(name "$k")/READY" ] && { from=$k; break; }
  done
  start=$(date +%s)
  if [ "$from" -lt 0 ]; then
    echo "trees.sh: $(name "$n"): unpacking 4.17.3 and configuring" >&2
    mkdir -p "$dst.tmp"
    tar -xJf "$src/xen-4.17.3.tar.xz" -C "$dst.tmp" --strip-components=1
    make -C "$dst.tmp/xen" defconfig > "$dst.tmp.log" 2>&1
    from=0
  else
    echo "trees.sh: $(name "$n"): from $(name "$from")" >&2
    cp -a "$cache/$(name "$from")" "$dst.tmp"
    rm -f "$dst.tmp/READY"
  fi
  for ((k = from; k < n; k++)); do
    patch -s -p1 -d "$dst.tmp" < "${series[$k]}" || { echo "trees.sh: ${series[$k]} does not apply" >&2; exit 1; }
  done
  echo "trees.sh: $(name "$n"): building (make -j$jobs)" >&2
  if ! make -C "$dst.tmp/xen" -j"$jobs" >> "$dst.tmp.log" 2>&1; then
    echo "trees.sh: $(name "$n") does not build; the end of $dst.tmp.log:" >&2
    tail -20 "$dst.tmp.log" >&2
    exit 1
  fi
  mv "$dst.tmp" "$dst"
  mv "$dst.tmp.log" "$dst/build.log"
  echo "$((n)) commits, built in $(( $(date +%s) - start )) s" > "$dst/READY"
  echo "trees.sh: $(name "$n") ready ($(( $(date +%s) - start )) s)" >&2
done
