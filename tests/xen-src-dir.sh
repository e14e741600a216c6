#!/usr/bin/env bash
# Prints the folder of Xen's sources the tests build from (xen-4.17.3.tar.xz, xen-4.22.0.tar.xz, the stable
# series): $XLP_XEN_SRC when set; else shared/xen-src in a folder above the checkout; else the same above the
# repository the checkout was cloned from (a clone in a temporary folder, as CI makes). Exits 1, printing
# nothing, when there is none.
#   usage: tests/xen-src-dir.sh
set -uo pipefail
if [ -n "${XLP_XEN_SRC:-}" ]; then
  [ -d "$XLP_XEN_SRC" ] && { (cd "$XLP_XEN_SRC" && pwd); exit 0; }
  exit 1
fi
above() {   # DIR: the first shared/xen-src in DIR or a folder above it
  local d=$1
  while [ -n "$d" ] && [ "$d" != / ]; do
    [ -d "$d/shared/xen-src" ] && { echo "$d/shared/xen-src"; return 0; }
    d=$(dirname "$d")
  done
  return 1
}
repo=$(cd "$(dirname "$0")/.." && pwd)
above "$repo" && exit 0
origin=$(git -C "$repo" config --get remote.origin.url 2>/dev/null || true)
origin=${origin#file://}
[ -n "$origin" ] && [ -d "$origin" ] && above "$(cd "$origin" && pwd)" && exit 0
exit 1
