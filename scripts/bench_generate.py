"""Prompt processing and generation speed, ferry vs llama.cpp, interleaved in one run — a stand-in
until `ferry bench` (llama-bench compatible) exists.

Both sides get the same tokens (the tokenizers are identical): the first P tokens of WikiText-2 as
the prompt, then G greedy tokens (end-of-generation ignored), the same thread count. ferry's figures
are the ones `ferry run` prints (prompt t/s, generation t/s); llama.cpp's are timed around
llama_decode calls in llama-cpp-python (prompt in one batch, then one token per call). Medians of
the repetitions and the ratio ferry/llama.cpp.

usage: .venv/bin/python scripts/bench_generate.py [-m MODEL] [-p 512] [-n 128] [-t 2] [-r 5]
"""
import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time

import llama_cpp
import numpy as np


def ferry_once(ferry, model, prompt_file, n, threads):
    out = subprocess.run([ferry, "run", "-m", model, "-f", prompt_file, "-n", str(n), "--temp", "0", "--ignore-eos",
                          "-t", str(threads), "-c", "2048"], capture_output=True, text=True, check=True)
    m = re.search(r"prompt: (\d+) tokens in [\d.]+ ms \(([\d.]+) t/s\) \| generation: (\d+) tokens in [\d.]+ ms "
                  r"\(([\d.]+) t/s\)", out.stderr)
    return int(m.group(1)), float(m.group(2)), float(m.group(4))


def llama_once(llm, tokens, n):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(tokens)
    pp = len(tokens) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(n):
        raw = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        tok = int(np.ctypeslib.as_array(raw, shape=(llm.n_vocab(),)).argmax())
        llm.eval([tok])
    tg = n / (time.perf_counter() - t0)
    return pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--ferry", default="build/bin/ferry")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=5)
    args = ap.parse_args()

    llm = llama_cpp.Llama(model_path=args.model, n_ctx=2048, n_batch=args.p, n_ubatch=args.p, n_threads=args.t,
                          n_threads_batch=args.t, verbose=False)
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token") == "true"
    text = open("tests/data/tokenizer/wiki.test.raw", "rb").read()[:20000]
    tokens = llm.tokenize(text, add_bos=add_bos, special=False)[: args.p]
    prompt = llm.detokenize(tokens[1:] if add_bos else tokens).decode("utf-8")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(prompt)
    f_pp, f_tg, l_pp, l_tg = [], [], [], []
    for _ in range(args.r):
        n_prompt, pp, tg = ferry_once(args.ferry, args.model, f.name, args.n, args.t)
        f_pp.append(pp)
        f_tg.append(tg)
        pp, tg = llama_once(llm, tokens, args.n)
        l_pp.append(pp)
        l_tg.append(tg)
    if n_prompt != len(tokens):
        print(f"note: ferry's prompt has {n_prompt} tokens, llama.cpp's {len(tokens)}")
    print(f"model {args.model}, {args.t} threads, llama-cpp-python {llama_cpp.__version__}, {args.r} interleaved runs\n")
    print("| test | ferry t/s (median) | llama.cpp t/s (median) | ferry/llama.cpp |")
    print("|---|---|---|---|")
    for name, a, b in [(f"pp{args.p}", f_pp, l_pp), (f"tg{args.n}", f_tg, l_tg)]:
        fa, lb = statistics.median(a), statistics.median(b)
        print(f"| {name} | {fa:.1f} | {lb:.1f} | {fa / lb:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
