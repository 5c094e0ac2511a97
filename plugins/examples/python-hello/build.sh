#!/usr/bin/env bash
# Builds python-hello.wasm, a sluice plugin component, with componentize-py.
#
#   ./build.sh [OUT_DIR]     (default: this script's directory)
#
# Needs componentize-py on PATH: pip install componentize-py==0.25.1
# Works from any directory; OUT_DIR is relative to the current one.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="$(cd "$here/../../../wit" && pwd)"
out_dir="${1:-$here}"

if ! command -v componentize-py >/dev/null 2>&1; then
    echo "error: componentize-py is not on PATH." >&2
    echo "Install it with: pip install componentize-py==$COMPONENTIZE_PY_VERSION" >&2
    exit 1
fi

found="$(componentize-py --version | awk '{print $2}')"
if [[ "$found" != "$COMPONENTIZE_PY_VERSION" ]]; then
    echo "warning: componentize-py $found found; this example was built with" \
        "$COMPONENTIZE_PY_VERSION" >&2
fi

mkdir -p "$out_dir"
out="$(cd "$out_dir" && pwd)/python-hello.wasm"

# Build from a scratch copy of the app: componentize-py writes __pycache__
# beside the sources it imports, and the source tree should stay clean.
# It generates the `wit_world` bindings itself, so nothing is generated
# beforehand. (For editor completion, run
# `componentize-py -d ../../../wit -w plugin bindings .bindings` here;
# `.bindings/` is gitignored.)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/app.py" "$work/"

cd "$work"
componentize-py -d "$wit" -w plugin componentize app -p "$work" -o "$out"

echo "built $out ($(wc -c <"$out") bytes)"
