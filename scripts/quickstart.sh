#!/usr/bin/env bash
# The main job on the bundled default input: simulate a KVM host running
# two guests (LTTng kernel traces with ground truth), place the guests on
# the host's time base with filter.vmtrace.sync, and report.
#
#   scripts/quickstart.sh [OUTPUT_DIR]      (default: out/)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$top/out}")

"$top/scripts/install-deps.sh" >/dev/null
"$top/scripts/build.sh" >/dev/null
plugins="$top/build/plugins"

rm -rf "$out/recorded" "$out/synchronized"
mkdir -p "$out"
start=$(date +%s.%N)

# 1. The recording: host + 2 guests, 20 s, offsets of seconds, drifts of up
#    to 200 ppm, one vmsync handshake per vCPU every 10 ms.
babeltrace2 --plugin-path "$plugins" run \
  -c sim:source.vmtrace.scenario \
  -p "seed=42,guests=2,vcpus=2,duration-ms=20000,ground-truth=\"$out/ground-truth.json\",ground-truth-intervals=no" \
  -c mux:filter.utils.muxer \
  -c ctf:sink.ctf.fs -p "path=\"$out/recorded\",quiet=yes" \
  --connect sim:mux --connect mux:ctf
recorded_s=$(date +%s.%N)

host=$(ls -d "$out"/recorded/vmtrace-sim-host/*/kernel)
guests=("$out"/recorded/vmtrace-sim-guest*/*/kernel)

# 2. Synchronisation: each trace from its own src.ctf.fs, as for a real
#    recording.
args=(-c "host:src.ctf.fs" -p "inputs=[\"$host\"]")
connect=(--connect host:sync)
for i in "${!guests[@]}"; do
  args+=(-c "guest$i:src.ctf.fs" -p "inputs=[\"${guests[$i]}\"]")
  connect+=(--connect "guest$i:sync")
done
babeltrace2 --plugin-path "$plugins" run "${args[@]}" \
  -c sync:filter.vmtrace.sync -p "stats=\"$out/sync-stats.json\"" \
  -c mux:filter.utils.muxer \
  -c ctf:sink.ctf.fs -p "path=\"$out/synchronized\",quiet=yes" \
  "${connect[@]}" --connect sync:mux --connect mux:ctf
synced_s=$(date +%s.%N)

# 3. Accuracy against the simulator's ground truth.
pairs=()
for g in "${guests[@]}"; do
  name=$(basename "$(dirname "$(dirname "$g")")")
  pairs+=("$g=$(ls -d "$out/synchronized/$name"/*/kernel)")
done
python3 "$top/scripts/sync_error.py" "$out/ground-truth.json" "${pairs[@]}" --json "$out/sync-error.json"

printf '\nrecorded in %.1f s, synchronised in %.1f s\n' \
  "$(echo "$recorded_s - $start" | bc)" "$(echo "$synced_s - $recorded_s" | bc)"
echo "synchronised traces: $out/synchronized (open them together in Trace Compass, see docs/trace-compass.md)"
echo "statistics:          $out/sync-stats.json"
