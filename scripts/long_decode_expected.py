"""llama.cpp's logits of a long token-by-token decode, the reference for tests/model/test_long_decode.cpp.

llama.cpp's CPU flash attention takes another path once a one-token micro-batch sees a KV view of 512
cells or more (the view is the cells in use padded to 256, at most the context): each of its n_threads
threads runs the one-row kernel over its share of the cells, ceil(view / n_threads), and the partial
results are merged head by head (ggml-cpu ops.cpp: the split-KV path). This script decodes a fixed
pseudo-random token sequence one token per llama_decode (n_batch = n_ubatch = 1, flash attention on,
F16 cache) in a context of 1024 and keeps the logits of positions on both sides of the 256- and
512-cell boundaries, for 2 and 3 threads. The test uses the tiny golden llama-Q8_0, whose short
token-by-token run ferry already reproduces bit for bit (so any difference is the attention's).

Output, per thread count T: DIR/NAME.long_decode.tT.f32 (float32 rows of n_vocab, the positions in
order) and DIR/NAME.long_decode.txt (llama-cpp-python's version, the context size, the thread counts,
the positions and the tokens), NAME being the model file's name without .gguf.

usage: .venv/bin/python scripts/long_decode_expected.py tests/data/models/llama-Q8_0.gguf tests/data/models
"""
import os
import sys

import llama_cpp
import numpy as np

N_CTX = 1024
N_TOKENS = 600
POSITIONS = list(range(250, 262)) + list(range(508, 518)) + list(range(590, 600))
THREADS = [2, 3]


def tokens(n_vocab):
    # A fixed LCG, so the sequence does not depend on numpy's generators.
    x, out = 12345, []
    for _ in range(N_TOKENS):
        x = (x * 1103515245 + 12345) % (1 << 31)
        out.append(x % n_vocab)
    return out


def main():
    model, out_dir = sys.argv[1], sys.argv[2]
    name = os.path.basename(model).removesuffix(".gguf")
    seq = None
    for n_threads in THREADS:
        llm = llama_cpp.Llama(model_path=model, n_ctx=N_CTX, n_batch=1, n_ubatch=1, n_threads=n_threads,
                              n_threads_batch=n_threads, flash_attn=True, logits_all=False, verbose=False)
        n_vocab = llm.n_vocab()
        seq = tokens(n_vocab)
        rows = []
        for pos, tok in enumerate(seq):
            llm.eval([tok])
            if pos in POSITIONS:
                raw = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
                rows.append(np.ctypeslib.as_array(raw, shape=(n_vocab,)).astype(np.float32).copy())
        np.stack(rows).tofile(os.path.join(out_dir, f"{name}.long_decode.t{n_threads}.f32"))
        del llm
    with open(os.path.join(out_dir, f"{name}.long_decode.txt"), "w") as f:
        f.write(f"llama_cpp_python {llama_cpp.__version__}\n")
        f.write(f"n_ctx {N_CTX}\n")
        f.write("threads " + " ".join(map(str, THREADS)) + "\n")
        f.write("positions " + " ".join(map(str, POSITIONS)) + "\n")
        f.write("tokens " + " ".join(map(str, seq)) + "\n")


if __name__ == "__main__":
    main()
