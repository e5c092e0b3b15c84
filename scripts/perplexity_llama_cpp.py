"""llama.cpp's perplexity on a GGUF through llama-cpp-python, by llama-perplexity's method, so that
`ferry perplexity` can be compared with it where no llama-perplexity binary exists:

tokenize the whole text (add_special: BOS if the vocab asks), n_chunk = min(--chunks, tokens // c),
evaluate each chunk from an empty cache with its first token replaced by BOS (when the vocab adds
one), score positions c/2 … c-2 on the next token; print the running PPL per chunk as `[i]x,` and
`Final estimate: PPL = X +/- σ`. With --kl-divergence-base FILE it also writes the log-probabilities
in llama-perplexity's base-file layout (see src/tools/kld_base.h), which `ferry perplexity
--kl-divergence` reads.

usage: .venv/bin/python scripts/perplexity_llama_cpp.py -m MODEL -f TEXT [-c 512] [--chunks N] [-t 2]
       [--kl-divergence-base FILE] [--flash-attn on|off]

--flash-attn on is llama.cpp's flash attention, what llama-perplexity and llama-cli use on the CPU
backend by default (`-fa auto`; the golden logits were made so); the default here is off, as
llama-cpp-python's. The two differ on quantized models by as much as ferry differs from either
(SmolLM2-135M Q4_1, 3 chunks of 512: mean KLD 3.6e-3 between them; docs/quality.md).
"""
import argparse
import math
import struct
import sys
import time

import llama_cpp
import numpy as np


def encode_row(logits):
    """One row of the base-file layout: {scale, min_log_prob} as float32, then one uint16 per token."""
    logits = logits.astype(np.float32)
    max_logit, min_logit = np.float32(logits.max()), np.float32(logits.min())
    min_logit = max(min_logit, np.float32(max_logit - np.float32(16)))
    log_sum_exp = np.float32(math.log(np.exp((logits - max_logit).astype(np.float64)).sum()))
    min_log_prob = np.float32(min_logit - max_logit - log_sum_exp)
    scale = np.float32((max_logit - min_logit) / np.float32(65535))
    if scale != 0:
        u = np.rint(np.float32(1) / scale * (logits - min_logit)).astype(np.int64)
        u = np.where(logits > min_logit, u, 0).astype(np.uint16)
    else:
        u = np.zeros(len(logits), dtype=np.uint16)
    n_pad = 2 * ((len(logits) + 1) // 2) - len(logits)
    head = np.array([scale, min_log_prob], dtype=np.float32).view(np.uint16)
    return np.concatenate([head, u, np.zeros(n_pad, dtype=np.uint16)]).tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-f", "--file", required=True)
    ap.add_argument("-c", "--ctx-size", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=-1)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--kl-divergence-base", default="")
    ap.add_argument("--flash-attn", choices=["on", "off"], default="off")
    args = ap.parse_args()
    n_ctx = args.ctx_size

    llm = llama_cpp.Llama(model_path=args.model, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=args.threads,
                          n_threads_batch=args.threads, logits_all=True, verbose=False,
                          flash_attn=args.flash_attn == "on")
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    bos = llm.token_bos()
    n_vocab = llm.n_vocab()
    text = open(args.file, "rb").read()
    tokens = llm.tokenize(text, add_bos=True, special=False)
    if len(tokens) < 2 * n_ctx:
        sys.exit(f"you need at least {2 * n_ctx} tokens; the text tokenizes to only {len(tokens)}")
    n_chunk = len(tokens) // n_ctx if args.chunks < 0 else min(args.chunks, len(tokens) // n_ctx)
    first = n_ctx // 2
    print(f"llama-cpp-python {llama_cpp.__version__}: {args.model}, {len(tokens)} tokens, {n_chunk} chunks, "
          f"n_ctx={n_ctx}, add_bos={add_bos}", file=sys.stderr)

    out = None
    if args.kl_divergence_base:
        out = open(args.kl_divergence_base, "wb")
        out.write(b"_logits_" + struct.pack("<Iii", n_ctx, n_vocab, n_chunk))
        out.write(np.asarray(tokens[:n_chunk * n_ctx], dtype=np.int32).tobytes())

    nll = nll2 = 0.0
    count = 0
    t0 = time.time()
    for c in range(n_chunk):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if add_bos:
            chunk[0] = bos
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[:n_ctx], dtype=np.float32)
        for j in range(first, n_ctx - 1):
            row = logits[j]
            m = float(row.max())
            lse = m + math.log(np.exp((row - m).astype(np.float64)).sum())
            v = lse - float(row[chunk[j + 1]])
            nll += v
            nll2 += v * v
            count += 1
            if out:
                out.write(encode_row(row))
        print(f"[{c + 1}]{math.exp(nll / count):.4f},", end="", flush=True)
        if c == 0:
            print(f"\n{time.time() - t0:.2f} seconds per pass", file=sys.stderr)
    print()
    if out:
        out.close()
    mean = nll / count
    var = nll2 / count - mean * mean
    ppl = math.exp(mean)
    print(f"Final estimate: PPL = {ppl:.4f} +/- {math.sqrt(var / (count - 1)) * ppl:.5f}")


if __name__ == "__main__":
    main()
