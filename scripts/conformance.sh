#!/usr/bin/env bash
# Contract conformance: validates openapi.yaml, then runs schemathesis against a live peerdistd
# (loopback, port 0, temporary data directory) with five checks over every operation. Exits
# non-zero on any failure. Needs python3 with openapi-spec-validator and schemathesis 4.x.
#
# Two schemathesis runs, because /admin/* changes global state: the first covers every
# operation outside /admin/ (the service stays available and enabled, so no 403/503 masks the
# rest); the second covers /admin/* alone.
#
# Environment: CONFORMANCE_SCRATCH (swift build scratch path, default .build-conformance),
# CONFORMANCE_MAX_EXAMPLES (per operation, default 25), CONFORMANCE_SEED (default 20261124),
# CONFORMANCE_TIMEOUT (seconds per schemathesis run, default 180).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scratch=${CONFORMANCE_SCRATCH:-.build-conformance}
max_examples=${CONFORMANCE_MAX_EXAMPLES:-25}
seed=${CONFORMANCE_SEED:-20261124}
run_timeout=${CONFORMANCE_TIMEOUT:-180}
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance

echo "== openapi-spec-validator openapi.yaml"
openapi-spec-validator openapi.yaml

echo "== swift build --scratch-path $scratch --product peerdistd"
swift build --scratch-path "$scratch" --product peerdistd
bin="$root/$scratch/debug/peerdistd"

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A short --max-wait keeps every long-poll (timeoutMs, Prefer: wait) under half a second.
"$bin" --host 127.0.0.1 --port 0 --data-dir "$work/data" --max-wait 300 --log-level error \
    >"$work/stdout" 2>"$work/stderr" &
server_pid=$!

port=""
for _ in $(seq 100); do
    line=$(head -n 1 "$work/stdout" 2>/dev/null || true)
    if [[ "$line" == "listening on "* ]]; then
        port=${line##*:}
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$port" ]]; then
    echo "peerdistd did not start:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
url="http://127.0.0.1:$port"
echo "== peerdistd listening on $url"

run_schemathesis() {
    # Run from the temporary directory so that nothing (reports, caches) lands in the repository.
    local config=()
    if [[ -n "${SCHEMATHESIS_CONFIG:-}" ]]; then config=(--config-file "$SCHEMATHESIS_CONFIG"); fi
    (cd "$work" && timeout "$run_timeout" schemathesis "${config[@]}" run "$root/openapi.yaml" \
        --url "$url" \
        --checks "$checks" \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 10 \
        --no-color \
        "$@")
}

status=0
echo "== schemathesis: every operation outside /admin/ (mostly unknown handles: 404)"
run_schemathesis --exclude-path-regex '^/admin/' || status=1

# Real state, so that success answers are checked too: an instance, published content, an
# open content-information handle and a finished read operation, and a retrieval of the content;
# the generated requests of the next run use them as their path parameters.
member() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
post() { curl -sS --fail-with-body -X POST "$@"; }
content_id=Y29uZm9ybWFuY2U # base64url("conformance")
base="$url/instances"
h=$(post -H 'Content-Type: application/json' -d '{"version":2}' "$base" | member handle)
s=$(post -H 'Content-Type: application/json' -d '{"contentLength":5,"version":1}' \
    "$base/$h/content/$content_id/streams" | member stream)
post -H 'Content-Type: application/octet-stream' -H 'Prefer: wait=1' --data-binary hello \
    "$base/$h/content/$content_id/streams/$s/data?op=append1" >/dev/null
post -H 'Prefer: wait=1' "$base/$h/content/$content_id/streams/$s/complete" >/dev/null
c=$(post -H 'Content-Type: application/json' -d '{}' "$base/$h/content/$content_id/contentinfo" | member contentInfo)
post -H 'Prefer: wait=1' "$base/$h/content/$content_id/contentinfo/$c/reads?maxBytes=64&op=read1" >/dev/null
# A retrieval of that content with its content information complete, and a read of it that missed.
r=$(post -H 'Content-Type: application/json' -d '{"contentTag":"00112233445566778899aabbccddeeff"}' "$base/$h/retrievals" | member retrieval)
curl -sS --fail "$base/$h/content/$content_id/contentinfo?version=1" -o "$work/contentinfo"
post -H 'Content-Type: application/octet-stream' -H 'Prefer: wait=1' --data-binary "@$work/contentinfo" \
    "$base/$h/retrievals/$r/contentinfo" >/dev/null
post -H 'Prefer: wait=1' "$base/$h/retrievals/$r/contentinfo/complete" >/dev/null
post -H 'Content-Type: application/json' -H 'Prefer: wait=1' -d '{"mode":"block","offset":0,"maxBytes":5,"timeoutMs":0}' \
    "$base/$h/retrievals/$r/reads?op=miss1" >/dev/null
printf '[parameters]\n"path.h" = "%s"\n"path.id" = "%s"\n"path.s" = "%s"\n"path.c" = "%s"\n"path.r" = "%s"\n"path.p" = "default"\n"path.op" = "read1"\n' \
    "$h" "$content_id" "$s" "$c" "$r" >"$work/live.toml"
echo "== schemathesis: operations under /instances/{h} on a live instance"
SCHEMATHESIS_CONFIG="$work/live.toml" run_schemathesis --include-path-regex '^/instances/' \
    --exclude-operation-id shutdownInstance --exclude-operation-id unpublish --exclude-operation-id closeRetrieval || status=1

echo "== schemathesis: /admin/* (last: it changes global state)"
run_schemathesis --include-path-regex '^/admin/' --phases examples,coverage,fuzzing || status=1

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "peerdistd exited during the run:" >&2
    cat "$work/stderr" >&2
    status=1
fi
exit "$status"
