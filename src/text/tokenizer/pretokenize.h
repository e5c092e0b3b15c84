// Pre-tokenizers for byte-level BPE: split text into the words that BPE merges within.
//
// Each `tokenizer.ggml.pre` family is a list of patterns (SPEC.md §10, the models' Hugging Face
// `tokenizer.json`). They are applied one after another: every pattern splits each fragment left
// by the previous one, and both the matches and the text between matches stay fragments
// (Hugging Face's "Isolated" split behaviour, which llama.cpp reproduces). The patterns are
// hand-written matchers over code points (no regex engine); each one scans a bounded amount per
// match, so splitting is linear in the text length even for inputs that make backtracking regex
// engines explode (a long run of letters with combining marks, long whitespace runs).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "text/tokenizer/unicode.h"

namespace ferry::text::tok {

enum class PreType {
    Default,    // llama.cpp's fallback list for a missing/`default` pre-tokenizer
    Gpt2,       // gpt-2, phi-2, mpt, olmo, ...
    Llama3,     // llama3 / llama-bpe, falcon3, pixtral, dbrx, smaug-bpe, ...
    Qwen2,      // qwen2, deepseek-r1-qwen, stablelm2, megrez
    Qwen35,     // qwen35: marks join letters
    Starcoder,  // starcoder, refact, smollm, command-r, ...: digits, then gpt-2
    Falcon,
    DeepseekCoder,
    DeepseekLlm,
    DeepseekV3,
    Gpt4o,  // gpt-4o / o200k (gpt-oss), llama4, minimax-m2
};

// Maps a `tokenizer.ggml.pre` value; false when the value is unknown.
bool pre_type_from_name(std::string_view name, PreType& out);

// A fragment is a code-point range [begin, end) of the CpText.
struct Span {
    uint32_t begin;
    uint32_t end;
};

// Splits the whole text with the family's patterns.
std::vector<Span> pre_split(PreType type, const CpText& text);

}  // namespace ferry::text::tok
