#!/usr/bin/env bash
# Runs every test (real servers on port 0), after installing any missing Debian package.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh
exec swift test "$@"
