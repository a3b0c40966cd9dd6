#!/usr/bin/env bash
# Block cache throughput and memory, with `openssl speed -evp sha256` measured in the same run.
# Usage: Benchmarks/cache_bench.sh [ROUNDS=3] [MiB=1024] [RSS_MiB=2048]
# Builds BlockCacheBench in release (scratch .build-bench), then per round: openssl's SHA-256 on
# 64 KiB buffers (one core), and the bench (insert 1 GiB in 64 KiB blocks, verified and stored;
# read it all back verified; a 2 GiB insert at a 1 GiB bound with VmRSS sampled). Data goes to a
# temporary folder on the same disk as TMPDIR. Compare each MiB/s with 0.5 x openssl; inserts
# cannot beat the dd line (the disk's write rate, printed in each round).
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
for round in $(seq 1 "$rounds"); do
    echo "== round $round"
    openssl speed -evp sha256 -seconds 3 -bytes 65536 2>/dev/null |
        awk '/^sha256/ { printf "%-46s %8.1f MiB/s\n", "openssl sha256, 64 KiB buffers, one core", $2 * 1000 / 1048576 }'
    # The disk's own write rate for the same amount, no fsync (as the cache writes), as a ceiling.
    dd if=/dev/zero of="$work/dd" bs=1M count="$mib" 2>&1 |
        awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") t = $(i - 1); printf "%-46s %8.1f MiB/s\n", "dd write, same size, same disk", '"$mib"' / t }'
    rm -f "$work/dd"
    "$bin" "$work" "$mib" "$rss_mib"
done
