// A long token-by-token decode against llama.cpp's logits, bit for bit (scripts/long_decode_expected.py):
// the tiny golden llama models whose decode is bit-exact (Q4_K_M, Q8_0; F16 cache, flash attention on), 600 tokens one
// per step in a context of 1024, on 2 and 3 threads. Past 256 cells in use llama.cpp's one-token attention sees a view
// of 512 cells or more and splits the cells among its threads (merging the partial results per head);
// the CPU backend reproduces that split for the same thread count, so every compared position, on both
// sides of the 256- and 512-cell boundaries, must give llama.cpp's exact logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backends.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "read_f32.h"
#include "runtime/session.h"

namespace ferry {
namespace {

const std::string kDir = "tests/data/models/";

std::map<std::string, std::vector<int64_t>> read_lists(const std::string& path) {
    std::map<std::string, std::vector<int64_t>> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream s(line);
        std::string key;
        s >> key;
        int64_t x;
        while (s >> x) out[key].push_back(x);
    }
    return out;
}

using test::read_f32;

struct Case {
    const char* model;
    int n_threads;
};

class LongDecode : public ::testing::TestWithParam<Case> {};

TEST_P(LongDecode, EqualsLlamaCppBitForBit) {
    const std::string base = kDir + GetParam().model;
    const int n_threads = GetParam().n_threads;
    auto lists = read_lists(base + ".long_decode.txt");
    ASSERT_FALSE(lists["tokens"].empty()) << "missing " << base << ".long_decode.txt";
    const std::vector<int64_t>& positions = lists["positions"];
    const std::vector<float> expected = read_f32(base + ".long_decode.t" + std::to_string(n_threads) + ".f32");
    auto file = gguf::File::open(base + ".gguf");
    ASSERT_TRUE(file.ok()) << file.error().message;
    auto model = model::load(*file);
    ASSERT_TRUE(model.ok()) << model.error().message;
    const int64_t n_vocab = (*model)->info().n_vocab;
    ASSERT_EQ(expected.size(), positions.size() * size_t(n_vocab));

    const std::unique_ptr<backend::Ops> ops = backend::make_ops(backend::BackendKind::Cpu, n_threads);
    auto s =
        runtime::Session::create(**model, *ops, {.n_ctx = lists["n_ctx"].at(0), .n_ubatch = 1, .flash_attn = true});
    ASSERT_TRUE(s.ok()) << s.error().message;
    size_t row = 0;
    for (size_t pos = 0; pos < lists["tokens"].size() && row < positions.size(); ++pos) {
        auto logits = s->decode(int32_t(lists["tokens"][pos]));
        ASSERT_TRUE(logits.ok()) << logits.error().message;
        if (int64_t(pos) != positions[row]) continue;
        const float* want = expected.data() + row * size_t(n_vocab);
        int64_t differ = 0;
        double max_diff = 0;
        for (int64_t i = 0; i < n_vocab; ++i) {
            if (std::memcmp(&want[i], &(*logits)[size_t(i)], 4) != 0) ++differ;
            max_diff = std::max(max_diff, double(std::fabs(want[i] - (*logits)[size_t(i)])));
        }
        EXPECT_EQ(differ, 0) << "position " << pos << " (" << pos + 1 << " cells in use), " << n_threads
                             << " threads: max |diff| " << max_diff;
        ++row;
    }
    EXPECT_EQ(row, positions.size());
}

INSTANTIATE_TEST_SUITE_P(Models, LongDecode, ::testing::Values(Case{"llama-Q8_0", 2}, Case{"llama-Q8_0", 3}),
                         [](const auto& info) {
                             std::string n =
                                 std::string(info.param.model) + "_t" + std::to_string(info.param.n_threads);
                             for (char& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

}  // namespace
}  // namespace ferry
