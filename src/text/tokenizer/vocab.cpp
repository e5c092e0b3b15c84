// Vocab: loading from GGUF metadata and the tokenize/detokenize entry points.
//
// Loading follows llama.cpp's `llama_vocab::load` so that the same file tokenizes the same way:
// per-family defaults for the special ids and add_bos/add_space_prefix, then the file's keys,
// then llama.cpp's by-text fix-ups (EOT/EOG/FIM tokens forced to CONTROL, gpt-oss channel
// tokens made USER_DEFINED, phi-3's RSTRIP). Unlike llama.cpp, a file that names an id out of
// range, a merge of unknown tokens or a malformed byte token is rejected instead of patched.
#include "text/tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "gguf/reader.h"
#include "text/tokenizer/unicode.h"
#include "text/tokenizer/vocab_impl.h"
#include "text/utf8.h"

namespace ferry::text {

namespace {

constexpr std::string_view kSpmSpace = "\xe2\x96\x81";  // U+2581

const char* hex_digits() { return "0123456789ABCDEF"; }

std::string byte_token_text(uint8_t b) {
    return std::string("<0x") + hex_digits()[b >> 4] + hex_digits()[b & 15] + ">";
}

// "<0xXX>" -> XX, or -1.
int parse_byte_token(std::string_view s) {
    if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
    int v = 0;
    for (const char c : s.substr(3, 2)) {
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

uint32_t attr_of(TokenType t) {
    switch (t) {
        case TokenType::Normal: return kAttrNormal;
        case TokenType::Unknown: return kAttrUnknown;
        case TokenType::Control: return kAttrControl;
        case TokenType::UserDefined: return kAttrUserDefined;
        case TokenType::Unused: return kAttrUnused;
        case TokenType::Byte: return kAttrByte;
        case TokenType::Undefined: return 0;
    }
    return 0;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out += to;
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
}

struct Loader {
    const gguf::File& file;
    Vocab::Impl& v;

    const gguf::Value* find(std::string_view key) const { return file.find(key); }

    Result<std::string> get_string(std::string_view key, bool required) const {
        const gguf::Value* val = find(key);
        if (!val) {
            if (required) return make_error("tokenizer: missing key '" + std::string(key) + "'");
            return std::string();
        }
        const std::string* s = val->get_string();
        if (!s) return make_error("tokenizer: key '" + std::string(key) + "' is not a string");
        return *s;
    }

    Status get_bool(std::string_view key, bool& out) const {
        const gguf::Value* val = find(key);
        if (!val) return {};
        const auto b = val->get_bool();
        if (!b) return make_error("tokenizer: key '" + std::string(key) + "' is not a bool");
        out = *b;
        return {};
    }

    // A special id from the file must name a token; a default that does not is dropped.
    Status get_id(std::string_view key, int32_t& id) const {
        if (id != kNoToken && !v.valid(id)) id = kNoToken;
        const gguf::Value* val = find(key);
        if (!val) return {};
        const auto u = val->get_uint();
        if (!u) return make_error("tokenizer: key '" + std::string(key) + "' is not a non-negative integer");
        if (*u >= v.tokens.size()) {
            return make_error("tokenizer: '" + std::string(key) + "' = " + std::to_string(*u) +
                              " is out of range (vocabulary has " + std::to_string(v.tokens.size()) + " tokens)");
        }
        id = int32_t(*u);
        return {};
    }

    Status load_tokens();
    Status load_merges();
    Status load_special_ids();
    void apply_text_fixups();
    void build_special_index();
};

Status Loader::load_tokens() {
    const gguf::Value* list = find("tokenizer.ggml.tokens");
    if (!list) return make_error("tokenizer: missing key 'tokenizer.ggml.tokens'");
    const std::vector<std::string>* words = list->get_strings();
    if (!words) return make_error("tokenizer: 'tokenizer.ggml.tokens' is not an array of strings");
    if (words->empty()) return make_error("tokenizer: 'tokenizer.ggml.tokens' is empty");
    if (words->size() > size_t(std::numeric_limits<int32_t>::max())) return make_error("tokenizer: too many tokens");
    const size_t n = words->size();

    std::vector<float> scores;
    if (const gguf::Value* s = find("tokenizer.ggml.scores")) {
        auto arr = s->get_array<float>();
        if (!arr) return make_error("tokenizer: 'tokenizer.ggml.scores' is not a numeric array");
        if (arr->size() < n) {
            return make_error("tokenizer: 'tokenizer.ggml.scores' has " + std::to_string(arr->size()) +
                              " entries for " + std::to_string(n) + " tokens");
        }
        scores = std::move(*arr);
    }
    std::vector<int32_t> types;
    if (const gguf::Value* t = find("tokenizer.ggml.token_type")) {
        auto arr = t->get_array<int32_t>();
        if (!arr) return make_error("tokenizer: 'tokenizer.ggml.token_type' is not an integer array");
        if (arr->size() < n) {
            return make_error("tokenizer: 'tokenizer.ggml.token_type' has " + std::to_string(arr->size()) +
                              " entries for " + std::to_string(n) + " tokens");
        }
        types = std::move(*arr);
    }

    v.tokens.resize(n);
    v.token_to_id.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        TokenData& td = v.tokens[i];
        td.text = (*words)[i];
        if (td.text.empty()) td.text = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
        td.score = scores.empty() ? 0.0f : scores[i];
        if (!types.empty()) {
            if (types[i] < 0 || types[i] > int32_t(TokenType::Byte))
                return make_error("tokenizer: token " + std::to_string(i) + " has invalid type " +
                                  std::to_string(types[i]));
            td.type = TokenType(types[i]);
        }
        td.attr = attr_of(td.type);
        if (td.type == TokenType::Byte && parse_byte_token(td.text) < 0) {
            return make_error("tokenizer: byte token " + std::to_string(i) + " has malformed text (expected <0xXX>)");
        }
        v.token_to_id[td.text] = int32_t(i);  // a later duplicate wins, as llama.cpp
        v.max_token_len = std::max(v.max_token_len, td.text.size());
    }
    return {};
}

Status Loader::load_merges() {
    const gguf::Value* m = find("tokenizer.ggml.merges");
    if (!m) return make_error("tokenizer: missing key 'tokenizer.ggml.merges' (required for gpt2 vocabularies)");
    const std::vector<std::string>* merges = m->get_strings();
    if (!merges) return make_error("tokenizer: 'tokenizer.ggml.merges' is not an array of strings");
    if (merges->size() > size_t(std::numeric_limits<int32_t>::max())) return make_error("tokenizer: too many merges");
    v.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
        const std::string& word = (*merges)[i];
        const size_t sp = word.size() > 1 ? word.find(' ', 1) : std::string::npos;
        if (sp == std::string::npos)
            return make_error("tokenizer: merge " + std::to_string(i) + " has no space separating its two parts");
        const std::string_view a = std::string_view(word).substr(0, sp);
        const std::string_view b = std::string_view(word).substr(sp + 1);
        const int32_t ia = v.find(a), ib = v.find(b);
        const int32_t ir = v.find(std::string(a) + std::string(b));
        if (ia == kNoToken || ib == kNoToken || ir == kNoToken) {
            return make_error("tokenizer: merge " + std::to_string(i) + " ('" + word +
                              "') names a token that is not in the vocabulary");
        }
        v.merges.emplace(uint64_t(uint32_t(ia)) << 32 | uint32_t(ib), BpeMerge{int32_t(i), ir});
    }
    return {};
}

Status Loader::load_special_ids() {
    FERRY_TRY(get_id("tokenizer.ggml.bos_token_id", v.bos));
    FERRY_TRY(get_id("tokenizer.ggml.eos_token_id", v.eos));
    FERRY_TRY(get_id("tokenizer.ggml.eot_token_id", v.eot));
    FERRY_TRY(get_id("tokenizer.ggml.eom_token_id", v.eom));
    FERRY_TRY(get_id("tokenizer.ggml.unknown_token_id", v.unk));
    FERRY_TRY(get_id("tokenizer.ggml.seperator_token_id", v.sep));
    FERRY_TRY(get_id("tokenizer.ggml.padding_token_id", v.pad));
    FERRY_TRY(get_id("tokenizer.ggml.cls_token_id", v.cls));
    FERRY_TRY(get_bool("tokenizer.ggml.add_bos_token", v.add_bos));
    FERRY_TRY(get_bool("tokenizer.ggml.add_eos_token", v.add_eos));
    FERRY_TRY(get_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix));
    FERRY_TRY(get_bool("tokenizer.ggml.normalizer.lowercase", v.wpm_lowercase));
    v.wpm_strip_accents = v.wpm_lowercase;
    FERRY_TRY(get_bool("tokenizer.ggml.normalizer.strip_accents", v.wpm_strip_accents));
    for (const char* key :
         {"tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id"}) {
        int32_t id = kNoToken;
        FERRY_TRY(get_id(key, id));
        if (id != kNoToken) v.eog.insert(id);
    }
    return {};
}

// llama.cpp recognizes some tokens by their text and forces them to CONTROL (which changes how
// they are split out of text) and into the end-of-generation set.
void Loader::apply_text_fixups() {
    auto force_control = [&](int32_t id) { v.tokens[size_t(id)].attr |= kAttrControl; };
    static constexpr std::string_view kEot[] = {"<|eot_id|>",
                                                "<|im_end|>",
                                                "<|end|>",
                                                "<end_of_turn>",
                                                "<|endoftext|>",
                                                "<|end_of_text|>",
                                                "<EOT>",
                                                "_<EOT>",
                                                "[EOT]",
                                                "<\xef\xbd\x9c"
                                                "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                                "<end_of_utterance>"};
    if (v.eot == kNoToken) {
        for (std::string_view t : kEot) {
            if (int32_t id = v.find(t); id != kNoToken) {
                v.eot = id;
                break;
            }
        }
    }
    if (v.eom == kNoToken) v.eom = v.find("<|eom_id|>");
    // FIM markers (prefix, suffix, middle, pad, repo, sep); pad/repo/sep also end generation.
    static constexpr std::string_view kFim[][8] = {
        {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
         "<\xef\xbd\x9c"
         "fim\xe2\x96\x81"
         "begin\xef\xbd\x9c>",
         "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"},
        {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
         "<\xef\xbd\x9c"
         "fim\xe2\x96\x81hole\xef\xbd\x9c>",
         "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"},
        {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
         "<\xef\xbd\x9c"
         "fim\xe2\x96\x81"
         "end\xef\xbd\x9c>",
         "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"},
        {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},
        {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
        {"<|file_sep|>"},
    };
    for (size_t kind = 0; kind < std::size(kFim); ++kind) {
        for (std::string_view t : kFim[kind]) {
            if (t.empty()) continue;
            if (int32_t id = v.find(t); id != kNoToken) {
                force_control(id);
                if (kind >= 3) v.eog.insert(id);
                break;
            }
        }
    }
    static constexpr std::string_view kEog[] = {"<|eot_id|>",
                                                "<|im_end|>",
                                                "<|end|>",
                                                "<|return|>",
                                                "<|call|>",
                                                "<|flush|>",
                                                "<|calls|>",
                                                "<end_of_turn>",
                                                "<|endoftext|>",
                                                "<|eom_id|>",
                                                "<EOT>",
                                                "_<EOT>",
                                                "[EOT]",
                                                "[EOS]",
                                                "<|end_of_text|>",
                                                "<end_of_utterance>",
                                                "<\xef\xbd\x9c"
                                                "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"};
    for (std::string_view t : kEog) {
        if (int32_t id = v.find(t); id != kNoToken) {
            v.eog.insert(id);
            force_control(id);
        }
    }
    // gpt-oss (harmony) channel markers are always rendered and split like user-defined text.
    for (std::string_view t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
        if (int32_t id = v.find(t); id != kNoToken) v.tokens[size_t(id)].attr = kAttrUserDefined;
    }
    for (int32_t id : {v.eos, v.eot, v.eom}) {
        if (id != kNoToken) v.eog.insert(id);
    }
    // harmony: <|end|> ends a message, not the generation, when <|return|> and <|call|> exist.
    const int32_t end = v.find("<|end|>");
    if (end != kNoToken && v.eog.count(end) && v.eog.count(v.find("<|return|>")) &&
        (v.eog.count(v.find("<|call|>")) || (v.eog.count(v.find("<|calls|>")) && v.eog.count(v.find("<|flush|>"))))) {
        v.eog.erase(end);
        v.tokens[size_t(end)].attr = kAttrUserDefined;
    }
    v.eog.erase(kNoToken);
}

void Loader::build_special_index() {
    for (int32_t id = 0; id < int32_t(v.tokens.size()); ++id) {
        if (v.tokens[size_t(id)].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown))
            v.special_tokens.push_back(id);
    }
    std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
        return v.tokens[size_t(a)].text.size() > v.tokens[size_t(b)].text.size();
    });
    v.special_rank.assign(v.tokens.size(), UINT32_MAX);
    for (size_t r = 0; r < v.special_tokens.size(); ++r) {
        const int32_t id = v.special_tokens[r];
        v.special_rank[size_t(id)] = uint32_t(r);
        v.special_trie.insert(v.tokens[size_t(id)].text, id);
    }
}

