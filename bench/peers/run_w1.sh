#!/usr/bin/env bash
# Runs the W1 benchmark in SnnFunc (fused) and in PyTorch eager in one go and prints both lines and
# the ratio of their training samples per second. Usage: bash bench/peers/run_w1.sh [--reps N]
set -euo pipefail
cd "$(dirname "$0")/../.."
reps="${2:-15}"
snn=$(dotnet run -c Release --project bench/SnnFunc.Bench -- w1 --threads 2 --reps "$reps" | grep samples_per_s=)
echo "$snn"
torch=$(/usr/bin/python3 bench/peers/torch_w1.py bench --reps "$reps" | grep samples_per_s=)
echo "$torch"
rate() { sed -E 's/.*samples_per_s=([0-9.]+).*/\1/' <<<"$1"; }
awk -v a="$(rate "$snn")" -v b="$(rate "$torch")" 'BEGIN { printf "ratio snnfunc/torch=%.1f\n", a / b }'
