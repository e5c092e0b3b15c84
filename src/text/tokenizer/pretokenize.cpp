#include "text/tokenizer/pretokenize.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace ferry::text::tok {

namespace {

// A matcher looks at code point `pos` of a fragment ending at `end` and returns the length of
// the match that starts there (0: none). It may raise `skip` (initially pos + 1) to tell the
// splitter that no match can start before that position either.
using Matcher = size_t (*)(const CpText& t, size_t pos, size_t end, size_t& skip);

struct Ctx {
    const CpText& t;
    size_t end;
    char32_t cp(size_t i) const { return i < end ? t.cps[i] : char32_t(0xFFFFFFFF); }
    uint16_t cls(size_t i) const { return i < end ? t.classes[i] : uint16_t(0); }
    bool has(size_t i, uint16_t mask) const { return (cls(i) & mask) != 0; }
    bool in(size_t i) const { return i < end; }
    // First index >= i whose classes miss `mask`.
    size_t run(size_t i, uint16_t mask) const {
        while (i < end && (t.classes[i] & mask)) ++i;
        return i;
    }
    template <class Pred>
    size_t run_if(size_t i, Pred p) const {
        while (i < end && p(t.cps[i], t.classes[i])) ++i;
        return i;
    }
};

bool is_crlf(char32_t c) { return c == '\r' || c == '\n'; }
char32_t ascii_lower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's 't 're 've 'm 'll 'd at i; length or 0.
size_t contraction(const Ctx& c, size_t i, bool any_case) {
    if (c.cp(i) != '\'') return 0;
    auto at = [&](size_t k) { return any_case ? ascii_lower(c.cp(k)) : c.cp(k); };
    const char32_t a = at(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    const char32_t b = at(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// The whitespace tail shared by most patterns: `\s*[\r\n]+|\s+(?!\S)|\s+` (with_newline_rule)
// or gpt-2's `\s+(?!\S)` alone.
size_t whitespace_tail(const Ctx& c, size_t pos, bool with_newline_rule, bool with_plain_run) {
    if (!c.has(pos, kSpace)) return 0;
    const size_t j = c.run(pos, kSpace);
    if (with_newline_rule) {
        for (size_t k = j; k > pos; --k)
            if (is_crlf(c.t.cps[k - 1])) return k - pos;
    }
    if (j == c.end) return j - pos;        // \s+ at the end: (?!\S) holds
    if (j - pos >= 2) return j - pos - 1;  // leave the last space for the next word
    return with_plain_run ? j - pos : 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
size_t match_gpt2(const CpText& t, size_t pos, size_t end, size_t&) {
    const Ctx c{t, end};
    if (size_t n = contraction(c, pos, false)) return n;
    const size_t q = pos + (c.cp(pos) == ' ' ? 1 : 0);
    if (c.has(q, kLetter)) return c.run(q, kLetter) - pos;
    if (c.has(q, kNumber)) return c.run(q, kNumber) - pos;
    auto other = [](char32_t, uint16_t k) { return (k & (kSpace | kLetter | kNumber)) == 0; };
    if (c.in(q) && other(0, c.cls(q))) return c.run_if(q, other) - pos;
    return whitespace_tail(c, pos, false, false);
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+  — llama3 (D=3), qwen2 (D=1); qwen35 adds \p{M} to the letter run
// and to the exclusions of the symbol run.
template <size_t kMaxDigits, bool kMarks>
size_t match_llama3(const CpText& t, size_t pos, size_t end, size_t&) {
    const Ctx c{t, end};
    if (size_t n = contraction(c, pos, true)) return n;
    constexpr uint16_t word = kMarks ? (kLetter | kMark) : kLetter;
    if (c.has(pos, word)) return c.run(pos, word) - pos;
    if (c.in(pos) && !is_crlf(c.cp(pos)) && !c.has(pos, kLetter | kNumber) && c.has(pos + 1, word))
        return c.run(pos + 1, word) - pos;
    if (c.has(pos, kNumber)) return std::min(c.run(pos, kNumber) - pos, kMaxDigits);
    constexpr uint16_t not_other = kSpace | kLetter | kNumber | (kMarks ? kMark : 0);
    const size_t q = pos + ((c.cp(pos) == ' ' && c.in(pos + 1) && !c.has(pos + 1, not_other)) ? 1 : 0);
    if (c.in(q) && !c.has(q, not_other)) {
        const size_t e = c.run_if(q, [](char32_t, uint16_t k) { return (k & not_other) == 0; });
        return c.run_if(e, [](char32_t x, uint16_t) { return is_crlf(x); }) - pos;
    }
    return whitespace_tail(c, pos, true, true);
}

// o200k: [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|…)?|
// [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|…)?|
// \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
constexpr uint16_t kUpperish = kUpper | kTitle | kModifier | kOtherLetter | kMark;
constexpr uint16_t kLowerish = kLower | kModifier | kOtherLetter | kMark;

// U*W+ from a: U* is greedy, W+ backtracks into it (Lm, Lo and M are in both sets).
size_t o200k_upper_lower(const Ctx& c, size_t a) {
    const size_t b = c.run(a, kUpperish);
    size_t e = 0;
    if (c.has(b, kLowerish)) {
        e = c.run(b, kLowerish);
    } else {
        size_t k = b;
        while (k > a && !(c.t.classes[k - 1] & kLowerish)) --k;
        if (k == a) return 0;
        e = k;
    }
    return e + contraction(c, e, true);
}

// U+W* from a.
size_t o200k_upper_run(const Ctx& c, size_t a) {
    if (!c.has(a, kUpperish)) return 0;
    const size_t e = c.run(c.run(a, kUpperish), kLowerish);
    return e + contraction(c, e, true);
}

size_t match_o200k(const CpText& t, size_t pos, size_t end, size_t&) {
    const Ctx c{t, end};
    const bool prefix = c.in(pos) && !is_crlf(c.cp(pos)) && !c.has(pos, kLetter | kNumber);
    for (auto alt : {o200k_upper_lower, o200k_upper_run}) {
        if (prefix)
            if (size_t e = alt(c, pos + 1)) return e - pos;
        if (size_t e = alt(c, pos)) return e - pos;
    }
    if (c.has(pos, kNumber)) return std::min<size_t>(c.run(pos, kNumber) - pos, 3);
    constexpr uint16_t not_other = kSpace | kLetter | kNumber;
    const size_t q = pos + ((c.cp(pos) == ' ' && c.in(pos + 1) && !c.has(pos + 1, not_other)) ? 1 : 0);
    if (c.in(q) && !c.has(q, not_other)) {
        const size_t e = c.run_if(q, [](char32_t, uint16_t k) { return (k & not_other) == 0; });
        return c.run_if(e, [](char32_t x, uint16_t) { return is_crlf(x) || x == '/'; }) - pos;
    }
    return whitespace_tail(c, pos, true, true);
}

// deepseek-v3: [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
// ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t match_deepseek_v3(const CpText& t, size_t pos, size_t end, size_t&) {
    const Ctx c{t, end};
    auto ascii_alpha = [](char32_t x, uint16_t) { return (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z'); };
    const char32_t x = c.cp(pos);
    const bool ascii_ps = x >= 0x21 && x <= 0x7E && !ascii_alpha(x, 0) && !(x >= '0' && x <= '9');
    if (ascii_ps && c.in(pos + 1) && ascii_alpha(c.cp(pos + 1), 0)) return c.run_if(pos + 1, ascii_alpha) - pos;
    constexpr uint16_t word = kLetter | kMark;
    if (c.in(pos) && !is_crlf(x) && !c.has(pos, kLetter | kPunct | kSymbol) && c.has(pos + 1, word))
        return c.run(pos + 1, word) - pos;
    if (c.has(pos, word)) return c.run(pos, word) - pos;
    const size_t q = pos + ((x == ' ' && c.has(pos + 1, kPunct | kSymbol)) ? 1 : 0);
    if (c.has(q, kPunct | kSymbol)) {
        const size_t e = c.run(q, kPunct | kSymbol);
        return c.run_if(e, [](char32_t y, uint16_t) { return is_crlf(y); }) - pos;
    }
    return whitespace_tail(c, pos, true, true);
}

// Single-class patterns.
size_t match_digit(const CpText& t, size_t pos, size_t end, size_t&) {  // \p{N}
    return Ctx{t, end}.has(pos, kNumber) ? 1 : 0;
}
template <size_t kMax>
size_t match_digits(const CpText& t, size_t pos, size_t end, size_t&) {  // \p{N}{1,kMax}
    const Ctx c{t, end};
    return std::min(c.run(pos, kNumber) - pos, kMax);
}
size_t match_crlf(const CpText& t, size_t pos, size_t end, size_t&) {  // [\r\n]
    return pos < end && is_crlf(t.cps[pos]) ? 1 : 0;
}
size_t match_ascii_digits3(const CpText& t, size_t pos, size_t end, size_t&) {  // [0-9]{3}
    const Ctx c{t, end};
    for (size_t i = pos; i < pos + 3; ++i)
        if (!c.in(i) || c.cp(i) < '0' || c.cp(i) > '9') return 0;
    return 3;
}
// [\p{P}\$\+<=>\^~\|`]+ (falcon; the default list has no backtick)
template <bool kBacktick>
size_t match_punct_symbols(const CpText& t, size_t pos, size_t end, size_t&) {
    const Ctx c{t, end};
    auto pred = [](char32_t x, uint16_t k) {
        return (k & kPunct) || x == '$' || x == '+' || x == '<' || x == '=' || x == '>' || x == '^' || x == '~' ||
               x == '|' || (kBacktick && x == '`');
    };
    return c.run_if(pos, pred) - pos;
}
// \s?C+ for a class C given as a predicate.
template <class Pred>
size_t optional_space_run(const Ctx& c, size_t pos, Pred pred) {
    auto ok = [&](size_t i) { return c.in(i) && pred(c.cp(i), c.cls(i)); };
    if (c.has(pos, kSpace) && ok(pos + 1)) return c.run_if(pos + 1, pred) - pos;
    if (ok(pos)) return c.run_if(pos, pred) - pos;
    return 0;
}
size_t match_space_letters(const CpText& t, size_t pos, size_t end, size_t&) {  // \s?\p{L}+
    return optional_space_run(Ctx{t, end}, pos, [](char32_t, uint16_t k) { return (k & kLetter) != 0; });
}
size_t match_space_punct(const CpText& t, size_t pos, size_t end, size_t&) {  // \s?\p{P}+
    return optional_space_run(Ctx{t, end}, pos, [](char32_t, uint16_t k) { return (k & kPunct) != 0; });
}
// [一-龥ࠀ-一가-퟿]+
size_t match_cjk_hangul(const CpText& t, size_t pos, size_t end, size_t&) {
    auto pred = [](char32_t x, uint16_t) {
        return (x >= 0x4E00 && x <= 0x9FA5) || (x >= 0x0800 && x <= 0x4E00) || (x >= 0xAC00 && x <= 0xD7FF);
    };
    return Ctx{t, end}.run_if(pos, pred) - pos;
}
// [一-龥぀-ゟ゠-ヿ]+ (deepseek-v3)
size_t match_cjk_kana(const CpText& t, size_t pos, size_t end, size_t&) {
    auto pred = [](char32_t x, uint16_t) { return (x >= 0x4E00 && x <= 0x9FA5) || (x >= 0x3040 && x <= 0x30FF); };
    return Ctx{t, end}.run_if(pos, pred) - pos;
}

// deepseek-llm's explicit letter ranges (Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee,
// Glagolitic, Coptic, Deseret, ... as listed in its tokenizer.json), sorted.
constexpr std::pair<char32_t, char32_t> kDeepseekLetters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

bool deepseek_letter(char32_t x, uint16_t) {
    const auto* it = std::upper_bound(std::begin(kDeepseekLetters), std::end(kDeepseekLetters), x,
                                      [](char32_t v, const auto& r) { return v < r.first; });
    return it != std::begin(kDeepseekLetters) && x <= std::prev(it)->second;
}
size_t match_deepseek_letters(const CpText& t, size_t pos, size_t end, size_t&) {
    return optional_space_run(Ctx{t, end}, pos, deepseek_letter);
}
// \s?[!-/:-~！-／：-～‘-‟　-。]+
size_t match_deepseek_punct(const CpText& t, size_t pos, size_t end, size_t&) {
    auto pred = [](char32_t x, uint16_t) {
        return (x >= 0x21 && x <= 0x2F) || (x >= 0x3A && x <= 0x7E) || (x >= 0xFF01 && x <= 0xFF0F) ||
               (x >= 0xFF1A && x <= 0xFF5E) || (x >= 0x2018 && x <= 0x201F) || (x >= 0x3000 && x <= 0x3002);
    };
    return optional_space_run(Ctx{t, end}, pos, pred);
}
// \s+$ — only a whitespace run that reaches the fragment's end.
size_t match_trailing_space(const CpText& t, size_t pos, size_t end, size_t& skip) {
    const Ctx c{t, end};
    if (!c.has(pos, kSpace)) return 0;
    const size_t j = c.run(pos, kSpace);
    if (j == end) return j - pos;
    skip = j;  // no later start inside this run can reach the end either
    return 0;
}
size_t match_digit_run(const CpText& t, size_t pos, size_t end, size_t&) {  // \p{N}+
    const Ctx c{t, end};
    return c.run(pos, kNumber) - pos;
}

void split_with(const CpText& t, Matcher m, const std::vector<Span>& in, std::vector<Span>& out) {
    out.clear();
    for (const Span s : in) {
        size_t pending = s.begin;
        size_t pos = s.begin;
        while (pos < s.end) {
            size_t skip = pos + 1;
            const size_t n = m(t, pos, s.end, skip);
            if (n == 0) {
                pos = std::min<size_t>(std::max(skip, pos + 1), s.end);
                continue;
            }
            if (pending < pos) out.push_back({uint32_t(pending), uint32_t(pos)});
            out.push_back({uint32_t(pos), uint32_t(pos + n)});
            pos += n;
            pending = pos;
        }
        if (pending < s.end) out.push_back({uint32_t(pending), s.end});
    }
}

std::vector<Matcher> matchers_for(PreType type) {
    switch (type) {
        case PreType::Gpt2: return {match_gpt2};
        case PreType::Llama3: return {match_llama3<3, false>};
        case PreType::Qwen2: return {match_llama3<1, false>};
        case PreType::Qwen35: return {match_llama3<1, true>};
        case PreType::Starcoder: return {match_digit, match_gpt2};
        case PreType::Falcon: return {match_punct_symbols<true>, match_gpt2, match_ascii_digits3};
        case PreType::DeepseekCoder:
            return {match_crlf, match_space_letters, match_space_punct, match_cjk_hangul, match_digit};
        case PreType::DeepseekLlm:
            return {match_crlf,           match_deepseek_letters, match_deepseek_punct,
                    match_trailing_space, match_cjk_hangul,       match_digit_run};
        case PreType::DeepseekV3: return {match_digits<3>, match_cjk_kana, match_deepseek_v3};
        case PreType::Gpt4o: return {match_o200k};
        case PreType::Default: return {match_punct_symbols<false>, match_gpt2, match_digit_run, match_ascii_digits3};
    }
    return {match_gpt2};
}

}  // namespace

bool pre_type_from_name(std::string_view name, PreType& out) {
    struct Entry {
        std::string_view name;
        PreType type;
    };
    static constexpr Entry kTable[] = {
        {"default", PreType::Default},
        {"gpt-2", PreType::Gpt2},
        {"phi-2", PreType::Gpt2},
        {"mpt", PreType::Gpt2},
        {"olmo", PreType::Gpt2},
        {"jais", PreType::Gpt2},
        {"trillion", PreType::Gpt2},
        {"granite-docling", PreType::Gpt2},
        {"exaone4", PreType::Gpt2},
        {"jina-es", PreType::Gpt2},
        {"jina-de", PreType::Gpt2},
        {"gigachat", PreType::Gpt2},
        {"jina-v2-es", PreType::Gpt2},
        {"jina-v2-de", PreType::Gpt2},
        {"a.x-4.0", PreType::Gpt2},
        {"mellum", PreType::Gpt2},
        {"modern-bert", PreType::Gpt2},
        {"jina-v1-en", PreType::Gpt2},
        {"jina-v2-code", PreType::Gpt2},
        {"roberta-bpe", PreType::Gpt2},
        {"llama3", PreType::Llama3},
        {"llama-v3", PreType::Llama3},
        {"llama-bpe", PreType::Llama3},
        {"falcon3", PreType::Llama3},
        {"falcon-h1", PreType::Llama3},
        {"pixtral", PreType::Llama3},
        {"midm-2.0", PreType::Llama3},
        {"lfm2", PreType::Llama3},
        {"dbrx", PreType::Llama3},
        {"smaug-bpe", PreType::Llama3},
        {"qwen2", PreType::Qwen2},
        {"deepseek-r1-qwen", PreType::Qwen2},
        {"stablelm2", PreType::Qwen2},
        {"megrez", PreType::Qwen2},
        {"qwen35", PreType::Qwen35},
        {"smollm", PreType::Starcoder},
        {"starcoder", PreType::Starcoder},
        {"refact", PreType::Starcoder},
        {"command-r", PreType::Starcoder},
        {"codeshell", PreType::Starcoder},
        {"exaone", PreType::Starcoder},
        {"minerva-7b", PreType::Starcoder},
        {"falcon", PreType::Falcon},
        {"deepseek-coder", PreType::DeepseekCoder},
        {"deepseek-llm", PreType::DeepseekLlm},
        {"deepseek-v3", PreType::DeepseekV3},
        {"gpt-4o", PreType::Gpt4o},
        {"llama4", PreType::Gpt4o},
        {"minimax-m2", PreType::Gpt4o},
    };
    for (const Entry& e : kTable) {
        if (e.name == name) {
            out = e.type;
            return true;
        }
    }
    return false;
}

std::vector<Span> pre_split(PreType type, const CpText& text) {
    std::vector<Span> cur;
    if (text.cps.empty()) return cur;
    cur.push_back({0, uint32_t(text.cps.size())});
    std::vector<Span> next;
    for (Matcher m : matchers_for(type)) {
        split_with(text, m, cur, next);
        std::swap(cur, next);
    }
    return cur;
}

}  // namespace ferry::text::tok