std::string lower_ascii(std::string s) {
    for (char& c : s) c = char(std::tolower(uint8_t(c)));
    return s;
}

}  // namespace

Result<Vocab> Vocab::from_gguf(const gguf::File& file) {
    auto impl = std::make_shared<Impl>();
    Impl& v = *impl;
    Loader ld{file, v};

    FERRY_ASSIGN(v.model_name, ld.get_string("tokenizer.ggml.model", true));
    FERRY_ASSIGN(v.pre_name, ld.get_string("tokenizer.ggml.pre", false));
    FERRY_TRY(ld.load_tokens());

    // Per-family defaults (llama.cpp), before the file's keys override them.
    if (v.model_name == "llama") {
        v.type = VocabType::Spm;
        v.bos = 1, v.eos = 2, v.unk = 0;
        v.add_bos = true, v.add_space_prefix = true;
    } else if (v.model_name == "bert") {
        v.type = VocabType::Wpm;
        v.bos = 101, v.unk = 100, v.sep = 102, v.pad = 0;
        v.add_bos = true;
    } else if (v.model_name == "gpt2") {
        v.type = VocabType::Bpe;
        v.bos = 11, v.eos = 11;
        if (v.pre_name.empty()) {
            v.pre = tok::PreType::Default;
        } else if (!tok::pre_type_from_name(v.pre_name, v.pre)) {
            return make_error("tokenizer: unsupported pre-tokenizer '" + v.pre_name + "'");
        }
        static constexpr std::string_view kLlama3Names[] = {"llama3",    "llama-v3", "llama-bpe", "falcon3",
                                                            "falcon-h1", "pixtral",  "midm-2.0",  "lfm2"};
        if (std::find(std::begin(kLlama3Names), std::end(kLlama3Names), v.pre_name) != std::end(kLlama3Names)) {
            v.ignore_merges = true;
            v.add_bos = true;
        }
        FERRY_TRY(ld.load_merges());
    } else {
        return make_error("tokenizer: unsupported tokenizer model '" + v.model_name + "'");
    }
    FERRY_TRY(ld.load_special_ids());

    if (v.type == VocabType::Spm) {
        for (int b = 0; b < 256; ++b) {
            int32_t id = v.find(byte_token_text(uint8_t(b)));
            if (id == kNoToken) id = v.find(std::string(1, char(b)));
            v.byte_token[size_t(b)] = id;
        }
    } else {
        v.byte_token.fill(kNoToken);
    }

    ld.apply_text_fixups();
    ld.build_special_index();

    // Token attributes llama.cpp sets by model name (not stored in GGUF).
    std::string name;
    FERRY_ASSIGN(name, ld.get_string("general.name", false));
    name = lower_ascii(name);
    auto set_attr = [&](std::string_view text, uint32_t attr, bool on) {
        const int32_t id = v.find(text);
        if (id == kNoToken) return;
        uint32_t& a = v.tokens[size_t(id)].attr;
        a = on ? (a | attr) : (a & ~attr);
    };
    if (v.pre_name.find("jina-v2-") != std::string::npos) {
        set_attr("<mask>", kAttrLstrip, true);
    } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (int32_t id : v.special_tokens) v.tokens[size_t(id)].attr |= kAttrRstrip;
        set_attr("</s>", kAttrRstrip, true);
        for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, kAttrRstrip, false);
    } else if (name.find("modern-bert") != std::string::npos) {
        set_attr("[MASK]", kAttrLstrip, true);
    }

    FERRY_TRY(detail::build_pieces(v));
    return Vocab(std::move(impl));
}

