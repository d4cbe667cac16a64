#!/usr/bin/env bash
# Installs the Debian 12 packages vmtrace needs to build, test and run.
# Idempotent: packages already present are not reinstalled, and apt is only
# called when something is missing.  Run as root (or with sudo).
set -euo pipefail

packages=(
  # build
  g++ cmake make pkg-config
  # libraries
  libbabeltrace2-dev libboost-program-options-dev libfmt-dev nlohmann-json3-dev
  # vmtrace top's full-screen view; tmux runs it in the tests
  libncurses-dev tmux
  libgtest-dev libgmock-dev libbenchmark-dev
  libkmod-dev liblttng-ctl-dev
  # ust/: the memory tracer's lttng-ust provider library (libvmtrace-mem)
  liblttng-ust-dev
  # running and testing
  babeltrace2 python3 time clang-format
  # an independent CTF reader: `vmtrace sync` outputs are checked with babeltrace 1.x too
  babeltrace
  # vmtrace modules/record and their tests: modinfo indexes, a private lttng-sessiond
  kmod lttng-tools
  # the HTML report's test renders it in headless Chromium
  chromium
  # the memory tracer's QEMU plugin (ust/qemu-plugin) and its test
  qemu-system-x86
)

# The QEMU plugin builds against qemu-plugin.h, which only Debian's qemu
# source package has: fetched once (about 25 MB) into a cache.
fetch_qemu_plugin_header() {
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo "$(dirname "$0")/fetch-qemu-plugin-header.sh" > /dev/null ||
    echo "install-deps: warning: no qemu-plugin.h: the QEMU plugin (ust/qemu-plugin) will not be built" >&2
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  fetch_qemu_plugin_header
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fetch_qemu_plugin_header
