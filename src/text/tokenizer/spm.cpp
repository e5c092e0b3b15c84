// SentencePiece (BPE-by-score, as llama.cpp's SPM tokenizer).
//
// The text (spaces already replaced by U+2581) is split into UTF-8 characters. Every adjacent
// pair whose concatenation is a token is queued with that token's score; the best pair (highest
// score, leftmost on ties) is merged and its new neighbours are queued, until no pair is a token.
// Each final symbol is a token, or a single character that is not: that one is emitted as its
// UTF-8 bytes through the <0xXX> byte tokens (an error if the vocab lacks one).
#include <queue>

#include "text/tokenizer/vocab_impl.h"

namespace ferry::text::detail {

namespace {

struct Symbol {
    uint32_t begin;
    uint32_t end;
    int32_t prev;
    int32_t next;
};

struct Bigram {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;  // bytes of left + right when queued; a mismatch means stale
    int32_t id;
};

struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

Status spm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out) {
    std::vector<Symbol> syms;
    for (size_t pos = 0; pos < text.size();) {
        const uint8_t lead = uint8_t(text[pos]);
        size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        n = std::min(n, text.size() - pos);
        const int32_t idx = int32_t(syms.size());
        syms.push_back({uint32_t(pos), uint32_t(pos + n), idx - 1, idx + 1});
        pos += n;
    }
    if (syms.empty()) return {};
    syms.back().next = -1;

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto add = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        const Symbol& a = syms[size_t(l)];
        const Symbol& b = syms[size_t(r)];
        const int32_t id = v.find(text.substr(a.begin, b.end - a.begin));
        if (id == kNoToken) return;
        queue.push({v.tokens[size_t(id)].score, l, r, b.end - a.begin, id});
    };
    for (size_t i = 1; i < syms.size(); ++i) add(int32_t(i - 1), int32_t(i));

    while (!queue.empty()) {
        const Bigram bg = queue.top();
        queue.pop();
        Symbol& l = syms[size_t(bg.left)];
        Symbol& r = syms[size_t(bg.right)];
        if (l.end == l.begin || r.end == r.begin || l.next != bg.right) continue;
        if (r.end - l.begin != bg.size) continue;  // one side grew since it was queued
        l.end = r.end;
        l.next = r.next;
        if (r.next >= 0) syms[size_t(r.next)].prev = bg.left;
        r.end = r.begin;  // dead
        add(l.prev, bg.left);
        add(bg.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) {
        const Symbol& s = syms[size_t(i)];
        const int32_t id = v.find(text.substr(s.begin, s.end - s.begin));
        if (id != kNoToken) {
            out.push_back(id);
            continue;
        }
        for (uint32_t b = s.begin; b < s.end; ++b) {
            const int32_t bt = v.byte_token[uint8_t(text[b])];
            if (bt == kNoToken) {
                return make_error("tokenize: the vocabulary has no byte token for 0x" +
                                  std::string(1, "0123456789ABCDEF"[uint8_t(text[b]) >> 4]) +
                                  std::string(1, "0123456789ABCDEF"[uint8_t(text[b]) & 15]));
            }
            out.push_back(bt);
        }
    }
    return {};
}

}  // namespace ferry::text::detail
