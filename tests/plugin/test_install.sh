#!/usr/bin/env bash
# `cmake --install` puts the plugin in babeltrace2's system plugin
# directory (staged under DESTDIR here), and babeltrace2 loads it from
# there with every component class that plugin.c declares: the list is read
# from plugin.c, so a new component is checked without editing this test.
set -euo pipefail
build_dir=$1
plugin_c="$(cd "$(dirname "$0")/../.." && pwd)/babeltrace-plugins/plugin/plugin.c"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# What plugin.c declares: BT_PLUGIN(NAME) and one
# BT_PLUGIN_{SOURCE,FILTER,SINK}_COMPONENT_CLASS(NAME, ...) per class.
plugin=$(sed -nE 's/^BT_PLUGIN\(([a-z0-9_-]+)\);.*/\1/p' "$plugin_c")
[ -n "$plugin" ] || { echo "no BT_PLUGIN(...) in $plugin_c"; exit 1; }
declared=$(sed -nE 's/^BT_PLUGIN_(SOURCE|FILTER|SINK)_COMPONENT_CLASS\(([a-z0-9_-]+),.*/\L\1\E.'"$plugin"'.\2/p' \
  "$plugin_c" | sort)
# A declaration this parser missed (another macro form) must not go unchecked.
macros=$(grep -cE '^BT_PLUGIN_(SOURCE|FILTER|SINK)_COMPONENT_CLASS(_WITH_ID)?\(' "$plugin_c" || true)
if [ -z "$declared" ] || [ "$(wc -l <<<"$declared")" -ne "$macros" ]; then
  echo "cannot read the component classes of $plugin_c (found: ${declared:-none}; $macros declarations)"
  exit 1
fi

DESTDIR="$stage" cmake --install "$build_dir" > /dev/null
plugin_dir=$(grep '^VMTRACE_BT2_PLUGIN_INSTALL_DIR:' "$build_dir/CMakeCache.txt" | cut -d= -f2)
test -f "$stage$plugin_dir/babeltrace-plugin-$plugin.so" || { echo "not installed in $plugin_dir"; exit 1; }
# Only the staged directory: a plugin installed elsewhere must not answer.
listed=$(babeltrace2 --omit-system-plugin-path --omit-home-plugin-path --plugin-path "$stage$plugin_dir" \
  list-plugins | sed -nE "s/^ *'([a-z]+\.$plugin\.[a-z0-9_-]+)':.*/\1/p" | sort)
if [ "$listed" != "$declared" ]; then
  echo "plugin.c declares:"; sed 's/^/  /' <<<"$declared"
  echo "babeltrace2 lists from $plugin_dir:"; sed 's/^/  /' <<<"${listed:-(none)}"
  exit 1
fi
echo "installed and loadable: $plugin_dir/babeltrace-plugin-$plugin.so:" $declared
