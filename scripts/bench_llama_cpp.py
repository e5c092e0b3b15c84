"""llama.cpp's side of `ferry bench --vs-llama-cpp`: runs llama-bench's tests through llama-cpp-python's
low-level API, driven by ferry over a pipe, one JSON object per line each way.

ferry starts this script and reads one hello line: {"version": "0.3.36", "system": "..."} or, when the
llama_cpp package cannot be imported, {"error": "...", "install": "pip install llama-cpp-python"}.
Then, per request:

  {"op": "load", "model": PATH, "mmap": true, "threads": 2, "n_batch": 2048, "n_ubatch": 512,
   "type_k": 1, "type_v": 1, "flash_attn": "auto", "n_ctx": 4736}   -> {"ok": true} | {"error": MSG}
  {"op": "run", "n_prompt": 512, "n_gen": 0, "n_depth": 0}          -> {"ns": NANOSECONDS} | {"error": MSG}
  {"op": "quit"}

A run is what llama-bench times: the prompt in llama_decode calls of n_batch tokens (split by llama.cpp
into n_ubatch micro-batches), then n_gen single-token llama_decode calls, with random token ids; the
n_depth tokens before it are filled untimed (once, then cut back to n_depth with llama_memory_seq_rm,
which is exact: the KV cache holds each position independently). type_k / type_v are ggml type ids.

usage: ferry starts it; by hand: echo '{"op":"quit"}' | .venv/bin/python scripts/bench_llama_cpp.py
"""
import json
import random
import signal
import sys
import time


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Runner:
    def __init__(self, llama_cpp):
        self.l = llama_cpp
        self.model = None
        self.model_key = None
        self.ctx = None
        self.batch = None
        self.depth = -1  # tokens of depth filling the cache now; -1 = none valid
        self.rng = random.Random(1234)

    def free_context(self):
        if self.batch is not None:
            self.l.llama_batch_free(self.batch)
            self.batch = None
        if self.ctx is not None:
            self.l.llama_free(self.ctx)
            self.ctx = None
        self.depth = -1

    def load(self, req):
        l = self.l
        self.free_context()
        key = (req["model"], bool(req["mmap"]))
        if self.model_key != key:
            if self.model is not None:
                l.llama_model_free(self.model)
                self.model = None
            mp = l.llama_model_default_params()
            mp.use_mmap = bool(req["mmap"])
            mp.n_gpu_layers = 0
            self.model = l.llama_model_load_from_file(req["model"].encode(), mp)
            if not self.model:
                self.model_key = None
                raise RuntimeError(f"llama.cpp could not load {req['model']}")
            self.model_key = key
        self.n_vocab = l.llama_vocab_n_tokens(l.llama_model_get_vocab(self.model))
        cp = l.llama_context_default_params()
        cp.n_ctx = int(req["n_ctx"])
        cp.n_batch = int(req["n_batch"])
        cp.n_ubatch = int(req["n_ubatch"])
        cp.n_seq_max = 1
        cp.n_threads = cp.n_threads_batch = int(req["threads"])
        cp.type_k = int(req["type_k"])
        cp.type_v = int(req["type_v"])
        cp.flash_attn_type = {"on": l.LLAMA_FLASH_ATTN_TYPE_ENABLED, "off": l.LLAMA_FLASH_ATTN_TYPE_DISABLED,
                              "auto": l.LLAMA_FLASH_ATTN_TYPE_AUTO}[req["flash_attn"]]
        cp.no_perf = True
        self.ctx = l.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create the context (type_k/type_v/flash_attn combination?)")
        self.n_batch = int(req["n_batch"])
        self.batch = l.llama_batch_init(self.n_batch, 0, 1)

    def decode(self, tokens, pos0):
        """tokens at positions pos0.., in llama_decode calls of at most n_batch tokens; last logits only."""
        l, b = self.l, self.batch
        for start in range(0, len(tokens), self.n_batch):
            part = tokens[start:start + self.n_batch]
            for i, t in enumerate(part):
                b.token[i] = t
                b.pos[i] = pos0 + start + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = i == len(part) - 1
            b.n_tokens = len(part)
            rc = l.llama_decode(self.ctx, b)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc}")
        l.llama_synchronize(self.ctx)

    def random_tokens(self, n):
        return [self.rng.randrange(self.n_vocab) for _ in range(n)]

    def run(self, req):
        l = self.l
        n_prompt, n_gen, n_depth = int(req["n_prompt"]), int(req["n_gen"]), int(req["n_depth"])
        mem = l.llama_get_memory(self.ctx)
        if self.depth != n_depth:
            l.llama_memory_clear(mem, True)
            if n_depth > 0:
                self.decode(self.random_tokens(n_depth), 0)
        elif not l.llama_memory_seq_rm(mem, 0, n_depth, -1):
            raise RuntimeError("llama_memory_seq_rm failed")
        self.depth = n_depth
        prompt = self.random_tokens(n_prompt)
        gen = self.random_tokens(n_gen)
        t0 = time.perf_counter_ns()
        if n_prompt:
            self.decode(prompt, n_depth)
        for i, t in enumerate(gen):
            self.decode([t], n_depth + n_prompt + i)
        return time.perf_counter_ns() - t0


def main():
    # Ctrl-C belongs to ferry, which reports what finished; this side ends when its input closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import llama_cpp
    except ImportError as e:
        reply({"error": f"the llama_cpp package is not importable by {sys.executable} ({e})",
               "install": "pip install llama-cpp-python"})
        return 0
    silence = llama_cpp.llama_log_callback(lambda level, text, user: None)
    llama_cpp.llama_log_set(silence, None)
    llama_cpp.llama_backend_init()
    runner = Runner(llama_cpp)
    reply({"version": llama_cpp.__version__, "system": llama_cpp.llama_print_system_info().decode().strip()})
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "quit":
                break
            if req["op"] == "load":
                runner.load(req)
                reply({"ok": True})
            elif req["op"] == "run":
                reply({"ns": runner.run(req)})
            else:
                reply({"error": f"unknown op {req['op']!r}"})
        except (RuntimeError, KeyError, ValueError) as e:
            reply({"error": str(e)})
    runner.free_context()
    return 0


if __name__ == "__main__":
    sys.exit(main())
