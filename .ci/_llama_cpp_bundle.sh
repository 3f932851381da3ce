# Sourced by the .ci/llama_cpp_*.sh scripts: the node-llama-cpp version they take llama.cpp
# from, the test cache they fill, and llama_cpp_bundle WORK, which fetches the git bundle of
# llama.cpp that the npm package node-llama-cpp@$version ships into the bare repository
# WORK/llama.git, its tree at FETCH_HEAD.
version=3.22.1
cache="${RILL_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rill-tests}"

llama_cpp_bundle() {
  local work="$1"
  (cd "$work" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
  tar -xzf "$work/node-llama-cpp-$version.tgz" -C "$work" package/llama/gitRelease.bundle
  git init -q --bare "$work/llama.git"
  git -C "$work/llama.git" fetch -q "$work/package/llama/gitRelease.bundle" HEAD
}
