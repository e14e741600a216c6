#!/usr/bin/env bash
# Fetches Debian's Xen 4.17 tools (xen-utils-4.17 and the libraries its xen-livepatch needs) into
# artifacts/oracle/xen-4.17 without installing anything, and writes artifacts/oracle/xen-4.17/xen-livepatch,
# a wrapper that runs Debian's C tool with those libraries. The tests compare our CLI's texts and exit codes
# with it (it needs no Xen for help and for unknown commands).
#   usage: tools/oracle/fetch-xen-tools.sh [DEST]      (DEST defaults to artifacts/oracle/xen-4.17)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$root/artifacts/oracle/xen-4.17}
if [ -x "$dest/xen-livepatch" ] && "$dest/xen-livepatch" >/dev/null 2>&1; then
  echo "oracle: Debian's xen-livepatch is ready at $dest"
  exit 0
fi
command -v apt-get >/dev/null || { echo "oracle: apt-get not found; Debian's xen-utils-4.17 cannot be fetched on this system" >&2; exit 1; }
mkdir -p "$dest/debs"
cd "$dest/debs"
pkgs="xen-utils-4.17 libxenmisc4.17 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4
      libxentoollog1 libyajl2 libxendevicemodel1 libxentoolcore1 libxenhypfs1"
if ! apt-get download $pkgs >/dev/null 2>apt.err; then
  # A fresh machine may not have package lists yet.
  if [ "$(id -u)" = 0 ]; then apt-get update -qq; fi
  apt-get download $pkgs >/dev/null 2>apt.err || { cat apt.err >&2; exit 1; }
fi
rm -rf "$dest/root"
for d in ./*.deb; do dpkg -x "$d" "$dest/root"; done
libs=$(find "$dest/root" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
cat > "$dest/xen-livepatch" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$libs" exec "$dest/root/usr/lib/xen-4.17/bin/xen-livepatch" "\$@"
WRAP
chmod +x "$dest/xen-livepatch"
echo "oracle: Debian's xen-livepatch 4.17 is at $dest/xen-livepatch"
