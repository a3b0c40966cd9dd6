#!/usr/bin/env bash
# Starts peerdistd on its embedded defaults (127.0.0.1:8080, data in ./data), after installing
# any missing Debian package. Arguments are passed on: scripts/run.sh --port 0
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh
exec swift run -c release peerdistd "$@"
