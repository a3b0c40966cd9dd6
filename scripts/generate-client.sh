#!/usr/bin/env bash
# Regenerates Sources/PeerDistClient/Generated/*.swift from openapi.yaml with
# swift-openapi-generator (built from Tools/openapi-generator, a package of its own so that the
# main build never builds the generator). Fails when the generator reports any diagnostic
# (warning or error) about openapi.yaml.
#
#   scripts/generate-client.sh          regenerate in place
#   scripts/generate-client.sh --check  fail (and show the diff) when the committed files are stale
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[[ "${1:-}" == "--check" ]] && check=1

tools=Tools/openapi-generator
swift build --package-path "$tools" --product swift-openapi-generator >/dev/null
generator="$(swift build --package-path "$tools" --show-bin-path)/swift-openapi-generator"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$generator" generate openapi.yaml --config "$tools/openapi-generator-config.yaml" \
    --output-directory "$work/out" --diagnostics-output-path "$work/diagnostics.yaml" >"$work/log" 2>&1 || {
    cat "$work/log" >&2
    [[ -f "$work/diagnostics.yaml" ]] && cat "$work/diagnostics.yaml" >&2
    echo "swift-openapi-generator refused openapi.yaml" >&2
    exit 1
}
# The diagnostics file lists every warning and note the generator raised; an accepted file has none.
if ! grep -qx 'diagnostics: \[\]' "$work/diagnostics.yaml"; then
    cat "$work/diagnostics.yaml" >&2
    echo "swift-openapi-generator reported diagnostics on openapi.yaml" >&2
    exit 1
fi

# The generator writes `public import` guarded by `@diagnose(UnusedImportAccess, as: ignored)` for
# compilers >= 6.4 only; Swift 6.3 warns some 230 times that those imports are unused publicly. A
# plain `import` (public by default in this package's language mode) means the same and does not.
sed -i -e 's/^public import /import /' -e 's/^@_spi(Generated) public import /@_spi(Generated) import /' "$work/out/"*.swift

dest=Sources/PeerDistClient/Generated
if [[ $check == 1 ]]; then
    if ! diff -ru "$dest" "$work/out"; then
        echo "$dest is stale: run scripts/generate-client.sh and commit the result" >&2
        exit 1
    fi
    echo "generated client is current"
else
    rm -rf "$dest"
    mkdir -p "$dest"
    cp "$work/out/"*.swift "$dest/"
    echo "wrote $dest"
fi
