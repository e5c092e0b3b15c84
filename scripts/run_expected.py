"""Greedy completions of fixed prompts by llama.cpp (llama-cpp-python), the reference for
tests/tools/test_run.py: 64 tokens per prompt, temperature 0, BOS as the vocab asks, special
tokens parsed in the prompt (as `ferry run` and llama-completion do), 2 threads.

Each step also records llama.cpp's top-1 minus top-2 logit. Where that gap is tiny, the choice is a
near tie that any other summation order may flip, so the test compares ferry's text with the text
before the first step whose gap is below NEAR_TIE (`text_until_tie`).

With --kv-q8_0 the KV cache is Q8_0 for K and V with flash attention (llama.cpp's `-ctk q8_0 -ctv q8_0
-fa on`), for the first two prompts only (tests/data/run/expected_kv_q8_0.json).

usage: .venv/bin/python scripts/run_expected.py MODEL.gguf tests/data/run/expected.json [--kv-q8_0]
"""
import json
import sys

import llama_cpp
import numpy as np

NEAR_TIE = 0.25  # nats: quantized activations move logits by ~0.1-0.2 between implementations

PROMPTS = [
    "The capital of France is",
    "Here is a Python function that reverses a string:\n",
    "<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village,",
    "1, 2, 3, 4, 5,",
]


def main():
    model, out = sys.argv[1], sys.argv[2]
    kv_q8_0 = "--kv-q8_0" in sys.argv[3:]
    extra = dict(type_k=llama_cpp.GGML_TYPE_Q8_0, type_v=llama_cpp.GGML_TYPE_Q8_0, flash_attn=True) if kv_q8_0 else {}
    llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=2, logits_all=False, verbose=False, **extra)
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token") == "true"
    cases = []
    for prompt in PROMPTS[:2] if kv_q8_0 else PROMPTS:
        tokens = llm.tokenize(prompt.encode(), add_bos=add_bos, special=True)
        llm.reset()
        llm.eval(tokens)
        generated, gaps = [], []
        while len(generated) < 64:
            # The last token's logits straight from libllama (the wrapper's copies stay zero unless
            # logits_all is set).
            raw = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
            logits = np.ctypeslib.as_array(raw, shape=(llm.n_vocab(),)).astype(np.float64)
            top2 = np.argsort(-logits, kind="stable")[:2]
            tok = int(top2[0])
            if tok == llm.token_eos():
                break
            gaps.append(float(logits[top2[0]] - logits[top2[1]]))
            generated.append(tok)
            llm.eval([tok])
        tie = next((i for i, g in enumerate(gaps) if g < NEAR_TIE), len(gaps))
        text = llm.detokenize(generated).decode("utf-8", "replace")
        until_tie = llm.detokenize(generated[:tie]).decode("utf-8", "replace")
        cases.append({"prompt": prompt, "ids": generated, "gaps": [round(g, 4) for g in gaps], "text": text,
                      "first_near_tie": tie, "text_until_tie": until_tie})
        print(f"{tie:3d} tokens before a near tie: {until_tie[:60]!r}")
    json.dump({"llama_cpp_python": llama_cpp.__version__, "model": model.split("/")[-1], "n_predict": 64,
               "kv_cache": "q8_0/q8_0, flash attention" if kv_q8_0 else "f16/f16",
               "near_tie_nats": NEAR_TIE, "cases": cases}, open(out, "w"), ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
