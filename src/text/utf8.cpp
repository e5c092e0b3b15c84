#include "text/utf8.h"

namespace ferry::text {

std::optional<char32_t> utf8_decode(std::string_view s, size_t& pos) {
    if (pos >= s.size()) return std::nullopt;
    const auto b0 = uint8_t(s[pos]);
    if (b0 < 0x80) {
        ++pos;
        return b0;
    }
    int len;
    char32_t cp;
    char32_t min;
    if ((b0 & 0xe0) == 0xc0) {
        len = 2, cp = b0 & 0x1f, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
        len = 3, cp = b0 & 0x0f, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (s.size() - pos < size_t(len)) return std::nullopt;
    for (int i = 1; i < len; ++i) {
        const auto b = uint8_t(s[pos + size_t(i)]);
        if ((b & 0xc0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    pos += size_t(len);
    return cp;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xc0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += char(0xe0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    } else {
        out += char(0xf0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3f));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    }
}

Status utf8_validate(std::string_view s) {
    size_t pos = 0;
    while (pos < s.size()) {
        if (!utf8_decode(s, pos)) return make_error("invalid UTF-8 at byte " + std::to_string(pos));
    }
    return {};
}

size_t utf8_complete_prefix(std::string_view s) {
    // Look back at most 3 bytes for the start of a sequence that the end cuts short.
    for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
        const auto b = uint8_t(s[s.size() - back]);
        if ((b & 0xc0) == 0x80) continue;  // continuation byte: keep looking for the lead
        size_t need = 1;
        if ((b & 0xe0) == 0xc0)
            need = 2;
        else if ((b & 0xf0) == 0xe0)
            need = 3;
        else if ((b & 0xf8) == 0xf0)
            need = 4;
        if (need > back) {
            // A lead byte whose sequence is not finished yet, if what follows it is valid so far.
            // Try completions: the first missing byte may need to be >= 0x90 or 0xa0 after an
            // F0 or E0 lead; later ones can be any continuation byte.
            for (const char first : {char(0x80), char(0x90), char(0xa0)}) {
                std::string probe(s.substr(s.size() - back));
                probe += first;
                while (probe.size() < need) probe += char(0x80);
                size_t p = 0;
                if (utf8_decode(probe, p)) return s.size() - back;
            }
        }
        return s.size();
    }
    return s.size();
}

}  // namespace ferry::text
