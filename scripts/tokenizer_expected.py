#!/usr/bin/env python3
"""Writes llama.cpp's token ids for ferry's tokenizer tests (tests/data/tokenizer/expected/).

Uses llama-cpp-python (`llama_cpp.Llama(model_path=..., vocab_only=True).tokenize`):

  * hard strings (tests/data/tokenizer/hard_strings.inp) in three modes, written as
    `<name>.hard.add_special=A.parse_special=P.out` (llama.cpp's .out format);
  * the whole WikiText-2 test file tokenized as one string, as llama-perplexity does
    (add_special=True, parse_special=False), written as `<name>.wikitext.digest`: the token
    count plus an FNV-1a 64 digest of every 1024-token chunk (little-endian int32 ids), so an
    exact comparison costs a few KB of repo data instead of a megabyte of ids.

    .venv/bin/python scripts/tokenizer_expected.py \
        smollm2-135m=models/SmolLM2-135M-Instruct.Q4_1.gguf \
        gemma3-270m=models/gemma-3-270m-q4_k_m.gguf
"""
import pathlib
import struct
import sys

import llama_cpp

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests/data/tokenizer"
WIKITEXT = ROOT / "tests/data/tokenizer/wiki.test.raw"
SEP = "\n__ggml_vocab_test__\n"
CHUNK = 1024
MODES = [(False, False), (False, True), (True, True)]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def ids_digest(ids: list[int]) -> list[str]:
    out = []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        out.append("%016x" % fnv1a64(struct.pack("<%di" % len(chunk), *chunk)))
    return out


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = DATA / "expected"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(DATA / "hard_strings.inp", encoding="utf-8", newline="") as f:  # keep \r\n
        hard = f.read()
    assert hard.endswith(SEP)
    strings = hard[: -len(SEP)].split(SEP)
    wiki = WIKITEXT.read_bytes()
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        for add_special, parse_special in MODES:
            lines = []
            for s in strings:
                ids = llm.tokenize(s.encode("utf-8"), add_bos=add_special, special=parse_special)
                lines.append("".join(" %d" % t for t in ids) + "\n")
            fn = out_dir / f"{name}.hard.add_special={int(add_special)}.parse_special={int(parse_special)}.out"
            fn.write_text("".join(lines), encoding="utf-8")
        ids = llm.tokenize(wiki, add_bos=True, special=False)
        digest = ids_digest(ids)
        with open(out_dir / f"{name}.wikitext.digest", "w", encoding="utf-8") as f:
            f.write(f"source_bytes {len(wiki)}\n")
            f.write(f"source_fnv1a64 {fnv1a64(wiki):016x}\n")
            f.write(f"n_tokens {len(ids)}\n")
            f.write(f"chunk {CHUNK}\n")
            f.write("first " + " ".join(str(t) for t in ids[:64]) + "\n")
            for d in digest:
                f.write(d + "\n")
        print(f"{name}: {len(strings)} hard strings x {len(MODES)} modes, wikitext {len(ids)} tokens")
    (out_dir / "VERSION").write_text(f"llama-cpp-python {llama_cpp.__version__}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
