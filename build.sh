#!/usr/bin/env bash
# The one set-up command: installs what the build and the tests need when it is missing (as root on
# Debian), restores, builds Release, publishes the CLI to artifacts/publish/xen-livepatch/ (xen-livepatch and xen-livepatch-full),
# builds the sandbox image and its sample payloads with that CLI, writes the manual page, the bash completion
# and the systemd unit to artifacts/dist (./install.sh installs them all), and fetches Debian's Xen 4.17 tools
# as the tests' oracle. Safe to run again: it only does what is missing.
#   usage: ./build.sh [--no-install]
set -euo pipefail
cd "$(dirname "$0")"
install=1
[ "${1:-}" = "--no-install" ] && install=0
step() { printf '==> %s\n' "$*"; }

# tool:package pairs the build and the tests use.
wanted=(gcc:gcc ld:binutils readelf:binutils objdump:binutils as:binutils
        aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu aarch64-linux-gnu-ld:binutils-aarch64-linux-gnu
        dpkg-deb:dpkg python3:python3 clang:clang ansible-playbook:ansible openssl:openssl
        make:make patch:patch flex:flex bison:bison   # these four: build-source builds Xen trees
        afl-fuzz:afl++)                               # fuzz/run.sh: coverage-guided fuzzing
missing=()
for pair in "${wanted[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ $install = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  else
    echo "build.sh: missing tools; install these packages and run ./build.sh again: $pkgs" >&2
    echo "  (as root on Debian or Ubuntu: apt-get install $pkgs)" >&2
    exit 1
  fi
fi
# Linux's own module signer, the oracle of the appended signature format (tests/Signing.Tests).
signfile=/usr/lib/linux-kbuild-6.1/scripts/sign-file
if [ ! -x "$signfile" ]; then
  if [ $install = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing linux-kbuild-6.1 (Linux's sign-file)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends linux-kbuild-6.1 >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends linux-kbuild-6.1 >/dev/null; }; } ||
      echo "build.sh: linux-kbuild-6.1 could not be installed; the sign-file tests will say so" >&2
  else
    echo "build.sh: note: $signfile is missing (Debian's linux-kbuild-6.1); the sign-file tests need it" >&2
  fi
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "build.sh: the .NET SDK is missing; install .NET 10 (https://dot.net/v1/dotnet-install.sh --channel 10.0) and run ./build.sh again" >&2
  exit 1
fi

step "restoring NuGet packages"
dotnet restore XenLivepatch.slnx --nologo -v quiet
step "building Release"
dotnet build XenLivepatch.slnx -c Release --no-restore --nologo -v quiet -clp:ErrorsOnly
# The CLI is published with NativeAOT (clang links it): start-up time is part of parity with Xen's C tool.
case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64) rid=linux-arm64 ;;
  *) echo "build.sh: no NativeAOT runtime identifier for $(uname -m)" >&2; exit 1 ;;
esac
# Two programs, one tool: xen-livepatch (src/CliFront) runs Xen's commands itself and hands every other command line
# to xen-livepatch-full (src/Cli); the front links only what Xen's commands need, which is its start-up. The front
# also carries the whole tool in a section of its own (.xlp.full, not loaded, kept by strip), run from memory when
# no xen-livepatch-full is installed beside it: copied alone, xen-livepatch is still the whole tool.
publish_cli() { # RID DIR OBJCOPY
  rm -rf "$2"
  dotnet publish src/Cli/XenLivepatch.Cli.csproj -c Release -r "$1" --nologo -v quiet -clp:ErrorsOnly -o "$2" ${XLP_PUBLISH_FLAGS:-}
  dotnet publish src/CliFront/XenLivepatch.CliFront.csproj -c Release -r "$1" --nologo -v quiet -clp:ErrorsOnly -o "$2" ${XLP_PUBLISH_FLAGS:-}
  "$3" --add-section .xlp.full="$2/xen-livepatch-full" "$2/xen-livepatch"
}
step "publishing the CLI (NativeAOT, $rid) to artifacts/publish/xen-livepatch"
publish_cli "$rid" artifacts/publish/xen-livepatch objcopy
# The same CLI for arm64 dom0s, cross-compiled with NativeAOT (clang --target=aarch64-linux-gnu links it
# against Debian's aarch64 cross C library); the arm64 QEMU tests run it on real arm64 Xen.
if [ "$rid" = linux-x64 ]; then
  if [ ! -e /usr/aarch64-linux-gnu/lib/crt1.o ]; then
    if [ $install = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      step "installing libc6-dev-arm64-cross"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libc6-dev-arm64-cross >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libc6-dev-arm64-cross >/dev/null; }
    else
      echo "build.sh: the arm64 CLI needs libc6-dev-arm64-cross: apt-get install libc6-dev-arm64-cross, then ./build.sh again" >&2
      exit 1
    fi
  fi
  step "publishing the CLI (NativeAOT, linux-arm64) to artifacts/publish/xen-livepatch-linux-arm64"
  publish_cli linux-arm64 artifacts/publish/xen-livepatch-linux-arm64 aarch64-linux-gnu-objcopy
fi
# The control library for other programs: XenLivepatch.Control and XenLivepatch.Abi as NuGet packages (the tests
# build a consumer from this folder as a local feed).
step "packing XenLivepatch.Control and XenLivepatch.Abi into artifacts/packages"
rm -rf artifacts/packages
dotnet pack src/Control/XenLivepatch.Control.csproj -c Release --no-build --nologo -v quiet -clp:ErrorsOnly -o artifacts/packages
dotnet pack src/Abi/XenLivepatch.Abi.csproj -c Release --no-build --nologo -v quiet -clp:ErrorsOnly -o artifacts/packages
# After the CLI: the sample payloads are made by 'xen-livepatch build'.
step "building the sandbox hypervisor image and sample payloads into artifacts/sandbox"
XEN_LIVEPATCH=artifacts/publish/xen-livepatch/xen-livepatch src/Sandbox/build-artifacts.sh artifacts/sandbox
step "writing the manual page, bash completion and systemd unit into artifacts/dist"
mkdir -p artifacts/dist
artifacts/publish/xen-livepatch/xen-livepatch man > artifacts/dist/xen-livepatch.1
artifacts/publish/xen-livepatch/xen-livepatch completion bash > artifacts/dist/xen-livepatch.bash
cp packaging/systemd/xen-livepatch.service artifacts/dist/xen-livepatch.service
step "fetching Debian's Xen 4.17 tools (the tests' oracle)"
if command -v apt-get >/dev/null 2>&1; then
  tools/oracle/fetch-xen-tools.sh
else
  echo "build.sh: no apt-get here; the oracle tests need Debian's xen-utils-4.17 (tools/oracle/fetch-xen-tools.sh)" >&2
fi
step "done: artifacts/publish/xen-livepatch/xen-livepatch"
