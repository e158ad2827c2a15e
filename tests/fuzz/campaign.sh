#!/usr/bin/env bash
# Long fuzzing runs, for the record the CI's 10-second runs cannot give: builds the libFuzzer targets
# (clang, ASan+UBSan) in BUILD_DIR, runs each for SECONDS from a copy of its committed corpus, and
# prints one line per target: seconds, executions, coverage (cov: edges, ft: features), corpus size
# and findings (crash-*, leak-*, timeout-* files, kept in OUT_DIR).
#   tests/fuzz/campaign.sh [SECONDS=3600] [BUILD_DIR=build-fuzz] [OUT_DIR=fuzz-campaign] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-3600}; build=${2:-build-fuzz}; out=${3:-fuzz-campaign}; shift $(( $# < 3 ? $# : 3 ))
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DMCUFLASH_SANITIZE=ON -DMCUFLASH_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ninja -C "$build" -t targets all | sed -n 's/^\(fuzz_[a-z0-9_]*\): .*/\1/p' | sort -u)
fi
ninja -C "$build" "${targets[@]}" >/dev/null
mkdir -p "$out"
printf '%-18s %8s %12s %7s %8s %8s %s\n' target seconds execs cov ft corpus findings
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus="$out/$name.corpus"; mkdir -p "$corpus" "$out/$name.findings"
  seeds=tests/fuzz/corpus/$name; [ -d "$seeds" ] || seeds=tests/fixtures/image
  dict=(); [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  start=$(date +%s)
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$out/$name.findings/" "$corpus" "$seeds" >"$out/$name.log" 2>&1 || true
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$out/$name.log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$out/$name.log" | tail -1 | cut -d' ' -f2)
  findings=$(ls "$out/$name.findings" | wc -l)
  printf '%-18s %8s %12s %7s %8s %8s %s\n' "$name" "$took" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
    "$(ls "$corpus" | wc -l)" "$findings"
done
