#!/usr/bin/env bash
# The main job on the bundled inputs, with the `vmtrace` command:
#  1. the real recording of the nested-KVM lab (examples/lab-recording: an
#     L1 KVM host and two L2 guests traced with vmtrace's modules):
#     synchronise and analyse it, write the HTML report and the traces for
#     Trace Compass;
#  2. a simulated host + 2 guests with ground truth: the same analysis, and
#     the synchronisation error and the analysis measured against the truth;
#  3. a simulated host + 3 guests with a whole-machine memory tracer: its
#     accesses split per VM (`vmtrace isolate`), every one checked against
#     the simulator's ground truth;
#  4. the lab's real memory recording (examples/memory-recording: L1's
#     guest-mode memory accesses recorded by the QEMU plugin, the host and
#     three guests, one migrated onto the host while it recorded): split
#     per VM, measured against the virtual addresses the plugin saw.
#
#   scripts/quickstart.sh [OUTPUT_DIR]      (default: out/)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$top/out}")

"$top/scripts/install-deps.sh" >/dev/null
"$top/scripts/build.sh" >/dev/null
vmtrace="$top/build/vmtrace"
plugins="$top/build/plugins"

rm -rf "$out/lab" "$out/simulation" "$out/memory" "$out/lab-memory"
mkdir -p "$out/lab" "$out/simulation" "$out/memory" "$out/lab-memory"
start=$(date +%s.%N)
elapsed() { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }

# 1. The lab's real recording.
echo "== the lab's real recording (examples/lab-recording): vmtrace analyze"
tar -xJf "$top/examples/lab-recording/recording.tar.xz" -C "$out/lab"
rec="$out/lab/recording"
"$vmtrace" analyze --intervals "$rec/l1/trace" "$rec/l2a/trace" "$rec/l2b/trace" -o "$out/lab/analysis"
"$vmtrace" report "$out/lab/analysis" >/dev/null
"$vmtrace" export --trace-compass "$rec/l1/trace" "$rec/l2a/trace" "$rec/l2b/trace" \
  -o "$out/lab/trace-compass" >/dev/null 2>&1
lab_s=$(elapsed "$start")

# 2. A simulated recording with ground truth: host + 2 guests, 20 s, guest
#    clocks seconds apart drifting up to 200 ppm, one vmsync handshake per
#    vCPU every 10 ms.
echo
echo "== a simulated host and 2 guests (20 s) against the simulator's ground truth"
sim_start=$(date +%s.%N)
sim="$out/simulation"
babeltrace2 --plugin-path "$plugins" run \
  -c sim:source.vmtrace.scenario \
  -p "seed=42,guests=2,vcpus=2,duration-ms=20000,ground-truth=\"$sim/ground-truth.json\",ground-truth-intervals=no" \
  -c mux:filter.utils.muxer \
  -c ctf:sink.ctf.fs -p "path=\"$sim/recorded\",quiet=yes" \
  --connect sim:mux --connect mux:ctf
host=$(ls -d "$sim"/recorded/vmtrace-sim-host/*/kernel)
guests=("$sim"/recorded/vmtrace-sim-guest*/*/kernel)
"$vmtrace" sync -q "$host" "${guests[@]}" -o "$sim/synchronized" --stats "$sim/sync-stats.json"
pairs=()
for g in "${guests[@]}"; do
  name=$(basename "$(dirname "$(dirname "$g")")")
  pairs+=("$g=$(ls -d "$sim/synchronized/$name"/*/kernel)")
done
python3 "$top/scripts/sync_error.py" "$sim/ground-truth.json" "${pairs[@]}" --json "$sim/sync-error.json"
"$vmtrace" analyze -q "$host" "${guests[@]}" -o "$sim/analysis"
python3 "$top/scripts/analysis_error.py" "$sim/ground-truth.json" "$sim/analysis/analysis.json"
sim_s=$(elapsed "$sim_start")
sim_events=$(python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))["events"]; print("%.1f" % ((e["host"] + e["guests"]) / 1e6))' "$sim/analysis/analysis.json")

# 3. Memory isolation: host + 3 guests (0.5 s) and the memory tracer's
#    trace of every access, its own clock aligned by memsync marks.
echo
echo "== a simulated host, 3 guests and a memory tracer (0.5 s): vmtrace isolate against the ground truth"
mem_start=$(date +%s.%N)
mem="$out/memory"
babeltrace2 --plugin-path "$plugins" run \
  -c sim:source.vmtrace.scenario \
  -p "seed=7,guests=3,vcpus=2,duration-ms=500,memory=yes,ground-truth=\"$mem/ground-truth.json\",ground-truth-intervals=no,memory-truth=\"$mem/memory-truth.bin\"" \
  -c mux:filter.utils.muxer \
  -c ctf:sink.ctf.fs -p "path=\"$mem/recorded\",quiet=yes" \
  --connect sim:mux --connect mux:ctf
mhost=$(ls -d "$mem"/recorded/vmtrace-sim-host/*/kernel)
mguests=("$mem"/recorded/vmtrace-sim-guest*/*/kernel)
"$vmtrace" isolate "$mhost" "${mguests[@]}" --memory "$mem/recorded/vmtrace-sim-memtracer" \
  -o "$mem/isolated" --truth "$mem/memory-truth.bin" 2>&1 | tail -n 1
mem_s=$(elapsed "$mem_start")
mem_records=$(python3 -c 'import json, sys; print("%.2f" % (json.load(open(sys.argv[1]))["records_in"] / 1e6))' "$mem/isolated/isolation.json")

# 4. The lab's real memory recording.
echo
echo "== the lab's real memory recording (examples/memory-recording): vmtrace isolate"
labmem_start=$(date +%s.%N)
tar -xJf "$top/examples/memory-recording/recording.tar.xz" -C "$out/lab-memory"
mrec="$out/lab-memory/recording"
"$vmtrace" isolate -q "$mrec/l1/trace" "$mrec/l2a/trace" "$mrec/l2b/trace" "$mrec/l2m/trace" \
  --memory "$mrec/memtrace" -o "$out/lab-memory/isolated" --tight-bounds
labmem_s=$(elapsed "$labmem_start")
python3 - "$out/lab-memory/isolated/isolation.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
va = r["va_check"]
print(f"{r['records_in']} accesses -> " + ", ".join(f"{k} {v}" for k, v in r["outputs"].items()))
print(f"against the plugin's virtual addresses: precision {va['precision']} "
      f"({va['gva_equals_va']} of {va['guest_attributed_user_va']} user-space accesses given to a guest process)")
for name, v in va["by_vm"].items():
    if v["guest_attributed_user_va"]:
        print(f"  {name}: precision {v['precision']}, recall outside ambiguous {v['recall_outside_ambiguous']:.3f}")
PY

cat <<SUMMARY

lab recording analysed in ${lab_s} s, simulation (${sim_events} M events) recorded, synchronised and analysed in ${sim_s} s
report:        $out/lab/analysis/report.html   (open it in a browser; self-contained)
analysis:      $out/lab/analysis/analysis.json and CSV files (docs/analysis-output.md)
Trace Compass: $out/lab/trace-compass (import as a Virtual Machine experiment: $out/lab/trace-compass/experiment.txt)
simulation:    $sim (ground truth, synchronised traces, sync-error.json, analysis/)
memory:        $mem/isolated (vm-NAME/ and host/ traces, isolation.json, summary.txt; docs/isolation.md):
               ${mem_records} M accesses simulated, synchronised and isolated in ${mem_s} s
lab memory:    $out/lab-memory/isolated (the real recording, isolated in ${labmem_s} s)
SUMMARY
