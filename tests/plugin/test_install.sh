#!/usr/bin/env bash
# `cmake --install` puts the plugin in babeltrace2's system plugin
# directory (staged under DESTDIR here), and babeltrace2 loads it from
# there with its component classes.
set -euo pipefail
build_dir=$1
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" cmake --install "$build_dir" > /dev/null
plugin_dir=$(grep '^VMTRACE_BT2_PLUGIN_INSTALL_DIR:' "$build_dir/CMakeCache.txt" | cut -d= -f2)
test -f "$stage$plugin_dir/babeltrace-plugin-vmtrace.so" || { echo "not installed in $plugin_dir"; exit 1; }
listing=$(babeltrace2 --plugin-path "$stage$plugin_dir" list-plugins)
for cc in "source.vmtrace.scenario" "filter.vmtrace.sync"; do
  grep -qF "$cc" <<<"$listing" || { echo "babeltrace2 does not list $cc"; exit 1; }
done
echo "installed and loadable: $plugin_dir/babeltrace-plugin-vmtrace.so"
