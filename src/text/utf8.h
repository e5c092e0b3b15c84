// UTF-8 helpers shared by the tokenizers and the template engine.
//
// Decoding is strict (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. Text
// from outside is checked with utf8_validate before it reaches code that assumes valid UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry::text {

// Decodes the code point at s[pos] and advances pos past it; nullopt (pos unchanged) on an
// invalid or truncated sequence.
std::optional<char32_t> utf8_decode(std::string_view s, size_t& pos);

// Appends the UTF-8 encoding of cp (which must be a valid scalar value).
void utf8_append(std::string& out, char32_t cp);

// Ok, or an error naming the byte offset of the first invalid sequence.
Status utf8_validate(std::string_view s);

// Length of the longest prefix of s that does not end inside a multi-byte sequence — what a
// streaming printer may emit now; the rest waits for more bytes. Invalid bytes count as complete
// (they will never become valid), so the result never holds back more than 3 bytes.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace ferry::text
