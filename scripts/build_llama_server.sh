#!/usr/bin/env bash
# Builds llama.cpp's llama-server (CPU only) from the llama.cpp tree that llama-cpp-python's source
# distribution vendors, outside the repository, for the ferry-vs-llama-server table in docs/serving.md.
#
#   scripts/build_llama_server.sh [DIR]     (default DIR: /work/llsrc)
#
# Env: LLAMA_CPP_PYTHON_VERSION (default 0.3.36, the version in scripts/requirements.txt),
#      JOBS (default 1: the machines are shared), PIP (default .venv/bin/pip, else pip3).
# Result: DIR/build/bin/llama-server; the llama.cpp commit is printed (from llama-cpp-python's CHANGELOG).
# Nothing is downloaded but the sdist from PyPI: no curl, no OpenSSL, no prebuilt web UI.
# On a virtual machine whose CPU lists AMX but does not enable its tile state, -march=native compiles
# ggml's AMX kernels and llama-server dies with SIGILL (tilezero) at the first matmul: run it with
# --no-repack (no extra CPU buffer types, so no AMX), as docs/serving.md does.
set -euo pipefail

dir="${1:-/work/llsrc}"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
jobs="${JOBS:-1}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
pip="${PIP:-}"
if [[ -z "$pip" ]]; then
  if [[ -x "$repo/.venv/bin/pip" ]]; then pip="$repo/.venv/bin/pip"; else pip="pip3"; fi
fi

case "$(realpath -m "$dir")/" in
  "$repo"/*) echo "build_llama_server.sh: DIR must be outside the repository ($repo)" >&2; exit 2 ;;
esac

mkdir -p "$dir"
sdist="$dir/llama_cpp_python-$version.tar.gz"
if [[ ! -f "$sdist" ]]; then
  "$pip" download "llama-cpp-python==$version" --no-binary :all: --no-deps -d "$dir"
fi
src="$dir/llama_cpp_python-$version"
if [[ ! -f "$src/vendor/llama.cpp/CMakeLists.txt" ]]; then
  tar -xzf "$sdist" -C "$dir"
fi
llama="$src/vendor/llama.cpp"
commit="$(grep -m1 -o 'llama.cpp@[0-9a-f]*' "$src/CHANGELOG.md" | cut -d@ -f2 || true)"

cmake -S "$llama" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
  ${LLAMA_CMAKE_ARGS:-}
nice -n 10 cmake --build "$dir/build" --target llama-server -j"$jobs"

echo "llama-server: $dir/build/bin/llama-server"
echo "llama.cpp: ${commit:-unknown} (vendored by llama-cpp-python $version)"
