// Sessions of a hybrid model (the tiny qwen35-F16 golden file): the recurrent state beside the KV
// cache, checkpoints, truncate for multi-turn prefix reuse and speculative rollback, and the memory
// accounting with the Qwen3.5-35B-A3B shapes of SPEC §1.1 / §2.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "backend/backends.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "model/qwen35_common.h"
#include "runtime/session.h"

namespace ferry::runtime {
namespace {

class HybridSession : public ::testing::Test {
protected:
    void SetUp() override {
        auto file = gguf::File::open("tests/data/models/qwen35-F16.gguf");
        ASSERT_TRUE(file.ok()) << file.error().message;
        file_ = std::make_unique<gguf::File>(std::move(file).value());
        auto model = model::load(*file_);
        ASSERT_TRUE(model.ok()) << model.error().message;
        model_ = std::move(model).value();
        ops_ = backend::make_ops(backend::BackendKind::Cpu, 2);
        tokens_.resize(48);
        for (size_t i = 0; i < tokens_.size(); ++i) tokens_[i] = int32_t((i * 37 + 11) % 500);
    }

    Session session(int64_t n_checkpoints = 4) {
        auto s = Session::create(*model_, *ops_, {.n_ctx = 128, .n_ubatch = 16, .n_checkpoints = n_checkpoints});
        EXPECT_TRUE(s.ok()) << s.error().message;
        return std::move(s).value();
    }

    // Logits of the last of tokens[0, n) from a fresh session, fed in one prefill.
    std::vector<float> fresh(size_t n) {
        auto s = Session::create(*model_, *ops_, {.n_ctx = 128, .n_ubatch = 16});
        auto l = s->prefill(std::span<const int32_t>(tokens_).first(n));
        EXPECT_TRUE(l.ok());
        return std::move(l).value();
    }

    static double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
        double d = 0;
        for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
        return a.size() == b.size() ? d : INFINITY;
    }

