#!/usr/bin/env bash
# conv2d in SnnFunc and in PyTorch eager, side by side: R rounds, each running the SnnFunc bench and
# then the PyTorch peer (after waiting for the shared machine to be idle), so that both meet the
# same slow and fast phases of the machine. Prints every line, then per shape the median over the
# rounds of each side and the median of the per-round ratios (PyTorch's time / SnnFunc's: above 1,
# SnnFunc is faster), with their range.
# Usage: bash bench/peers/run_conv.sh [--reps N] [--rounds R] [--threads T] [--clock wall|cpu] [--no-wait]
#        (--threads 1 compares single cores: steadier when another process holds one of two cores;
#        with --threads 1 --clock cpu both sides are timed by their CPU time, which leaves out the
#        time slices other processes take on a loaded machine)
#        DOTNET_EnableAVX512=0 ONEDNN_MAX_CPU_ISA=AVX2 bash bench/peers/run_conv.sh    # both on AVX2
#        (oneDNN, PyTorch's convolution, picks its instruction set itself: without ONEDNN_MAX_CPU_ISA
#        it uses AVX-512 where the CPU has it)
# SnnFunc runs with DOTNET_GCLOHThreshold raised (the GC caps it at about 4 MB) unless the caller
# sets it: with the default 85 KB every conv output is a large-object allocation, each of which
# started a full collection (see docs/performance.md, "Convolution").
set -euo pipefail
cd "$(dirname "$0")/../.."
export DOTNET_GCLOHThreshold="${DOTNET_GCLOHThreshold:-0x400000}"
reps=31
rounds=3
threads=2
clock=wall
wait_idle=1
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --clock) clock="$2"; shift 2 ;;
    --no-wait) wait_idle=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# Busy fraction of all CPUs over 1 s, in percent, from /proc/stat.
busy() {
  read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ < /proc/stat
  sleep 1
  read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ < /proc/stat
  local total=$(( (u2+n2+s2+i2+w2+q2+sq2+st2) - (u1+n1+s1+i1+w1+q1+sq1+st1) ))
  local idle=$(( (i2+w2) - (i1+w1) ))
  echo $(( 100 * (total - idle) / (total > 0 ? total : 1) ))
}

# Waits (at most 10 minutes) until two consecutive seconds are below 10 % busy.
settle() {
  [ "$wait_idle" = 1 ] || return 0
  local quiet=0 tries=0
  while [ $quiet -lt 2 ] && [ $tries -lt 600 ]; do
    if [ "$(busy)" -lt 10 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    tries=$((tries + 1))
  done
}

dotnet build -c Release bench/SnnFunc.Bench -v q -nologo > /dev/null
echo "# $(lscpu | sed -n 's/^Model name: *//p'), DOTNET_EnableAVX512=${DOTNET_EnableAVX512:-<unset>}, ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-<unset>}, DOTNET_GCLOHThreshold=$DOTNET_GCLOHThreshold, reps=$reps, clock=$clock, rounds=$rounds"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq 1 "$rounds"); do
  settle
  dotnet run -c Release --no-build --project bench/SnnFunc.Bench -- conv --threads "$threads" --reps "$reps" --clock "$clock" | grep '^conv ' | sed "s/^/snnfunc round=$r /" | tee -a "$log"
  settle
  /usr/bin/python3 bench/peers/torch_conv.py --reps "$reps" --threads "$threads" --clock "$clock" | grep '^conv ' | sed "s/^/torch round=$r /" | tee -a "$log"
done
/usr/bin/python3 - "$log" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+) round=(\d+) conv n=\d+ cin=(\d+) cout=(\d+) hw=(\d+) k=(\d+) fwd_ms=([\d.]+) fwdbwd_ms=([\d.]+)", line)
    if m:
        who, r, cin, cout, hw, k, fwd, fb = m.groups()
        runs.setdefault((cin, cout, hw, k), {}).setdefault(who, {})[int(r)] = (float(fwd), float(fb))
med = statistics.median
for (cin, cout, hw, k), d in runs.items():
    s, t = d["snnfunc"], d["torch"]
    rounds = sorted(set(s) & set(t))
    for i, name in enumerate(["fwd", "fwdbwd"]):
        ratios = [t[r][i] / s[r][i] for r in rounds]
        print(f"summary cin={cin} cout={cout} hw={hw} k={k} {name}: snnfunc {med([s[r][i] for r in rounds]):.3f} ms, "
              f"torch {med([t[r][i] for r in rounds]):.3f} ms, ratio {med(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f})")
PY
