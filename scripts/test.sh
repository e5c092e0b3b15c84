#!/usr/bin/env bash
# Builds ferry and runs the whole test suite, as CI does (.ci/run calls exactly this):
#   1. installs what is missing (scripts/install_deps.sh) and fetches the default model;
#   2. Release build with -Werror, every CTest test (unit, e2e);
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build, the unit tests once more;
#   4. short libFuzzer runs of the GGUF reader, chat templates and tokenizers (clang), seeded from fuzz/corpus.
# Build folders: build/ and build-asan/, build-fuzz/. FERRY_TEST_FUZZ_SECONDS (default 20 per target) sets 4.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="$(nproc 2>/dev/null || echo 2)"
scripts/install_deps.sh
scripts/get_model.sh

echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (unit tests)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_SANITIZE=ON -DFERRY_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit

seconds="${FERRY_TEST_FUZZ_SECONDS:-20}"
if command -v clang++ >/dev/null 2>&1 && [ "$seconds" -gt 0 ]; then
    echo "== libFuzzer: GGUF reader, chat templates, tokenizers, ${seconds}s each"
    CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON \
        -DFERRY_BUILD_TESTS=OFF >/dev/null
    cmake --build build-fuzz -j "$jobs" --target gguf_reader_fuzz template_fuzz tokenizer_fuzz
    for target in gguf_reader template tokenizer; do
        corpus="$(mktemp -d)"
        cp "fuzz/corpus/${target%_reader}/"* "$corpus/"
        build-fuzz/fuzz/${target}_fuzz "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 \
            -malloc_limit_mb=512 -timeout=10 -print_final_stats=0 2>&1 | tail -n 1
        rm -rf "$corpus"
    done
else
    echo "== libFuzzer: skipped (needs clang++; FERRY_TEST_FUZZ_SECONDS=$seconds)"
fi
echo "== all tests passed"
