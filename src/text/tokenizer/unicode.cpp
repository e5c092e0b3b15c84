#include "text/tokenizer/unicode.h"

#include <utf8proc.h>

#include "text/utf8.h"

namespace ferry::text::tok {

namespace {

bool is_white_space(char32_t cp) {
    switch (cp) {
        case 0x09:
        case 0x0A:
        case 0x0B:
        case 0x0C:
        case 0x0D:
        case 0x20:
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000: return true;
        default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

uint16_t classes_uncached(char32_t cp) {
    uint16_t c = is_white_space(cp) ? kSpace : 0;
    switch (utf8proc_category(utf8proc_int32_t(cp))) {
        case UTF8PROC_CATEGORY_LU: return c | kLetter | kUpper;
        case UTF8PROC_CATEGORY_LL: return c | kLetter | kLower;
        case UTF8PROC_CATEGORY_LT: return c | kLetter | kTitle;
        case UTF8PROC_CATEGORY_LM: return c | kLetter | kModifier;
        case UTF8PROC_CATEGORY_LO: return c | kLetter | kOtherLetter;
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME: return c | kMark;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO: return c | kNumber;
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO: return c | kPunct;
        case UTF8PROC_CATEGORY_SM:
        case UTF8PROC_CATEGORY_SC:
        case UTF8PROC_CATEGORY_SK:
        case UTF8PROC_CATEGORY_SO: return c | kSymbol;
        case UTF8PROC_CATEGORY_ZS:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP: return c;
        default: return c | kControl;
    }
}

// The first 64K code points cover nearly all text; a table makes the hot path one load.
const std::vector<uint16_t>& bmp_table() {
    static const std::vector<uint16_t> table = [] {
        std::vector<uint16_t> t(0x10000);
        for (char32_t cp = 0; cp < 0x10000; ++cp) t[cp] = classes_uncached(cp);
        return t;
    }();
    return table;
}

struct ByteTables {
    std::array<std::string, 256> to_unicode;
    std::array<char32_t, 256> cp_of_byte{};
};

const ByteTables& byte_tables() {
    static const ByteTables tables = [] {
        ByteTables t;
        // Printable Latin-1 bytes stand for themselves; the other 68 bytes are given the code
        // points 256, 257, ... in byte order.
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            const char32_t cp = printable ? char32_t(b) : next++;
            t.cp_of_byte[b] = cp;
            utf8_append(t.to_unicode[b], cp);
        }
        return t;
    }();
    return tables;
}

}  // namespace

uint16_t cp_classes(char32_t cp) {
    if (cp < 0x10000) return bmp_table()[cp];
    return classes_uncached(cp);
}

CpText decode_cps(std::string_view s) {
    CpText t;
    t.cps.reserve(s.size());
    t.offsets.reserve(s.size() + 1);
    t.classes.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) {
        t.offsets.push_back(uint32_t(pos));
        const auto cp = utf8_decode(s, pos);
        // The caller validated the text; a bad byte here is our bug, but stay in bounds anyway.
        const char32_t c = cp ? *cp : char32_t(0xFFFD);
        if (!cp) ++pos;
        t.cps.push_back(c);
        t.classes.push_back(cp_classes(c));
    }
    t.offsets.push_back(uint32_t(s.size()));
    return t;
}

const std::array<std::string, 256>& byte_to_unicode() { return byte_tables().to_unicode; }

int unicode_to_byte(char32_t cp) {
    if (cp < 0x100 && byte_tables().cp_of_byte[cp] == cp) return int(cp);
    if (cp >= 256 && cp < 256 + 68) {
        const auto& t = byte_tables();
        for (int b = 0; b < 256; ++b)
            if (t.cp_of_byte[b] == cp) return b;
    }
    return -1;
}

char32_t to_lower(char32_t cp) { return char32_t(utf8proc_tolower(utf8proc_int32_t(cp))); }

void decompose_nfd(char32_t cp, std::vector<char32_t>& out) {
    utf8proc_int32_t buf[8];
    int last_boundclass = 0;
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(utf8proc_int32_t(cp), buf, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
    if (n <= 0 || n > 8) {
        out.push_back(cp);
        return;
    }
    for (utf8proc_ssize_t i = 0; i < n; ++i) out.push_back(char32_t(buf[i]));
}

}  // namespace ferry::text::tok