namespace detail {

Status build_pieces(Vocab::Impl& v) {
    v.pieces.resize(v.tokens.size());
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        const TokenData& td = v.tokens[i];
        std::string& p = v.pieces[i];
        if (td.attr & (kAttrControl | kAttrUnknown | kAttrUserDefined)) {
            p = td.text;
        } else if (td.attr & kAttrNormal) {
            if (v.type == VocabType::Bpe) {
                // Undo bytes_to_unicode; a code point that stands for no byte is rendered the way
                // llama.cpp does, so both print the same thing for such broken vocabularies.
                size_t pos = 0;
                while (pos < td.text.size()) {
                    const size_t start = pos;
                    const auto cp = utf8_decode(td.text, pos);
                    const int b = cp ? tok::unicode_to_byte(*cp) : -1;
                    if (!cp) ++pos;
                    if (b >= 0) {
                        p += char(b);
                        continue;
                    }
                    p += "[UNK_BYTE_0x";
                    for (size_t k = start; k < pos; ++k) {
                        p += hex_digits()[uint8_t(td.text[k]) >> 4];
                        p += hex_digits()[uint8_t(td.text[k]) & 15];
                    }
                    p += td.text + "]";
                }
            } else {
                p = td.text;
                replace_all(p, kSpmSpace, " ");
            }
        } else if (td.attr & kAttrByte) {
            const int b = parse_byte_token(td.text);
            if (b < 0) return make_error("tokenizer: malformed byte token " + std::to_string(i));
            p = std::string(1, char(b));
        }
        // UNUSED and UNDEFINED tokens render as nothing.
    }
    return {};
}

}  // namespace detail

