#!/usr/bin/env bash
# Runs the conv2d benchmark in SnnFunc and in PyTorch eager one after the other (after waiting for
# the shared machine to be idle) and prints both lines per shape and the ratios of their speeds
# (PyTorch's median time / SnnFunc's: above 1, SnnFunc is faster).
# Usage: bash bench/peers/run_conv.sh [--reps N] [--no-wait]; DOTNET_EnableAVX512=0 for the AVX2 path.
# SnnFunc runs with DOTNET_GCLOHThreshold raised (the GC caps it at about 4 MB) unless the caller
# sets it: with the default 85 KB every conv output is a large-object allocation, each of which
# started a full collection (see docs/performance.md, "Convolution").
set -euo pipefail
export DOTNET_GCLOHThreshold="${DOTNET_GCLOHThreshold:-0x400000}"
cd "$(dirname "$0")/../.."
reps=31
wait_idle=1
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
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
settle
snn=$(dotnet run -c Release --no-build --project bench/SnnFunc.Bench -- conv --threads 2 --reps "$reps" | grep '^conv ')
settle
torch=$(/usr/bin/python3 bench/peers/torch_conv.py --reps "$reps" | grep '^conv ')
echo "# $(lscpu | sed -n 's/^Model name: *//p'), DOTNET_EnableAVX512=${DOTNET_EnableAVX512:-<unset>}, reps=$reps"
field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }
paste -d'\n' <(echo "$snn") <(echo "$torch") | while read -r s && read -r t; do
  echo "snnfunc $s"
  echo "torch   $t"
  awk -v sf="$(field fwd_ms "$s")" -v tf="$(field fwd_ms "$t")" -v sb="$(field fwdbwd_ms "$s")" -v tb="$(field fwdbwd_ms "$t")" \
    'BEGIN { printf "ratio   fwd=%.2f fwdbwd=%.2f (torch ms / snnfunc ms)\n", tf / sf, tb / sb }'
done
