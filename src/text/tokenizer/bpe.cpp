// Byte-level BPE.
//
// Each pre-tokenized word is mapped byte by byte through GPT-2's bytes_to_unicode, split into
// code points (the initial symbols), and then the adjacent pair with the lowest merge rank is
// merged, leftmost first on ties, until no pair has a merge. A queue entry remembers the two
// token ids it was made for; if either symbol has changed since, the entry is stale and dropped.
// A final symbol that is not a token (only possible with an incomplete vocabulary) falls back to
// the tokens of its single bytes, and is dropped when there are none — as llama.cpp does.
// Results are memoized per word for the duration of one tokenize call.
#include <queue>

#include "text/tokenizer/unicode.h"
#include "text/tokenizer/vocab_impl.h"

namespace ferry::text::detail {

namespace {

struct Symbol {
    int32_t id;      // token id of the symbol's text, kNoToken if it is not a token
    uint32_t begin;  // byte range in the encoded word
    uint32_t end;
    int32_t prev;
    int32_t next;
};

struct Bigram {
    int32_t rank;
    int32_t left;
    int32_t right;
    int32_t left_id;
    int32_t right_id;
    int32_t result;
};

struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

void merge_word(const Vocab::Impl& v, const std::string& word, std::vector<int32_t>& out) {
    if (v.ignore_merges) {
        const int32_t id = v.find(word);
        if (id != kNoToken) {
            out.push_back(id);
            return;
        }
    }
    std::vector<Symbol> syms;
    for (size_t pos = 0; pos < word.size();) {
        const uint8_t lead = uint8_t(word[pos]);
        size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        n = std::min(n, word.size() - pos);
        const int32_t idx = int32_t(syms.size());
        syms.push_back(
            {v.find(std::string_view(word).substr(pos, n)), uint32_t(pos), uint32_t(pos + n), idx - 1, idx + 1});
        pos += n;
    }
    if (syms.empty()) return;
    syms.back().next = -1;

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto add = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        const int32_t a = syms[size_t(l)].id, b = syms[size_t(r)].id;
        if (a < 0 || b < 0) return;
        const auto it = v.merges.find(uint64_t(uint32_t(a)) << 32 | uint32_t(b));
        if (it == v.merges.end()) return;
        queue.push({it->second.rank, l, r, a, b, it->second.result});
    };
    for (size_t i = 1; i < syms.size(); ++i) add(int32_t(i - 1), int32_t(i));

    while (!queue.empty()) {
        const Bigram bg = queue.top();
        queue.pop();
        Symbol& l = syms[size_t(bg.left)];
        Symbol& r = syms[size_t(bg.right)];
        if (l.id != bg.left_id || r.id != bg.right_id || l.next != bg.right) continue;  // stale
        l.id = bg.result;
        l.end = r.end;
        l.next = r.next;
        if (r.next >= 0) syms[size_t(r.next)].prev = bg.left;
        r.id = kNoToken;
        r.prev = r.next = -2;  // dead
        add(l.prev, bg.left);
        add(bg.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) {
        const Symbol& s = syms[size_t(i)];
        if (s.id != kNoToken) {
            out.push_back(s.id);
            continue;
        }
        for (uint32_t b = s.begin; b < s.end; ++b) {
            const int32_t id = v.find(std::string_view(word).substr(b, 1));
            if (id != kNoToken) out.push_back(id);
        }
    }
}

}  // namespace

void bpe_tokenize(const Vocab::Impl& v, std::string_view text, BpeCache& cache, std::vector<int32_t>& out) {
    const tok::CpText cps = tok::decode_cps(text);
    const auto& enc = tok::byte_to_unicode();
    std::string word;
    for (const tok::Span s : tok::pre_split(v.pre, cps)) {
        const std::string_view raw = text.substr(cps.offsets[s.begin], cps.offsets[s.end] - cps.offsets[s.begin]);
        auto it = cache.find(raw);
        if (it == cache.end()) {
            word.clear();
            for (const char ch : raw) word += enc[uint8_t(ch)];
            std::vector<int32_t> ids;
            merge_word(v, word, ids);
            it = cache.emplace(std::string(raw), std::move(ids)).first;
        }
        out.insert(out.end(), it->second.begin(), it->second.end());
    }
}

}  // namespace ferry::text::detail
