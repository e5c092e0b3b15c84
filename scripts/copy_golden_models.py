#!/usr/bin/env python3
"""Copies the tiny golden models that the model tests use from ../shared/golden/models into
tests/data/models/, with llama.cpp's logits and a plain-text summary of sequences.json and
manifest.json (so the C++ tests need no JSON parser).

    python3 scripts/copy_golden_models.py [GOLDEN_DIR]

Output (tests/data/models/):
    <file>.gguf                  the model
    <file>/seq{0..3}.f32         llama.cpp's batched logits, [n_tokens][n_vocab] float32
    <file>/seq2.decode.f32       the token-by-token run of sequence 2
    <file>.txt                   one `key values...` line each: arch, n_vocab, max_mean_kld,
                                 min_top1_agree, margin_nats, greedy_prompt, greedy_ids, greedy_gaps
                                 (limits: manifest.json's `recommended`, except LIMIT_OVERRIDES;
                                 reference_max_mean_kld / reference_min_top1_agree for the
                                 reference backend where REFERENCE_LIMITS has the file)
    sequences.txt                `seq <index> <ids...>` per sequence
"""
import json
import os
import shutil
import sys

# Per-file changes to manifest.json's recommended limits, with the reason. Since the CPU backend computes
# ggml's float order (docs/quality.md, "The golden quantized files against llama.cpp"), its batched and
# token-by-token logits of every file are within the manifest's limits (the Q4_K_M files' token-by-token
# runs bit for bit: 2e-13), and so are the split runs since the repacked Q4_K takes its GEMM order for
# every column of a product of 4 or more (qwen35-Q4_K_M's sequence 3 in micro-batches of 7: 1.4e-3 with
# llama.cpp's GEMV order for columns 5..7, 4.8e-4 now). No file needs an override.
LIMIT_OVERRIDES = {}

# Limits for the reference backend only (written as reference_* lines; tests/model/test_golden.cpp). The
# reference is the plain f32 oracle: it quantizes activations as ggml does but sums in its own order,
# so on the quantized Qwen3.5 files, where every Gated DeltaNet layer feeds re-quantized matmuls, it
# lands where the CPU backend was before it followed ggml's order (measured: qwen35-Q4_K_M 1.6e-3 ..
# 1.7e-3, qwen35moe-Q8_0 5.9e-4 .. 6.4e-4 with top-1 96.5%, qwen35moe-Q4_K_M 4.3e-4 .. 9.5e-4 with
# top-1 98%, qwen35moe-MXFP4_MOE about 6e-4 .. 8e-4).
REFERENCE_LIMITS = {
    "qwen35-Q4_K_M": {"max_mean_kld": 0.0025, "min_top1_agree": 0.96},
    "qwen35moe-Q8_0": {"max_mean_kld": 0.001, "min_top1_agree": 0.96},
    "qwen35moe-Q4_K_M": {"max_mean_kld": 0.0015, "min_top1_agree": 0.96},
    "qwen35moe-MXFP4_MOE": {"max_mean_kld": 0.001, "min_top1_agree": 0.96},
    "qwen35moe-mtp-MXFP4_MOE": {"max_mean_kld": 0.001, "min_top1_agree": 0.96},
}

FILES = ["llama-F16", "llama-Q8_0", "llama-Q4_K_M", "qwen3-F16", "gemma3-F16", "qwen3moe-F16", "qwen35-F16",
         "qwen35-Q4_K_M", "qwen35moe-F16", "qwen35moe-Q8_0", "qwen35moe-Q4_K_M", "qwen35moe-MXFP4_MOE",
         "qwen35moe-mtp-MXFP4_MOE"]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    golden = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "golden", "models")
    out = os.path.join(root, "tests", "data", "models")
    os.makedirs(out, exist_ok=True)
    manifest = json.load(open(os.path.join(golden, "manifest.json")))
    sequences = json.load(open(os.path.join(golden, "sequences.json")))
    with open(os.path.join(out, "sequences.txt"), "w") as f:
        for s in sequences["sequences"]:
            f.write("seq %d %s\n" % (s["index"], " ".join(str(i) for i in s["ids"])))
    for name in FILES:
        entry = manifest["files"][name]
        shutil.copyfile(os.path.join(golden, entry["file"]), os.path.join(out, name + ".gguf"))
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for path in entry["logits"] + [entry["decode_logits"]["file"]]:
            shutil.copyfile(os.path.join(golden, path), os.path.join(out, name, os.path.basename(path)))
        rec = dict(entry["recommended"], **LIMIT_OVERRIDES.get(name, {}))
        greedy = entry["greedy"]
        with open(os.path.join(out, name + ".txt"), "w") as f:
            f.write("arch %s\n" % entry["arch"])
            f.write("n_vocab %d\n" % manifest["n_vocab"])
            f.write("max_mean_kld %r\n" % rec["max_mean_kld"])
            f.write("min_top1_agree %r\n" % rec["min_top1_agree"])
            f.write("margin_nats %r\n" % rec["margin_nats"])
            for key, value in REFERENCE_LIMITS.get(name, {}).items():
                f.write("reference_%s %r\n" % (key, value))
            f.write("greedy_prompt %s\n" % " ".join(str(i) for i in greedy["prompt_ids"]))
            f.write("greedy_ids %s\n" % " ".join(str(i) for i in greedy["generated_ids"]))
            f.write("greedy_gaps %s\n" % " ".join(repr(g) for g in greedy["top1_minus_top2_logit"]))


if __name__ == "__main__":
    main()
