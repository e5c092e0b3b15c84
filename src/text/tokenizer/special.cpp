// Splitting special tokens out of text before the main tokenizer runs.
//
// llama.cpp's rule: take the special tokens longest text first; for each, scan every raw-text
// fragment left to right and cut out each non-overlapping occurrence. So a longer token wins over
// a shorter one wherever they overlap, whatever their positions. Doing that literally costs one
// scan of the text per special token (Gemma 3 has 6,400 of them); instead all occurrences of all
// tokens are found in one pass over a byte trie and then accepted in the same priority order.
// Tokens with LSTRIP/RSTRIP also consume the ASCII whitespace beside them.
#include <algorithm>
#include <tuple>

#include "text/tokenizer/vocab_impl.h"

namespace ferry::text {

void SpecialTrie::insert(std::string_view text, int32_t id) {
    if (text.empty()) return;
    first[uint8_t(text[0])] = true;
    int32_t node = 0;
    for (const char ch : text) {
        int32_t child = -1;
        for (const auto& [b, n] : nodes[size_t(node)].next)
            if (b == uint8_t(ch)) child = n;
        if (child < 0) {
            child = int32_t(nodes.size());
            nodes[size_t(node)].next.emplace_back(uint8_t(ch), child);
            nodes.emplace_back();
        }
        node = child;
    }
    // Two tokens with the same text: the one earlier in priority order is found first.
    if (nodes[size_t(node)].token == kNoToken) nodes[size_t(node)].token = id;
}

namespace detail {

namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

struct Occurrence {
    uint32_t rank;
    size_t pos;
    size_t len;
    int32_t token;
};

}  // namespace

std::vector<Fragment> split_special(const Vocab::Impl& v, std::string_view text, bool parse_special) {
    std::vector<Fragment> out;
    if (text.empty()) return out;

    std::vector<Occurrence> occ;
    for (size_t pos = 0; pos < text.size(); ++pos) {
        v.special_trie.matches_at(text, pos, [&](int32_t id, size_t len) {
            const uint32_t attr = v.tokens[size_t(id)].attr;
            if (!parse_special && (attr & (kAttrControl | kAttrUnknown))) return;
            occ.push_back({v.special_rank[size_t(id)], pos, len, id});
        });
    }
    if (occ.empty()) {
        out.push_back({kNoToken, 0, text.size()});
        return out;
    }
    std::sort(occ.begin(), occ.end(), [](const Occurrence& a, const Occurrence& b) {
        return std::tie(a.rank, a.pos) < std::tie(b.rank, b.pos);
    });

    std::vector<uint8_t> consumed(text.size(), 0);
    std::vector<Occurrence> accepted;
    size_t resume = 0;  // where the scan for the current token continues
    uint32_t current_rank = UINT32_MAX;
    for (const Occurrence& o : occ) {
        if (o.rank != current_rank) {
            current_rank = o.rank;
            resume = 0;
        }
        if (o.pos < resume) continue;
        bool free = true;
        for (size_t i = o.pos; i < o.pos + o.len && free; ++i) free = !consumed[i];
        if (!free) continue;
        std::fill(consumed.begin() + ptrdiff_t(o.pos), consumed.begin() + ptrdiff_t(o.pos + o.len), 1);
        const uint32_t attr = v.tokens[size_t(o.token)].attr;
        if (attr & kAttrLstrip) {
            for (size_t i = o.pos; i > 0 && !consumed[i - 1] && is_ascii_space(text[i - 1]); --i) consumed[i - 1] = 1;
        }
        size_t end = o.pos + o.len;
        if (attr & kAttrRstrip) {
            while (end < text.size() && !consumed[end] && is_ascii_space(text[end])) consumed[end++] = 1;
        }
        resume = end;
        accepted.push_back(o);
    }
    std::sort(accepted.begin(), accepted.end(), [](const Occurrence& a, const Occurrence& b) { return a.pos < b.pos; });

    size_t next = 0;
    size_t raw_begin = SIZE_MAX;
    for (size_t i = 0; i <= text.size(); ++i) {
        const bool raw = i < text.size() && !consumed[i];
        if (raw && raw_begin == SIZE_MAX) raw_begin = i;
        if (!raw && raw_begin != SIZE_MAX) {
            out.push_back({kNoToken, raw_begin, i});
            raw_begin = SIZE_MAX;
        }
        if (next < accepted.size() && accepted[next].pos == i) {
            out.push_back({accepted[next].token, i, i + accepted[next].len});
            ++next;
        }
    }
    return out;
}

}  // namespace detail

}  // namespace ferry::text
