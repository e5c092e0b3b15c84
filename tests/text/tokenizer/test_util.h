// Helpers shared by the tokenizer tests: reading llama.cpp's .inp/.out golden format and vocabs.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "text/tokenizer/vocab.h"
#include "text/utf8.h"

namespace ferry::text::testing {

inline const std::string kDataDir = "tests/data/tokenizer/";

inline bool read_file(const std::string& path, std::string& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}

// `test0 SEP test1 SEP ...`, SEP = "\n__ggml_vocab_test__\n"; the final SEP is optional.
inline std::vector<std::string> split_inp(std::string s) {
    const std::string sep = "\n__ggml_vocab_test__\n";
    if (s.size() >= sep.size() && s.compare(s.size() - sep.size(), sep.size(), sep) == 0)
        s.resize(s.size() - sep.size());
    std::vector<std::string> out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
        out.push_back(s.substr(pos, hit - pos));
    out.push_back(s.substr(pos));
    return out;
}

// One line per test: ids each preceded by a space.
inline std::vector<std::vector<int32_t>> parse_out(const std::string& s) {
    std::vector<std::vector<int32_t>> out;
    std::istringstream lines(s);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream ids(line);
        std::vector<int32_t> v;
        long long x;
        while (ids >> x) v.push_back(int32_t(x));
        out.push_back(std::move(v));
    }
    return out;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) {
        s += ' ';
        s += std::to_string(id);
    }
    return s;
}

// Longest prefix of s that does not end inside a UTF-8 sequence.
inline size_t utf8_cut(const std::string& s) {
    size_t n = s.size();
    size_t back = 0;
    while (n > 0 && back < 4 && (uint8_t(s[n - 1]) & 0xC0) == 0x80) --n, ++back;
    if (n > 0 && uint8_t(s[n - 1]) >= 0xC0) --n;  // a lead byte whose sequence may be cut
    return n;
}

inline Result<Vocab> load_vocab(const std::string& path) {
    auto file = gguf::File::open(path);
    if (!file.ok()) return file.error();
    return Vocab::from_gguf(*file);
}

}  // namespace ferry::text::testing
