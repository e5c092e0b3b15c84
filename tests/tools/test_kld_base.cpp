// KL-divergence base files (tools/kld_base.h) and the statistics over them (tools/kld_stats.h):
// encode → write → read round trips in both layouts, every truncation and random corruptions of a
// valid file (rejected with a message or read back, never a crash or a huge allocation), hostile
// headers, and the compact layout's tail bound checked against the exact KLD.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tools/kld_base.h"
#include "tools/kld_stats.h"

namespace ferry::tools::kld {
namespace {

constexpr int32_t kVocab = 50, kCtx = 8, kChunks = 2;

std::vector<float> random_logits(std::mt19937& rng, int32_t n, float spread) {
    std::normal_distribution<float> d(0.f, spread);
    std::vector<float> l(static_cast<size_t>(n));
    for (float& x : l) x = d(rng);
    return l;
}

struct BaseRun {
    std::vector<int32_t> tokens;
    std::vector<std::vector<float>> logits;  // per chunk, n_scored rows of kVocab
};

BaseRun random_run(uint32_t seed) {
    std::mt19937 rng(seed);
    BaseRun r;
    for (int i = 0; i < kChunks * kCtx; ++i) r.tokens.push_back(int32_t(rng() % kVocab));
    for (int c = 0; c < kChunks; ++c) {
        std::vector<float> all;
        for (int i = 0; i < n_scored(kCtx); ++i) {
            const auto l = random_logits(rng, kVocab, 3.f);
            all.insert(all.end(), l.begin(), l.end());
        }
        r.logits.push_back(std::move(all));
    }
    return r;
}

// Writes a base file of `run` through the real Writer and returns its bytes.
std::string write_file(const BaseRun& run, Format format, int32_t top_k) {
    const std::string path = ::testing::TempDir() + "kld_base_test.bin";
    Header h{
        .format = format, .n_ctx = kCtx, .n_vocab = kVocab, .n_chunk = kChunks, .top_k = top_k, .tokens = run.tokens};
    auto w = Writer::create(path, h);
    EXPECT_TRUE(w.ok()) << w.error().message;
    Encoder enc(format, kVocab, top_k);
    for (int c = 0; c < kChunks; ++c) {
        enc.begin(n_scored(kCtx));
        for (int r = 0; r < n_scored(kCtx); ++r)
            enc.encode(r, std::span<const float>(run.logits[size_t(c)]).subspan(size_t(r * kVocab), kVocab),
                       run.tokens[size_t(c * kCtx + kCtx / 2 + r + 1)]);
        EXPECT_TRUE(w->write_chunk(enc).ok());
    }
    EXPECT_TRUE(w->close().ok());
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(path.c_str());
    return bytes;
}

Result<Reader> open_bytes(const std::string& bytes) {
    return Reader::open(std::make_unique<std::istringstream>(bytes), "test.kld");
}

// Opens and reads every chunk; the first error, or success.
Status read_all(const std::string& bytes) {
    auto r = open_bytes(bytes);
    if (!r.ok()) return r.error();
    Chunk c;
    for (int i = 0; i < r->header().n_chunk; ++i) FERRY_TRY(r->read_chunk(c));
    return {};
}

// Mean KLD of `run` against a base file of itself.
double self_kld(const BaseRun& run, const std::string& bytes, double* bound = nullptr) {
    auto r = open_bytes(bytes);
    EXPECT_TRUE(r.ok()) << r.error().message;
    Stats stats(kVocab);
    Chunk chunk;
    for (int c = 0; c < kChunks; ++c) {
        EXPECT_TRUE(r->read_chunk(chunk).ok());
        for (int i = 0; i < n_scored(kCtx); ++i)
            stats.add(std::span<const float>(run.logits[size_t(c)]).subspan(size_t(i * kVocab), kVocab), chunk.row(i),
                      run.tokens[size_t(c * kCtx + kCtx / 2 + i + 1)]);
    }
    EXPECT_EQ(stats.same_top(), 1.0);
    if (bound) *bound = stats.mean_tail_bound();
    return stats.mean_kld();
}

TEST(KldBase, LlamaLayoutRoundTrip) {
    const BaseRun run = random_run(1);
    const std::string bytes = write_file(run, Format::Llama, 0);
    EXPECT_EQ(bytes.size(), size_t(20 + 4 * kChunks * kCtx + kChunks * n_scored(kCtx) * (2 * 50 + 8)));
    EXPECT_EQ(bytes.substr(0, 8), "_logits_");
    auto r = open_bytes(bytes);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->header().tokens, run.tokens);
    EXPECT_EQ(r->header().format, Format::Llama);
    // The 16-bit encoding costs at most ~1e-4 nats per token.
    EXPECT_NEAR(self_kld(run, bytes), 0.0, 1e-4);
}

TEST(KldBase, CompactLayoutRoundTrip) {
    const BaseRun run = random_run(2);
    for (int32_t k : {1, 7, kVocab}) {
        const std::string bytes = write_file(run, Format::Compact, k);
        EXPECT_EQ(bytes.size(), size_t(28 + 4 * kChunks * kCtx + kChunks * n_scored(kCtx) * (8 + 8 * k)));
        double bound = -1;
        // Top-k plus the merged tail of the very same distribution: exactly zero.
        EXPECT_NEAR(self_kld(run, bytes, &bound), 0.0, 1e-6) << "k=" << k;
        // The bound does not know the tails are equal: zero only when nothing is left out.
        if (k == kVocab) {
            EXPECT_EQ(bound, 0.0);
        }
        EXPECT_GE(bound, 0.0);
    }
}

// The tail bucket gives a lower bound on the exact KLD, and the printed bound covers the rest.
TEST(KldStats, CompactTailBoundHolds) {
    std::mt19937 rng(3);
    const int32_t n = 400;
    for (int trial = 0; trial < 20; ++trial) {
        const auto base = random_logits(rng, n, 2.f);
        auto q = base;
        std::normal_distribution<float> noise(0.f, 0.5f + 0.1f * float(trial));
        for (float& x : q) x += noise(rng);
        Encoder enc(Format::Compact, n, 16);
        enc.begin(1);
        enc.encode(0, base, 5);
        Stats stats(n);
        stats.add(q, enc.chunk().row(0), 5);
        auto log_softmax = [](const std::vector<float>& l) {
            double m = -INFINITY, s = 0;
            for (float x : l) m = std::max(m, double(x));
            for (float x : l) s += std::exp(double(x) - m);
            std::vector<double> out;
            for (float x : l) out.push_back(double(x) - m - std::log(s));
            return out;
        };
        const auto lp = log_softmax(base), lq = log_softmax(q);
        double exact = 0;
        for (int32_t i = 0; i < n; ++i) exact += std::exp(lp[size_t(i)]) * (lp[size_t(i)] - lq[size_t(i)]);
        EXPECT_LE(stats.mean_kld(), exact + 1e-6) << trial;
        EXPECT_GE(stats.mean_kld() + stats.mean_tail_bound(), exact - 1e-6) << trial;
    }
}

TEST(KldBase, EveryTruncationIsRejected) {
    const BaseRun run = random_run(4);
    for (Format f : {Format::Llama, Format::Compact}) {
        const std::string bytes = write_file(run, f, 5);
        ASSERT_TRUE(read_all(bytes).ok());
        for (size_t n = 0; n < bytes.size(); ++n) {
            const Status st = read_all(bytes.substr(0, n));
            ASSERT_FALSE(st.ok()) << "a file cut at " << n << " bytes was accepted";
        }
        EXPECT_FALSE(read_all(bytes + "x").ok());
    }
}

TEST(KldBase, RandomCorruptionsNeverCrash) {
    const BaseRun run = random_run(5);
    std::mt19937 rng(6);
    for (Format f : {Format::Llama, Format::Compact}) {
        const std::string good = write_file(run, f, 5);
        int rejected = 0;
        for (int trial = 0; trial < 2000; ++trial) {
            std::string bytes = good;
            const int flips = 1 + int(rng() % 4);
            for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] = char(rng());
            const Status st = read_all(bytes);
            if (!st.ok()) {
                ++rejected;
                EXPECT_NE(st.error().message.find("test.kld"), std::string::npos);
            }
        }
        EXPECT_GT(rejected, 100);
    }
}

