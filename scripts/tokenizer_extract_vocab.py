#!/usr/bin/env python3
"""Write a vocab-only GGUF (metadata only, no tensors) from a model GGUF.

Keeps `general.architecture`, `general.name` and every `tokenizer.*` key except the chat
template, which is what ferry's tokenizer (and llama.cpp's vocab_only mode) needs.

    .venv/bin/python scripts/tokenizer_extract_vocab.py models/SmolLM2-135M-Instruct.Q4_1.gguf \
        tests/data/tokenizer/smollm2-135m.vocab.gguf
"""
import sys

import gguf


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if not (key == "general.name" or key.startswith("tokenizer.")):
            continue
        if key.startswith("tokenizer.chat_template"):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
