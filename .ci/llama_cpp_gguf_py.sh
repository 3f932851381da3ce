#!/usr/bin/env bash
# Puts llama.cpp's Python reading of its quantized blocks (gguf-py's quants.py, with the two
# modules it imports) into a cache outside the repository, for src/formats/ggml_quants_test.ts,
# which checks Rill's reading of them against it. It comes from the git bundle of llama.cpp that
# the npm package node-llama-cpp ships; it needs numpy.
set -euo pipefail

source "$(dirname "$0")/_llama_cpp_bundle.sh"
dest="$cache/llama-cpp-gguf-py-$version"
if [ -f "$dest/gguf/quants.py" ]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
llama_cpp_bundle "$work"
mkdir -p "$work/out/gguf"
for module in constants lazy quants; do
  git -C "$work/llama.git" show "FETCH_HEAD:gguf-py/gguf/$module.py" >"$work/out/gguf/$module.py"
done
# A package of these three alone: the full package imports modules that need more than numpy.
: >"$work/out/gguf/__init__.py"
mkdir -p "$cache"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "llama.cpp's gguf-py quants in $dest"
