#!/usr/bin/env bash
# Long fuzzing runs, for the record the CI's 10-second runs cannot give: builds the libFuzzer targets
# (clang, ASan+UBSan) in BUILD_DIR and runs each until the ledger holds CPU_SECONDS of processor time
# for it, going on from OUT_DIR/NAME.corpus, seeded by the committed corpus. So a campaign cut short
# (a session's end) is finished by running the same command again, and a target already done is
# skipped; two campaigns may run side by side (one per core) on the same BUILD_DIR and OUT_DIR.
# Processor time (user + system, from /usr/bin/time) rather than libFuzzer's wall-clock limit: a busy
# machine stretches the wall clock, not the work done. Each run appends one line to
# OUT_DIR/ledger.tsv: target, CPU and wall seconds, executions, coverage (cov: edges, ft: features),
# corpus size and findings (crash-*, leak-*, timeout-*, oom-* files, kept in OUT_DIR/NAME.findings).
#   tests/fuzz/campaign.sh [CPU_SECONDS=3600] [BUILD_DIR=build-fuzz] [OUT_DIR=fuzz-campaign] [TARGET...]
#   tests/fuzz/campaign.sh --summary [OUT_DIR=fuzz-campaign]    # the ledger summed per target
set -euo pipefail
cd "$(dirname "$0")/../.."

summary() {
  printf "%-12s %5s %9s %9s %13s %6s %7s %7s %8s\n" target runs cpu_s wall_s execs cov ft corpus findings
  awk -F'\t' 'NR > 1 { cpu[$2] += $3; wall[$2] += $4; execs[$2] += $5; runs[$2]++; cov[$2] = $6; ft[$2] = $7;
                       corpus[$2] = $8; findings[$2] = $9 }
    END { for (t in cpu) printf "%-12s %5d %9d %9d %13d %6s %7s %7s %8d\n", t, runs[t], cpu[t], wall[t], execs[t],
                                cov[t], ft[t], corpus[t], findings[t] }' "$1/ledger.tsv" | sort
}
if [ "${1:-}" = --summary ]; then summary "${2:-fuzz-campaign}"; exit; fi

seconds=${1:-3600}; build=${2:-build-fuzz}; out=${3:-fuzz-campaign}; shift $(( $# < 3 ? $# : 3 ))
[ -x /usr/bin/time ] || { echo "campaign.sh needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
mkdir -p "$build" "$out"
# One configure and build at a time: two campaigns configuring one BUILD_DIR at once break it.
exec 9>"$build/.campaign.lock"; flock 9
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DMCUFLASH_SANITIZE=ON -DMCUFLASH_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ninja -C "$build" -t targets all | sed -n 's/^\(fuzz_[a-z0-9_]*\): .*/\1/p' | sort -u)
fi
ninja -C "$build" "${targets[@]}" >/dev/null
[ -f "$out/ledger.tsv" ] || printf 'date\ttarget\tcpu_s\twall_s\texecs\tcov\tft\tcorpus\tfindings\n' >"$out/ledger.tsv"
flock -u 9
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus="$out/$name.corpus"; findings_dir="$out/$name.findings"; mkdir -p "$corpus" "$findings_dir"
  seeds=tests/fuzz/corpus/$name; [ -d "$seeds" ] || seeds=tests/fixtures/image
  flags=(-timeout=10 -print_final_stats=1 -artifact_prefix="$findings_dir/")
  [ -f "tests/fuzz/$name.dict" ] && flags+=(-dict="tests/fuzz/$name.dict")
  [ "$name" = fat ] && flags+=(-max_len=131072)
  spent=$(awk -F'\t' -v t="$name" '$2 == t { s += $3 } END { print s + 0 }' "$out/ledger.tsv")
  while [ "$spent" -lt "$seconds" ]; do
    start=$(date +%s)
    /usr/bin/time -f '%U %S' -o "$out/$name.time" "$build/tests/fuzz/$t" -max_total_time=$((seconds - spent)) \
      "${flags[@]}" "$corpus" "$seeds" >"$out/$name.log" 2>&1 || true
    cat "$out/$name.log" >>"$out/$name.all.log"
    wall=$(( $(date +%s) - start ))
    cpu=$(tail -1 "$out/$name.time" | awk '{ printf "%d", $1 + $2 }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$out/$name.log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$out/$name.log" | tail -1 | cut -d' ' -f2)
    findings=$(find "$findings_dir" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$cpu" "$wall" "${execs:-0}" \
      "${cov:-?}" "${ft:-?}" "$(find "$corpus" -type f | wc -l)" "$findings" >>"$out/ledger.tsv"
    spent=$((spent + cpu))
    # A finding stops the target (libFuzzer stops at the first), and so does a run that did no work.
    if [ "$findings" -gt 0 ] || [ "$cpu" -lt 1 ]; then break; fi
  done
done
summary "$out"
