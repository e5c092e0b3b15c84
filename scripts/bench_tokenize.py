"""Tokenizer speed, ferry vs llama.cpp, on the whole WikiText-2 test file (one string, BOS as the
vocab asks, no special parsing: what llama-perplexity does).

Runs are interleaved (ferry, llama.cpp, ferry, ...) because this machine's speed drifts; the
medians and their ratio are printed as a markdown table. Both sides time tokenization only, not
loading: ferry reports it with -v, llama.cpp (llama-cpp-python) is timed around Llama.tokenize.

usage: .venv/bin/python scripts/bench_tokenize.py [--ferry build/bin/ferry] [--runs 7] NAME=VOCAB.gguf ...
"""
import argparse
import re
import statistics
import subprocess
import sys
import time

import llama_cpp


def ferry_ms(ferry, vocab, text_path):
    out = subprocess.run([ferry, "tokenize", "-v", "-m", vocab, "-f", text_path, "--show-count"],
                         capture_output=True, text=True, check=True)
    m = re.search(r"tokenize: (\d+) bytes -> (\d+) tokens in ([\d.]+) ms", out.stderr)
    return float(m.group(3)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", default="build/bin/ferry")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--text", default="tests/data/tokenizer/wiki.test.raw")
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    data = open(args.text, "rb").read()
    print(f"llama-cpp-python {llama_cpp.__version__}; {len(data)} bytes; {args.runs} interleaved runs each\n")
    print("| vocab | tokens | ferry ms (median) | llama.cpp ms (median) | ferry MB/s | llama.cpp MB/s | speed ratio ferry/llama.cpp |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.models:
        name, path = spec.split("=", 1)
        llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true" or \
            llm.metadata.get("tokenizer.ggml.model") == "llama" and \
            llm.metadata.get("tokenizer.ggml.add_bos_token") is None
        f_times, l_times = [], []
        n_f = n_l = 0
        for _ in range(args.runs):
            ms, n_f = ferry_ms(args.ferry, path, args.text)
            f_times.append(ms)
            t0 = time.perf_counter()
            ids = llm.tokenize(data, add_bos=add_bos, special=False)
            l_times.append((time.perf_counter() - t0) * 1e3)
            n_l = len(ids)
        f, l = statistics.median(f_times), statistics.median(l_times)
        note = "" if n_f == n_l else f" (token counts differ: {n_f} vs {n_l})"
        print(f"| {name} | {n_f}{note} | {f:.1f} | {l:.1f} | {len(data) / 1e3 / f:.1f} | {len(data) / 1e3 / l:.1f} | {l / f:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