    std::unique_ptr<gguf::File> file_;
    std::unique_ptr<model::Model> model_;
    std::unique_ptr<backend::Ops> ops_;
    std::vector<int32_t> tokens_;
};

// Our own batched vs token-by-token logits differ by float rounding only (llama.cpp's own: 0.009).
constexpr double kTol = 0.02;

TEST_F(HybridSession, DeclaresStateBesideKv) {
    EXPECT_EQ(model_->state_layers().size(), 3u);                               // layers 0-2 Gated DeltaNet
    EXPECT_EQ(model_->kv_layers(64, GgmlType::F16, GgmlType::F16).size(), 1u);  // layer 3
    const MemoryUse m = session().memory();
    EXPECT_EQ(m.n_state_layers, 3);
    EXPECT_EQ(m.n_kv_layers, 1);
    // conv: 3 x (2*2*64 + 4*64) channels, ssm: 4 heads x 64 x 64, f32.
    EXPECT_EQ(m.state_bytes, 3u * (3 * 512 + 4 * 64 * 64) * 4);
    EXPECT_EQ(m.kv_bytes_per_token, 2u * 64 * 2 * 2);
    EXPECT_EQ(m.kv_bytes, m.kv_bytes_per_token * 128);
}

TEST_F(HybridSession, MultiTurnPrefixReuseFromCheckpoint) {
    Session s = session();
    ASSERT_TRUE(s.prefill(std::span<const int32_t>(tokens_).first(30)).ok());  // turn 1: checkpoint at 30
    for (size_t i = 30; i < 36; ++i) ASSERT_TRUE(s.decode(tokens_[i]).ok());   // the answer
    EXPECT_EQ(s.checkpoint_positions(), std::vector<int64_t>{30});
    // Turn 2 shares the first 33 tokens: restore at 30, recompute 3, then the new part.
    EXPECT_EQ(s.truncate_cost(33), 3);
    ASSERT_TRUE(s.truncate(33).ok());
    EXPECT_EQ(s.last_truncate_recomputed(), 3);
    EXPECT_EQ(s.n_past(), 33);
    auto l = s.prefill(std::span<const int32_t>(tokens_).subspan(33, 15));
    ASSERT_TRUE(l.ok());
    EXPECT_LE(max_diff(*l, fresh(48)), kTol);
    // Exactly at a checkpoint: nothing to recompute.
    ASSERT_TRUE(s.truncate(30).ok());
    EXPECT_EQ(s.last_truncate_recomputed(), 0);
    auto d = s.decode(tokens_[30]);
    ASSERT_TRUE(d.ok());
    EXPECT_LE(max_diff(*d, fresh(31)), kTol);
}

TEST_F(HybridSession, SpeculativeRollbackOfLastTokens) {
    Session s = session();
    ASSERT_TRUE(s.prefill(std::span<const int32_t>(tokens_).first(20)).ok());
    for (size_t i = 20; i < 24; ++i) ASSERT_TRUE(s.decode(tokens_[i]).ok());
    s.checkpoint();  // before verifying a draft of 5 tokens
    const std::vector<int32_t> draft = {7, 8, 9, 10, 11};
    ASSERT_TRUE(s.prefill(draft, Logits::All).ok());
    // Every draft token rejected: back to 24 (the explicit checkpoint), then the real continuation.
    ASSERT_TRUE(s.truncate(24).ok());
    EXPECT_EQ(s.last_truncate_recomputed(), 0);
    auto l = s.decode(tokens_[24]);
    ASSERT_TRUE(l.ok());
    EXPECT_LE(max_diff(*l, fresh(25)), kTol);
    // Roll back 2 of the last 3 tokens: the checkpoint the draft's prefill left at 29 is gone, the one
    // at 28 is past the target, so the state comes from 24 and tokens 24, 25 are recomputed.
    ASSERT_TRUE(s.prefill(std::span<const int32_t>(tokens_).subspan(25, 3)).ok());  // 28, checkpoint at 28
    ASSERT_TRUE(s.truncate(26).ok());
    EXPECT_EQ(s.last_truncate_recomputed(), 2);
    auto m = s.decode(tokens_[26]);
    ASSERT_TRUE(m.ok());
    EXPECT_LE(max_diff(*m, fresh(27)), kTol);
}

TEST_F(HybridSession, WithoutCheckpointsTruncateRecomputesFromTheStart) {
    Session s = session(/*n_checkpoints=*/0);
    ASSERT_TRUE(s.prefill(std::span<const int32_t>(tokens_).first(40)).ok());
    EXPECT_TRUE(s.checkpoint_positions().empty());
    EXPECT_EQ(s.truncate_cost(25), 25);
    ASSERT_TRUE(s.truncate(25).ok());
    EXPECT_EQ(s.last_truncate_recomputed(), 25);
    auto l = s.decode(tokens_[25]);
    ASSERT_TRUE(l.ok());
    EXPECT_LE(max_diff(*l, fresh(26)), kTol);
    EXPECT_FALSE(s.truncate(27).ok());  // beyond what the session holds
    // clear() zeroes the state: the sequence starts over.
    s.clear();
    auto c = s.prefill(std::span<const int32_t>(tokens_).first(10));
    ASSERT_TRUE(c.ok());
    EXPECT_LE(max_diff(*c, fresh(10)), kTol);
}

TEST_F(HybridSession, OldestCheckpointDroppedFirst) {
    Session s = session(/*n_checkpoints=*/2);
    for (size_t at : {5, 10, 15}) ASSERT_TRUE(s.prefill(std::span<const int32_t>(tokens_).subspan(at - 5, 5)).ok());
    EXPECT_EQ(s.checkpoint_positions(), (std::vector<int64_t>{10, 15}));
    EXPECT_EQ(s.truncate_cost(12), 2);
    EXPECT_EQ(s.truncate_cost(7), 7);
}

// The MTP variant: block_count 5 counts the MTP block, whose tensors load and are kept; the trunk has 4
// layers (3 Gated DeltaNet + 1 attention), so the MTP block adds no KV or state layer.
TEST(HybridModel, MtpBlockLoadsAndStaysOutOfTheTrunk) {
    auto file = gguf::File::open("tests/data/models/qwen35moe-mtp-MXFP4_MOE.gguf");
    ASSERT_TRUE(file.ok()) << file.error().message;
    auto model = model::load(*file);
    ASSERT_TRUE(model.ok()) << model.error().message;
    EXPECT_EQ((*model)->info().arch, "qwen35moe");
    EXPECT_EQ((*model)->info().n_layer, 4);
    EXPECT_EQ((*model)->state_layers().size(), 3u);
    EXPECT_EQ((*model)->kv_layers(32, GgmlType::F16, GgmlType::F16).size(), 1u);
}

// SPEC §1.1 / §2: Qwen3.5-35B-A3B keeps 62.8 MiB of recurrent state per sequence (30 GDN layers) and
// 20 KiB of f16 KV per token (10 attention layers x 2 KV heads x 256 x K and V).
TEST(MemoryUse, Qwen35MoeShapesFromSpec) {
    model::HybridHparams hp;
    hp.base.n_layer = 40;
    hp.base.n_head = 16;
    hp.base.n_head_kv = 2;
    hp.base.head_dim = 256;
    hp.base.head_dim_v = 256;
    hp.full_attention_interval = 4;
    hp.conv_kernel = 4;
    hp.head_dim_k = 128;
    hp.n_head_k = 16;
    hp.n_head_v = 32;
    hp.head_dim_v = 128;
    const auto state = model::hybrid_state_layers(hp);
    ASSERT_EQ(state.size(), 30u);
    EXPECT_EQ(state[0].conv_floats(), 24576);  // n_embd_r = 3 x (2 x 16 x 128 + 4096)
    EXPECT_EQ(state[0].ssm_floats(), 524288);  // n_embd_s = 128 x 4096
    const MemoryUse f16 = memory_use(model::hybrid_kv_layers(hp, 65536, GgmlType::F16, GgmlType::F16), state);
    EXPECT_EQ(f16.n_kv_layers, 10);
    EXPECT_NEAR(double(f16.state_bytes) / (1 << 20), 62.8, 0.05);
    EXPECT_EQ(f16.kv_bytes_per_token, 20u * 1024);
    EXPECT_EQ(f16.kv_bytes, 1280ull << 20);  // 1.25 GiB at 64K
    const MemoryUse q8 = memory_use(model::hybrid_kv_layers(hp, 65536, GgmlType::Q8_0, GgmlType::Q8_0), state);
    EXPECT_EQ(q8.kv_bytes_per_token, 10880u);  // ~10.6 KiB
}

}  // namespace
}  // namespace ferry::runtime
