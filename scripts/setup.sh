#!/usr/bin/env bash
# First run on a fresh machine: install what is missing, build a Release binary, fetch the default
# model and run ferry's main job on it: a short completion with `ferry run` (then try `build/bin/ferry chat`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
scripts/get_model.sh
build/bin/ferry run -p "The three primary colors are" -n 48 --temp 0