Result<std::vector<int32_t>> Vocab::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    const Impl& v = *impl_;
    if (Status st = utf8_validate(text); !st.ok())
        return make_error("tokenize: invalid UTF-8 in input: " + st.error().message);
    const std::vector<detail::Fragment> frags = detail::split_special(v, text, parse_special);
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    auto push_required = [&](int32_t id, const char* what) -> Status {
        if (!v.valid(id)) return make_error(std::string("tokenize: the vocabulary has no ") + what + " token");
        out.push_back(id);
        return {};
    };

    switch (v.type) {
        case VocabType::Spm: {
            bool prev_special = true;  // the dummy prefix goes at the start and after each special token
            if (add_special && v.add_bos) FERRY_TRY(push_required(v.bos, "BOS"));
            std::string piece;
            for (const detail::Fragment& f : frags) {
                if (f.token != kNoToken) {
                    out.push_back(f.token);
                    prev_special = true;
                    continue;
                }
                piece.clear();
                if (v.add_space_prefix && prev_special) piece = " ";
                piece.append(text.substr(f.begin, f.end - f.begin));
                replace_all(piece, " ", kSpmSpace);
                FERRY_TRY(detail::spm_tokenize(v, piece, out));
                prev_special = false;
            }
            if (add_special && v.add_eos) FERRY_TRY(push_required(v.eos, "EOS"));
            break;
        }
        case VocabType::Bpe: {
            if (add_special && v.add_bos) FERRY_TRY(push_required(v.bos, "BOS"));
            detail::BpeCache cache;
            for (const detail::Fragment& f : frags) {
                if (f.token != kNoToken) {
                    out.push_back(f.token);
                } else {
                    detail::bpe_tokenize(v, text.substr(f.begin, f.end - f.begin), cache, out);
                }
            }
            if (add_special && v.add_eos) FERRY_TRY(push_required(v.eos, "EOS"));
            break;
        }
        case VocabType::Wpm: {
            if (add_special) FERRY_TRY(push_required(v.bos, "CLS"));
            for (const detail::Fragment& f : frags) {
                if (f.token != kNoToken) {
                    out.push_back(f.token);
                } else {
                    detail::wpm_tokenize(v, text.substr(f.begin, f.end - f.begin), out);
                }
            }
            if (add_special) FERRY_TRY(push_required(v.sep, "SEP"));
            break;
        }
    }
    return out;
}

