// Unicode facts the tokenizers need, on code points.
//
// General categories come from utf8proc (`utf8proc_category`), so they follow the Unicode version
// utf8proc was built with. `\s` in the pre-tokenizer patterns is the White_Space property (the
// same 25 code points Rust's and Python's regex engines use), not a category. The GPT-2
// byte<->unicode table maps each byte 0..255 to a printable code point, so byte-level BPE can
// work on text that never contains control characters or spaces.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::text::tok {

// Bit set of the classes a pattern can ask for.
enum CpClass : uint16_t {
    kLetter = 1 << 0,        // \p{L}
    kNumber = 1 << 1,        // \p{N}
    kPunct = 1 << 2,         // \p{P}
    kSymbol = 1 << 3,        // \p{S}
    kMark = 1 << 4,          // \p{M}
    kSpace = 1 << 5,         // \s (White_Space)
    kUpper = 1 << 6,         // \p{Lu}
    kLower = 1 << 7,         // \p{Ll}
    kTitle = 1 << 8,         // \p{Lt}
    kModifier = 1 << 9,      // \p{Lm}
    kOtherLetter = 1 << 10,  // \p{Lo}
    kControl = 1 << 11,      // \p{C} (Cc, Cf, Cs, Co, Cn)
};

uint16_t cp_classes(char32_t cp);

// Decodes valid UTF-8 (checked by the caller) into code points and their byte offsets;
// offsets has one more entry than cps (the end).
struct CpText {
    std::vector<char32_t> cps;
    std::vector<uint32_t> offsets;
    std::vector<uint16_t> classes;
};
CpText decode_cps(std::string_view valid_utf8);

// GPT-2's bytes_to_unicode: byte -> UTF-8 of its stand-in code point.
const std::array<std::string, 256>& byte_to_unicode();
// Inverse; -1 for a code point that stands for no byte.
int unicode_to_byte(char32_t cp);

// Simple (1:1) lower-case mapping.
char32_t to_lower(char32_t cp);
// Canonical decomposition (NFD) of one code point, appended to out.
void decompose_nfd(char32_t cp, std::vector<char32_t>& out);

}  // namespace ferry::text::tok
