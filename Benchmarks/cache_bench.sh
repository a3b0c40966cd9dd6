#!/usr/bin/env bash
# Block cache throughput and memory, with `openssl speed -evp sha256` measured in the same run.
# Usage: Benchmarks/cache_bench.sh [ROUNDS=3] [MiB=1024] [RSS_MiB=2048]
# Builds BlockCacheBench in release (scratch .build-bench), then per round: openssl's SHA-256 on
# 64 KiB buffers (one core); dd of the same size with and without fdatasync (the disk's
# sequential rate); and the bench: as many 64 KiB files created and rewritten by plain syscalls
# (what the file system allows for the cache's layout), inserts into a fresh cache and into a
# full one (each insert evicting), verified reads, and a RSS_MiB insert at a bound of half that
# with VmRSS sampled. Each figure prints MiB/s and the CPU seconds it cost per GiB (the machine
# may be shared; CPU time is the steadier figure). Compare each MiB/s with 0.5 x openssl.
# Nothing is deleted until the end: on ext4 without a journal, creating files within a minute or
# so of deleting many is several times slower (PackFileStore explains), and that would measure
# this script's housekeeping. Each round needs about 3 x MiB + RSS_MiB / 2 of free disk.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
mib=${2:-1024}
rss_mib=${3:-2048}
scripts/ensure-packages.sh
swift build -c release --product BlockCacheBench --scratch-path .build-bench >&2
bin=.build-bench/release/BlockCacheBench
work=$(mktemp -d "${TMPDIR:-/tmp}/cache-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
dd_rate() {
    # $1: a file name, $2: the label, then dd's own options. Prints MiB/s from dd's elapsed seconds.
    local file=$1 label=$2
    shift 2
    dd if=/dev/zero of="$work/$file-$round" bs=1M count="$mib" "$@" 2>&1 |
        awk -v label="$label" -v mib="$mib" '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") t = $(i - 1); printf "%-52s %8.1f MiB/s\n", label, mib / t }'
}
log="$work/log"
for round in $(seq 1 "$rounds"); do
    echo "== round $round"
    openssl speed -evp sha256 -seconds 3 -bytes 65536 2>/dev/null |
        awk '/^sha256/ { printf "%-52s %8.1f MiB/s\n", "openssl sha256, 64 KiB buffers, one core", $2 * 1000 / 1048576 }'
    dd_rate dd "dd write, same size, no sync (as the cache writes)"
    dd_rate dd-sync "dd write, same size, conv=fdatasync" conv=fdatasync
    "$bin" "$work/round-$round" "$mib" "$rss_mib"
done | tee "$log"
# The median of each figure over the rounds (its MiB/s, and its CPU seconds per GiB if it has one).
echo "== medians of $rounds"
awk '
    / MiB\/s/ {
        label = substr($0, 1, 52); sub(/ +$/, "", label)
        rest = substr($0, 53); split(rest, f, " ")
        if (!(label in n)) order[++labels] = label
        rate[label, ++n[label]] = f[1] + 0
        if (match(rest, /CPU [0-9.]+/)) cpu[label, n[label]] = substr(rest, RSTART + 4, RLENGTH - 4) + 0
    }
    function median(a, label, count,    i, j, t, v) {
        for (i = 1; i <= count; i++) v[i] = a[label, i]
        for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return count % 2 ? v[(count + 1) / 2] : (v[count / 2] + v[count / 2 + 1]) / 2
    }
    END {
        for (k = 1; k <= labels; k++) {
            label = order[k]
            line = sprintf("%-52s %8.1f MiB/s", label, median(rate, label, n[label]))
            if ((label, 1) in cpu) line = line sprintf("  (CPU %.2f s per GiB)", median(cpu, label, n[label]))
            print line
        }
    }' "$log"
