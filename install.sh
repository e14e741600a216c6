#!/usr/bin/env bash
# Installs what ./build.sh made, in FHS places under PREFIX (default /usr/local), or packs them as a .deb:
#   PREFIX/sbin/xen-livepatch                              the tool (NativeAOT): Xen's commands, the rest by
#   PREFIX/lib/xen-livepatch/xen-livepatch-full            the whole tool, which it runs for every other command
#   PREFIX/lib/xen-livepatch/sandbox/xen-syms              the sandbox hypervisor's image (the tool finds it here)
#   PREFIX/lib/xen-livepatch/sandbox/payloads/*.livepatch  its sample payloads
#   PREFIX/share/man/man1/xen-livepatch.1                  the manual page
#   PREFIX/share/bash-completion/completions/xen-livepatch the bash completion
#   UNITDIR/xen-livepatch.service                          applies the installed payloads at boot (ExecStart names
#                                                          PREFIX/sbin/xen-livepatch); UNITDIR is PREFIX/lib/systemd/system
#   /var/lib/xen-livepatch                                 the install store's root (not with --destdir)
#
#   usage: ./install.sh [--prefix PREFIX] [--destdir DIR] [--unitdir DIR] [--enable]
#          ./install.sh --deb FILE        a Debian package (prefix /usr, unit in /lib/systemd/system) made by dpkg-deb
#   --destdir DIR   stage under DIR (for packaging): paths inside are as for PREFIX, nothing outside DIR is touched
#   --enable        systemctl enable xen-livepatch.service afterwards (when systemd runs)
# Run ./build.sh first. Safe to run again: files are replaced.
set -euo pipefail
cd "$(dirname "$0")"
prefix=/usr/local destdir='' unitdir='' enable=0 deb=''
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --unitdir) unitdir=${2:?--unitdir needs a directory}; shift 2 ;;
    --enable) enable=1; shift ;;
    --deb) deb=${2:?--deb needs the package file to write}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see ./install.sh --help)" >&2; exit 64 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path, not '$prefix'" >&2; exit 64 ;; esac

bin=artifacts/publish/xen-livepatch/xen-livepatch
full=artifacts/publish/xen-livepatch/xen-livepatch-full
image=artifacts/sandbox/xen-syms
dist=artifacts/dist
for f in "$bin" "$full" "$image" "$dist/xen-livepatch.1" "$dist/xen-livepatch.bash" "$dist/xen-livepatch.service"; do
  [ -f "$f" ] || { echo "install.sh: $f is missing: run ./build.sh first" >&2; exit 66; }
done

if [ -n "$deb" ]; then
  command -v dpkg-deb >/dev/null || { echo "install.sh: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 69; }
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  "$0" --prefix /usr --unitdir /lib/systemd/system --destdir "$stage/root"
  version=$(git describe --tags --always 2>/dev/null | sed 's/^v//; s/[^A-Za-z0-9.+~]/+/g')
  case "$version" in [0-9]*) ;; *) version="0~git$version" ;; esac
  arch=$(dpkg --print-architecture)
  mkdir -p "$stage/root/DEBIAN"
  cat > "$stage/root/DEBIAN/control" <<EOF
Package: xen-livepatch
Version: $version
Architecture: $arch
Maintainer: xen-livepatch <root@localhost>
Section: admin
Priority: optional
Description: Xen live patching tool, install store, boot-time apply and converge
 Xen's xen-livepatch commands with the same texts and exit codes, plus the running
 hypervisor's build-id, an install store applied at every boot by xen-livepatch.service,
 converging a host to a desired set of payloads, and the debug key 'x' dump.
EOF
  printf '#!/bin/sh\nset -e\nmkdir -p /var/lib/xen-livepatch\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n' > "$stage/root/DEBIAN/postinst"
  chmod 755 "$stage/root/DEBIAN/postinst"
  dpkg-deb --root-owner-group --build "$stage/root" "$deb" >/dev/null
  echo "install.sh: wrote $deb (xen-livepatch $version, $arch)"
  exit 0
fi

unitdir=${unitdir:-$prefix/lib/systemd/system}
root=${destdir%/}
put() { # MODE SOURCE DEST
  install -D -m "$1" "$2" "$root$3"
}
put 755 "$bin" "$prefix/sbin/xen-livepatch"
put 755 "$full" "$prefix/lib/xen-livepatch/xen-livepatch-full"
put 644 "$image" "$prefix/lib/xen-livepatch/sandbox/xen-syms"
for p in artifacts/sandbox/payloads/*.livepatch; do
  [ -e "$p" ] && put 644 "$p" "$prefix/lib/xen-livepatch/sandbox/payloads/$(basename "$p")"
done
put 644 "$dist/xen-livepatch.1" "$prefix/share/man/man1/xen-livepatch.1"
put 644 "$dist/xen-livepatch.bash" "$prefix/share/bash-completion/completions/xen-livepatch"
mkdir -p "$root$unitdir"
sed "s|^ExecStart=/usr/sbin/xen-livepatch |ExecStart=$prefix/sbin/xen-livepatch |" "$dist/xen-livepatch.service" > "$root$unitdir/xen-livepatch.service"
chmod 644 "$root$unitdir/xen-livepatch.service"
if [ -z "$destdir" ]; then
  mkdir -p /var/lib/xen-livepatch
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl daemon-reload || true
    [ "$enable" = 1 ] && systemctl enable xen-livepatch.service
  fi
fi
echo "install.sh: installed xen-livepatch under ${destdir:+$destdir}$prefix (unit in ${destdir:+$destdir}$unitdir)"
