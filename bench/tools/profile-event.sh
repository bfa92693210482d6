#!/bin/bash
# Profiles the event-driven MNIST16 inference (1 thread, timed calls dominating) and prints the
# hottest methods, then the hot blocks of the methods named (default: the layered kernel's).
# Needs perf (apt-get install linux-perf) and python3; the bench built in Release.
#   bench/tools/profile-event.sh CHECKPOINT [METHOD ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dll="$here/../SnnFunc.Bench/bin/Release/net10.0/SnnFunc.Bench.dll"
ck=${1:?"usage: profile-event.sh CHECKPOINT [METHOD ...]"}
shift
methods=("$@")
[ ${#methods[@]} -eq 0 ] && methods=(lifSweepWidest lifLaneFast solveRisingX lifRun liSweepWidest)
out=$(mktemp -d)
pattern=$(printf '%s* ' "${methods[@]}")
DOTNET_PerfMapEnabled=3 DOTNET_EnableWriteXorExecute=0 DOTNET_JitDisasm="$pattern" \
  DOTNET_JitStdOutFile="$out/disasm.txt" \
  perf record -F 4000 -e cpu-clock -o "$out/perf.data" \
  dotnet "$dll" mnist16-infer --mode event --checkpoint "$ck" --reps 40 --threads 1
map=$(ls -t /tmp/perf-*.map | head -1)
perf report -i "$out/perf.data" --no-children --sort sym 2>/dev/null | grep -v '^#' | head -20 | cut -c1-120
python3 "$here/jit-hotblocks.py" "$out/perf.data" "$map" "$out/disasm.txt" "${methods[@]}"
echo "profile, map and listing in $out"
