#!/usr/bin/env bash
# Puts llama.cpp's tokenizer test vectors (models/ggml-vocab-*: vocabulary-only GGUF files,
# texts and expected ids) into a cache outside the repository, for tests/llama_cpp_vocab_test.ts.
# They come from the git bundle of llama.cpp that the npm package node-llama-cpp ships.
set -euo pipefail

source "$(dirname "$0")/_llama_cpp_bundle.sh"
dest="$cache/llama-cpp-vocab-$version"
if [ -f "$dest/ggml-vocab-llama-spm.gguf.out" ]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
llama_cpp_bundle "$work"
mkdir -p "$work/out"
git -C "$work/llama.git" archive FETCH_HEAD models |
  tar -x -C "$work/out" --wildcards 'models/ggml-vocab-*'
mkdir -p "$cache"
rm -rf "$dest"
mv "$work/out/models" "$dest"
echo "llama.cpp vocab test files in $dest"
