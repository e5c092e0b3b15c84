// WordPiece (BERT), as llama.cpp's WPM tokenizer.
//
// Normalization: NFD + drop combining marks (strip_accents), lower-case, drop control
// characters, NUL and U+FFFD. Words split at whitespace; punctuation, ASCII symbols and CJK
// ideographs become one-character words. Each word, prefixed with U+2581, is covered greedily by
// the longest vocabulary entries from the left; a word that cannot be covered becomes [UNK].
#include "text/tokenizer/unicode.h"
#include "text/tokenizer/vocab_impl.h"
#include "text/utf8.h"

namespace ferry::text::detail {

namespace {

bool is_chinese_char(char32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
           (cp >= 0x2B920 && cp <= 0x2CEAF) ||  // as HF's Rust code (0x2B820 in Unicode)
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

std::vector<std::string> wpm_words(const Vocab::Impl& v, std::string_view text) {
    std::vector<char32_t> cps;
    for (size_t pos = 0; pos < text.size();) {
        const auto cp = utf8_decode(text, pos);
        if (!cp) {
            ++pos;
            continue;
        }
        if (v.wpm_strip_accents) {
            tok::decompose_nfd(*cp, cps);
        } else {
            cps.push_back(*cp);
        }
    }
    std::vector<std::string> words(1);
    for (const char32_t cp : cps) {
        const uint16_t k = tok::cp_classes(cp);
        if (k & tok::kSpace) {
            if (!words.back().empty()) words.emplace_back();
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || (k & tok::kControl)) continue;
        if (v.wpm_strip_accents && (k & tok::kMark)) continue;
        std::string s;
        utf8_append(s, v.wpm_lowercase ? tok::to_lower(cp) : cp);
        if ((k & tok::kPunct) || (cp < 0x7F && (k & tok::kSymbol)) || is_chinese_char(cp)) {
            if (!words.back().empty()) words.emplace_back();
            words.back() = std::move(s);
            words.emplace_back();
        } else {
            words.back() += s;
        }
    }
    if (words.back().empty()) words.pop_back();
    return words;
}

}  // namespace

void wpm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out) {
    for (const std::string& word : wpm_words(v, text)) {
        if (word.empty()) continue;
        const std::string w = "\xe2\x96\x81" + word;
        const size_t start = out.size();
        for (size_t i = 0; i < w.size();) {
            size_t j = std::min(w.size(), i + v.max_token_len + 1);
            int32_t id = kNoToken;
            for (; j > i; --j) {
                id = v.find(std::string_view(w).substr(i, j - i));
                if (id != kNoToken) break;
            }
            if (id == kNoToken) {
                out.resize(start);
                break;
            }
            out.push_back(id);
            i = j;
        }
        if (out.size() == start && v.unk != kNoToken) out.push_back(v.unk);
    }
}

}  // namespace ferry::text::detail