Result<std::string> Vocab::token_to_piece(int32_t id, bool special) const {
    const Impl& v = *impl_;
    if (!v.valid(id)) {
        return make_error("token id " + std::to_string(id) + " is out of range (vocabulary has " +
                          std::to_string(v.tokens.size()) + " tokens)");
    }
    if (!special && (v.tokens[size_t(id)].attr & (kAttrControl | kAttrUnknown))) return std::string();
    return v.pieces[size_t(id)];
}

Result<std::string> Vocab::detokenize(std::span<const int32_t> ids, bool special) const {
    std::string out;
    bool strip_space = impl_->add_space_prefix;
    for (const int32_t id : ids) {
        std::string piece;
        FERRY_ASSIGN(piece, token_to_piece(id, special));
        if (strip_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        strip_space = false;
        out += piece;
    }
    return out;
}

int32_t Vocab::n_tokens() const { return int32_t(impl_->tokens.size()); }
VocabType Vocab::type() const { return impl_->type; }
std::string_view Vocab::type_name() const { return impl_->model_name; }
std::string_view Vocab::pre_name() const { return impl_->pre_name; }
int32_t Vocab::bos() const { return impl_->bos; }
int32_t Vocab::eos() const { return impl_->eos; }
int32_t Vocab::eot() const { return impl_->eot; }
int32_t Vocab::unk() const { return impl_->unk; }
int32_t Vocab::pad() const { return impl_->pad; }
int32_t Vocab::sep() const { return impl_->sep; }
int32_t Vocab::cls() const {
    return impl_->cls != kNoToken ? impl_->cls : (impl_->type == VocabType::Wpm ? impl_->bos : kNoToken);
}
bool Vocab::add_bos() const { return impl_->add_bos; }
bool Vocab::add_eos() const { return impl_->add_eos; }
bool Vocab::is_eog(int32_t id) const { return impl_->eog.count(id) != 0; }
bool Vocab::is_control(int32_t id) const { return impl_->valid(id) && (impl_->tokens[size_t(id)].attr & kAttrControl); }

Result<std::string_view> Vocab::token_text(int32_t id) const {
    if (!impl_->valid(id)) return make_error("token id " + std::to_string(id) + " is out of range");
    return std::string_view(impl_->tokens[size_t(id)].text);
}

Result<TokenType> Vocab::token_type(int32_t id) const {
    if (!impl_->valid(id)) return make_error("token id " + std::to_string(id) + " is out of range");
    return impl_->tokens[size_t(id)].type;
}

Result<std::string> StreamDecoder::push(int32_t id) {
    std::string piece;
    FERRY_ASSIGN(piece, vocab_->token_to_piece(id, special_));
    pending_ += piece;
    const size_t n = utf8_complete_prefix(pending_);
    std::string ready = pending_.substr(0, n);
    pending_.erase(0, n);
    return ready;
}

std::string StreamDecoder::flush() {
    std::string rest = std::move(pending_);
    pending_.clear();
    return rest;
}

}  // namespace ferry::text
