#!/usr/bin/env bash
# The main job on the bundled default inputs: simulate a KVM host running
# two guests (LTTng kernel traces with ground truth) and place the guests
# on the host's time base with filter.vmtrace.sync, measuring the error;
# then do the same with the real recording of the nested-KVM lab
# (examples/lab-recording), checked for consistency.
#
#   scripts/quickstart.sh [OUTPUT_DIR]      (default: out/)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$top/out}")

"$top/scripts/install-deps.sh" >/dev/null
"$top/scripts/build.sh" >/dev/null
plugins="$top/build/plugins"

rm -rf "$out/recorded" "$out/synchronized" "$out/lab"
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

# 4. The real recording: one L1 host and two L2 guests traced with
#    vmtrace's modules (no ground truth: the consistency check speaks).
echo
echo "== the lab's real recording (examples/lab-recording)"
mkdir -p "$out/lab"
tar -xJf "$top/examples/lab-recording/recording.tar.xz" -C "$out/lab"
lab=(-c "host:src.ctf.fs" -p "inputs=[\"$out/lab/recording/l1/trace/kernel\"]"
     -c "l2a:src.ctf.fs" -p "inputs=[\"$out/lab/recording/l2a/trace/kernel\"]"
     -c "l2b:src.ctf.fs" -p "inputs=[\"$out/lab/recording/l2b/trace/kernel\"]")
babeltrace2 --plugin-path "$plugins" run "${lab[@]}" \
  -c sync:filter.vmtrace.sync -p "stats=\"$out/lab/sync-stats.json\"" \
  -c mux:filter.utils.muxer \
  -c ctf:sink.ctf.fs -p "path=\"$out/lab/synchronized\",quiet=yes" \
  --connect host:sync --connect l2a:sync --connect l2b:sync --connect sync:mux --connect mux:ctf

printf '\nsimulation recorded in %.1f s, synchronised in %.1f s\n' \
  "$(echo "$recorded_s - $start" | bc)" "$(echo "$synced_s - $recorded_s" | bc)"
echo "synchronised traces: $out/synchronized (open them together in Trace Compass, see docs/trace-compass.md)"
echo "statistics:          $out/sync-stats.json"
echo "lab recording:       $out/lab/synchronized, statistics in $out/lab/sync-stats.json"
