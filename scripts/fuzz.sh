#!/usr/bin/env bash
# Builds the libFuzzer targets of FuzzTesting/ (ASan + libFuzzer, release) and runs each for a
# fixed time. Fails on any crash, broken invariant, leak, timeout (a hang of 5 s) or OOM.
#
#   scripts/fuzz.sh                    every target, 30 s each (FUZZ_TIME overrides)
#   scripts/fuzz.sh --time 1800 FuzzPCCRC
#   scripts/fuzz.sh --merge            also fold new interesting inputs into FuzzTesting/Corpus/
#   scripts/fuzz.sh --parallel --time 1800   every target at once (long runs on a quiet machine)
#   scripts/fuzz.sh --build-only
#
# Targets are the folders of FuzzTesting/Sources/; each may have Dictionaries/NAME.dict,
# Corpus/NAME/ and Regressions/NAME/. A run works on a copy of the corpus and the regressions in
# the scratch folder, so the committed corpus is never churned. Crashing inputs are left in
# <scratch>/fuzz-run/NAME/artifacts/: minimise one with
#   SWIFT_BACKTRACE=enable=no <scratch>/release/NAME -minimize_crash=1 -runs=100000 <input>
# and keep it in FuzzTesting/Regressions/NAME/ (swift test replays it).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

TIME=${FUZZ_TIME:-30}
SCRATCH=${FUZZ_SCRATCH:-$ROOT/.build-fuzz}
MERGE=no
BUILD_ONLY=no
PARALLEL=no
TARGETS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --time) TIME=$2; shift ;;
        --merge) MERGE=yes ;;
        --build-only) BUILD_ONLY=yes ;;
        --parallel) PARALLEL=yes ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1") ;;
    esac
    shift
done
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    for dir in FuzzTesting/Sources/*/; do TARGETS+=("$(basename "$dir")"); done
fi

# Largest input per target (libFuzzer's -max_len); the rest use 4096.
max_len() {
    case "$1" in
        FuzzRequestHead) echo 20000 ;;  # past the 16 KiB head limit
        FuzzPCCRC) echo 70000 ;;        # past one 64 KiB V1 block
        *) echo 4096 ;;
    esac
}

mkdir -p "$SCRATCH"
# Leak detection per target: 1, except where a leak was found and is not yet fixed (name the
# target in this table with FUZZ_DETECT_LEAKS:-0 and the regression input that shows it).
detect_leaks() {
    case "$1" in
        *) echo "${FUZZ_DETECT_LEAKS:-1}" ;;
    esac
}

echo "== fuzz: building ${TARGETS[*]}"
for target in "${TARGETS[@]}"; do
    # --sanitize=fuzzer alone links libFuzzer but leaves the Swift modules of a release build
    # without coverage (seen with Swift 6.3.1: only C targets were instrumented, so the fuzzer
    # ran blind); the coverage is asked for explicitly.
    if ! nice -n 10 swift build -c release --sanitize=fuzzer --sanitize=address --product "$target" \
        -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
        --package-path FuzzTesting --scratch-path "$SCRATCH" >"$SCRATCH/build-$target.log" 2>&1; then
        cat "$SCRATCH/build-$target.log"
        echo "fuzz: build of $target failed" >&2
        exit 1
    fi
    rm -f "$SCRATCH/build-$target.log"
done
[[ $BUILD_ONLY == yes ]] && exit 0

# Runs one target; its summary line goes to <work>/summary, and it exits non-zero on a failure.
run_target() {
    local target=$1 failed=0
    local work="$SCRATCH/fuzz-run/$target"
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    for src in "FuzzTesting/Corpus/$target" "FuzzTesting/Regressions/$target"; do
        [[ -d $src ]] && find "$src" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$work/corpus/" \;
    done
    args=(-max_total_time="$TIME" -timeout=5 -rss_limit_mb=2048 -max_len="$(max_len "$target")"
          -artifact_prefix="$work/artifacts/" -print_final_stats=1 -detect_leaks="$(detect_leaks "$target")")
    [[ -f FuzzTesting/Dictionaries/$target.dict ]] && args+=(-dict="FuzzTesting/Dictionaries/$target.dict")
    echo "== fuzz: $target for ${TIME}s"
    start=$(date +%s)
    SWIFT_BACKTRACE=enable=no nice -n 10 "$SCRATCH/release/$target" "${args[@]}" "$work/corpus" >"$work/log" 2>&1
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    corpus=$(grep -aoE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$work/log" | tail -1 | sed 's/corp: //')
    crashes=$(find "$work/artifacts" -type f | wc -l)
    line="$target: rc=$rc executions=${execs:-?} time=${elapsed}s corpus=${corpus:-?} crashes=$crashes"
    echo "$line" >"$work/summary"
    if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
        failed=1
        grep -aE 'Fatal error|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|SUMMARY|Test unit written' "$work/log" | head -20
        grep -aE '^    #[0-9]+ .* in \$s' "$work/log" | head -12
        for artifact in "$work"/artifacts/*; do
            [[ -f $artifact ]] || continue
            echo "-- $artifact ($(wc -c <"$artifact") bytes):"
            head -c 512 "$artifact" | od -An -c | head -16
        done
    fi
    if ! grep -aq 'INITED cov:' "$work/log"; then
        echo "fuzz: $target reports no coverage: its code is not instrumented" >&2
        failed=1
    fi
    echo "$line"
    if [[ $MERGE == yes && $rc -eq 0 ]]; then
        mkdir -p "FuzzTesting/Corpus/$target"
        SWIFT_BACKTRACE=enable=no nice -n 10 "$SCRATCH/release/$target" -merge=1 -max_len="$(max_len "$target")" \
            "FuzzTesting/Corpus/$target" "$work/corpus" >"$work/merge.log" 2>&1 \
            && echo "   merged: $(grep -aoE 'added [0-9]+ new units' "$work/merge.log" | tail -1)"
    fi
    return $failed
}

failed=0
pids=()
for target in "${TARGETS[@]}"; do
    if [[ $PARALLEL == yes ]]; then
        run_target "$target" >"$SCRATCH/fuzz-$target.out" 2>&1 &
        pids+=($!)
    else
        run_target "$target" || failed=1
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
summary=()
for target in "${TARGETS[@]}"; do
    [[ $PARALLEL == yes ]] && cat "$SCRATCH/fuzz-$target.out"
    summary+=("$(cat "$SCRATCH/fuzz-run/$target/summary" 2>/dev/null || echo "$target: no result")")
done

echo "== fuzz summary (${TIME}s per target)"
printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
    echo "fuzz: FAILED (inputs in $SCRATCH/fuzz-run/*/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, 0 crashes"