// The 8-byte magic followed by little-endian 32-bit fields.
std::string header_bytes(std::string_view magic, std::initializer_list<int64_t> fields) {
    std::string b(magic);
    for (int64_t x : fields) {
        const uint32_t w = uint32_t(x);
        b.append(reinterpret_cast<const char*>(&w), 4);
    }
    return b;
}

TEST(KldBase, HostileHeaders) {
    struct Case {
        std::string bytes, expect;
    };
    const Case cases[] = {
        {"", "magic"},
        {std::string("GGUF\3\0\0\0", 8), "not a KL-divergence base file"},
        {"_logits_", "truncated in the header"},
        {header_bytes("_logits_", {0, 50, 1}), "context size 0"},
        {header_bytes("_logits_", {0xffffffff, 50, 1}), "context size"},
        {header_bytes("_logits_", {8, -5, 1}), "vocabulary size -5"},
        {header_bytes("_logits_", {8, 50, 0}), "chunk count 0"},
        {header_bytes("_logits_", {8, 50, -1}), "chunk count -1"},
        // Huge counts with a tiny file: rejected from the size, nothing allocated.
        {header_bytes("_logits_", {1 << 24, 1 << 25, 0x7fffffff}), "truncated"},
        {header_bytes("_topklp_", {2}), "version 2"},
        {header_bytes("_topklp_", {1, 8, 50, 1, 0}), "top-k 0"},
        {header_bytes("_topklp_", {1, 8, 50, 1, 51}), "top-k 51"},
    };
    for (const Case& c : cases) {
        auto r = open_bytes(c.bytes);
        ASSERT_FALSE(r.ok()) << c.expect;
        EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
    }
}

TEST(KldBase, TokenOutsideVocabulary) {
    BaseRun run = random_run(7);
    run.tokens[3] = kVocab;
    // The writer trusts its caller; the reader does not.
    Header h{.format = Format::Llama,
             .n_ctx = kCtx,
             .n_vocab = kVocab,
             .n_chunk = kChunks,
             .top_k = 0,
             .tokens = run.tokens};
    std::string bytes = header_bytes("_logits_", {kCtx, kVocab, kChunks});
    bytes.append(reinterpret_cast<const char*>(h.tokens.data()), h.tokens.size() * 4);
    bytes.append(size_t(kChunks * n_scored(kCtx) * (2 * 50 + 8)), '\0');
    auto r = open_bytes(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("outside its vocabulary"), std::string::npos) << r.error().message;
}

TEST(KldBase, WriterRejectsTopKOutOfRange) {
    for (int32_t k : {0, -3, kVocab + 1, 5000}) {
        Header h{.format = Format::Compact,
                 .n_ctx = kCtx,
                 .n_vocab = kVocab,
                 .n_chunk = 1,
                 .top_k = k,
                 .tokens = std::vector<int32_t>(kCtx, 0)};
        auto w = Writer::create(::testing::TempDir() + "never.kld", h);
        ASSERT_FALSE(w.ok());
        EXPECT_NE(w.error().message.find("out of range"), std::string::npos);
    }
}

}  // namespace
}  // namespace ferry::tools::kld
