#!/usr/bin/env bash
# Builds the four kernel modules {relaxed, simd128} x {private, shared memory} into
# kernels/wasm (or the directory given as $1), byte for byte reproducibly.
# Needs Debian 12 packages rustc-web cargo-web rust-web-src lld-19 (see .ci/run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$here/wasm}" && cd "${1:-$here/wasm}" && pwd)"
target_dir="${RILL_KERNELS_TARGET:-$here/target}"

# Debian's toolchain by full path: a rustup cargo earlier on PATH must not be picked up.
cargo=/usr/bin/cargo
rustc=/usr/bin/rustc
linker=wasm-ld-19
for tool in "$cargo" "$rustc" "/usr/bin/$linker"; do
  [ -x "$tool" ] || { echo "build.sh: missing $tool (apt-get install rustc-web cargo-web rust-web-src lld-19)" >&2; exit 1; }
done
src="$("$rustc" --print sysroot)/lib/rustlib/src/rust"
[ -d "$src/library/vendor" ] || { echo "build.sh: missing $src/library/vendor (apt-get install rust-web-src)" >&2; exit 1; }

common="-C linker=$linker -C linker-flavor=wasm-ld"
common+=" --remap-path-prefix=$here=/rill/kernels --remap-path-prefix=$target_dir=/rill/target"
common+=" --remap-path-prefix=$src=/rust"
common+=" -C link-arg=--import-memory -C link-arg=--max-memory=4294967296"
common+=" -C link-arg=--export=__heap_base"
shared="-C link-arg=--shared-memory -C link-arg=--export=__stack_pointer"

build() { # name target-features extra-rustflags
  local name="$1" features="$2" extra="$3"
  local log="$target_dir/$name.log"
  mkdir -p "$target_dir"
  env -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
    RUSTC_BOOTSTRAP=1 RUSTC="$rustc" SOURCE_DATE_EPOCH=0 \
    RUSTFLAGS="-C target-feature=$features $common $extra" \
    "$cargo" build --quiet --release --locked --offline \
    --manifest-path "$here/Cargo.toml" \
    --target wasm32-unknown-unknown --target-dir "$target_dir/$name" \
    -Zbuild-std=core,panic_abort \
    --config 'source.crates-io.replace-with="debian-std-vendor"' \
    --config "source.debian-std-vendor.directory=\"$src/library/vendor\"" 2>"$log" ||
    { cat "$log" >&2; echo "build.sh: cargo failed for $name" >&2; exit 1; }
  cp "$target_dir/$name/wasm32-unknown-unknown/release/rill_kernels.wasm" "$out/kernels_$name.wasm"
}

{
  "$rustc" --version
  "$cargo" --version
  "/usr/bin/$linker" --version
} >"$out/toolchain.txt"

build simd128 "+simd128" ""
build relaxed "+simd128,+relaxed-simd" ""
build simd128_mt "+simd128,+atomics,+bulk-memory,+mutable-globals" "$shared"
build relaxed_mt "+simd128,+relaxed-simd,+atomics,+bulk-memory,+mutable-globals" "$shared"
ls -l "$out"/kernels_*.wasm
