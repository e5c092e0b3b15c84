// Loading a model from a handcrafted tiny GGUF: missing or inconsistent keys and tensors give errors
// that name them; a session rejects a full context, unknown tokens and bad parameters cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include "backend/recording/recording_ops.h"
#include "backend/reference/reference_ops.h"
#include "core/fp16.h"
#include "gguf/writer.h"
#include "model/model.h"
#include "runtime/session.h"

namespace ferry {
namespace {

// A llama with n_embd 8, 2 heads of 4 (1 KV head), n_ff 16, vocab 10, one layer, F32 weights.
struct Spec {
    std::string arch = "llama";
    bool with_block_count = true;
    uint32_t head_count_kv = 1;
    int64_t attn_q_rows = 8;
    // qwen3moe (arch "qwen3moe"): experts of 16 rows, q/k norms, router rows = router_experts.
    uint32_t expert_count = 4;
    uint32_t expert_used_count = 2;
    bool with_expert_ff = true;
    int64_t router_experts = 4;
};

Result<gguf::File> build(const Spec& s) {
    gguf::Writer w;
    auto u32 = [&](const std::string& k, uint32_t v) {
        FERRY_CHECK(w.add(s.arch + "." + k, gguf::Value::u32(v)).ok());
    };
    FERRY_CHECK(w.add("general.architecture", gguf::Value::string(s.arch)).ok());
    if (s.with_block_count) u32("block_count", 1);
    u32("context_length", 16);
    u32("embedding_length", 8);
    u32("feed_forward_length", 16);
    u32("attention.head_count", 2);
    u32("attention.head_count_kv", s.head_count_kv);
    FERRY_CHECK(w.add(s.arch + ".attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f)).ok());
    auto tensor = [&](const std::string& name, std::vector<int64_t> ne) {
        int64_t n = 1;
        for (int64_t d : ne) n *= d;
        std::vector<float> v(static_cast<size_t>(n));
        for (size_t i = 0; i < v.size(); ++i) v[i] = float((i * 7919) % 13) / 13.0f - 0.4f;
        std::vector<uint8_t> bytes(v.size() * 4);
        std::memcpy(bytes.data(), v.data(), bytes.size());
        FERRY_CHECK(w.add_tensor(name, GgmlType::F32, ne, bytes).ok());
    };
    tensor("token_embd.weight", {8, 10});
    tensor("output_norm.weight", {8});
    tensor("blk.0.attn_norm.weight", {8});
    tensor("blk.0.attn_q.weight", {8, s.attn_q_rows});
    tensor("blk.0.attn_k.weight", {8, 4});
    tensor("blk.0.attn_v.weight", {8, 4});
    tensor("blk.0.attn_output.weight", {8, 8});
    tensor("blk.0.ffn_norm.weight", {8});
    if (s.arch == "qwen3moe") {
        u32("expert_count", s.expert_count);
        u32("expert_used_count", s.expert_used_count);
        if (s.with_expert_ff) u32("expert_feed_forward_length", 16);
        tensor("blk.0.attn_q_norm.weight", {4});
        tensor("blk.0.attn_k_norm.weight", {4});
        tensor("blk.0.ffn_gate_inp.weight", {8, s.router_experts});
        tensor("blk.0.ffn_gate_exps.weight", {8, 16, 4});
        tensor("blk.0.ffn_up_exps.weight", {8, 16, 4});
        tensor("blk.0.ffn_down_exps.weight", {16, 8, 4});
    } else {
        tensor("blk.0.ffn_gate.weight", {8, 16});
        tensor("blk.0.ffn_up.weight", {8, 16});
        tensor("blk.0.ffn_down.weight", {16, 8});
    }
    const std::vector<uint8_t> bytes = w.to_bytes();
    return gguf::File::parse(FileData::from_bytes(bytes.data(), bytes.size()));
}

std::string load_error(const Spec& s) {
    auto file = build(s);
    EXPECT_TRUE(file.ok());
    if (!file.ok()) return file.error().message;
    auto model = model::load(*file);
    return model.ok() ? "" : model.error().message;
}

TEST(ModelLoader, LoadsTheTinyLlama) { EXPECT_EQ(load_error({}), ""); }

TEST(ModelLoader, ErrorsNameTheKeyOrTensor) {
    EXPECT_NE(load_error({.with_block_count = false}).find("'llama.block_count': missing"), std::string::npos)
        << load_error({.with_block_count = false});
    EXPECT_NE(load_error({.head_count_kv = 3}).find("'llama.attention.head_count_kv'"), std::string::npos);
    EXPECT_NE(load_error({.attn_q_rows = 12}).find("'blk.0.attn_q.weight': shape {8, 12}, expected {8, 8}"),
              std::string::npos)
        << load_error({.attn_q_rows = 12});
    EXPECT_NE(load_error({.arch = "mamba"}).find("'mamba' is not supported"), std::string::npos);
}

TEST(ModelLoader, Qwen3MoeErrorsNameTheKeyOrTensor) {
    const Spec moe{.arch = "qwen3moe"};
    EXPECT_EQ(load_error(moe), "");
    Spec s = moe;
    s.expert_used_count = 5;
    EXPECT_NE(load_error(s).find("'qwen3moe.expert_used_count': = 5 must be between 1 and expert_count = 4"),
              std::string::npos)
        << load_error(s);
    s = moe;
    s.expert_used_count = 0;
    EXPECT_NE(load_error(s).find("'qwen3moe.expert_used_count'"), std::string::npos) << load_error(s);
    s = moe;
    s.with_expert_ff = false;
    EXPECT_NE(load_error(s).find("'qwen3moe.expert_feed_forward_length': missing"), std::string::npos) << load_error(s);
    s = moe;
    s.router_experts = 3;  // the router disagrees with expert_count
    EXPECT_NE(load_error(s).find("'blk.0.ffn_gate_inp.weight': shape {8, 3}, expected {8, 4}"), std::string::npos)
        << load_error(s);
    s = moe;
    s.router_experts = 8;
    s.expert_count = 8;  // now the expert tensors disagree
    EXPECT_NE(load_error(s).find("'blk.0.ffn_gate_exps.weight': shape {8, 16, 4}, expected {8, 16, 8}"),
              std::string::npos)
        << load_error(s);
}

TEST(Recording, Qwen3MoeRecordsMoeFfn) {
    auto file = build({.arch = "qwen3moe"});
    ASSERT_TRUE(file.ok());
    auto model = model::load(*file);
    ASSERT_TRUE(model.ok()) << model.error().message;
    backend::recording::RecordingOps ops;
    std::vector<std::string> names;
    ops.set_callback([&](const backend::Act&, std::string_view n, int) { names.emplace_back(n); });
    const std::vector<int32_t> five = {1, 2, 3, 4, 5};
    std::vector<backend::KvHandle> kv = {ops.new_kv_layer({16, 1, 4, 4, GgmlType::F32, GgmlType::F32})};
    (*model)->forward(ops, {.tokens = five, .pos0 = 0, .all_logits = true, .state = {}, .seqs = {}}, kv);
    const auto it = std::find_if(ops.ops().begin(), ops.ops().end(), [](const auto& r) { return r.op == "moe_ffn"; });
    ASSERT_NE(it, ops.ops().end());
    EXPECT_EQ(it->weight, "blk.0.ffn_gate_exps.weight");
    EXPECT_EQ(it->out, (std::array<int64_t, 4>{8, 5, 1, 1}));
    EXPECT_GT(it->scratch_bytes, 0u);
    EXPECT_NE(std::find(names.begin(), names.end(), "ffn_moe_out"), names.end());
}

TEST(Session, ContextAndTokenChecks) {
    auto file = build({});
    ASSERT_TRUE(file.ok());
    auto model = model::load(*file);
    ASSERT_TRUE(model.ok()) << model.error().message;
    backend::reference::ReferenceOps ops;

    EXPECT_FALSE(runtime::Session::create(**model, ops, {.n_ubatch = 0}).ok());
    // KV cache types: the model's head size 4 is not a multiple of a block type's 32.
    for (auto [tk, tv] : {std::pair{GgmlType::Q4_0, GgmlType::F16}, std::pair{GgmlType::F16, GgmlType::Q8_0}}) {
        auto bad_kv = runtime::Session::create(**model, ops, {.kv_type_k = tk, .kv_type_v = tv});
        ASSERT_FALSE(bad_kv.ok());
        const std::string& msg = bad_kv.error().message;
        EXPECT_NE(msg.find(std::string(type_name(tk == GgmlType::F16 ? tv : tk))), std::string::npos) << msg;
        EXPECT_NE(msg.find("head size is 4"), std::string::npos) << msg;
    }
    EXPECT_FALSE(runtime::Session::create(**model, ops, {.kv_type_k = GgmlType::Q4_K}).ok());
    EXPECT_TRUE(runtime::Session::create(**model, ops, {.n_ctx = 8, .kv_type_k = GgmlType::BF16}).ok());

    auto s = runtime::Session::create(**model, ops, {.n_ctx = 0, .n_ubatch = 3});  // 0: the model's 16
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->n_ctx(), 16);
    const std::vector<int32_t> bad = {1, 10};
    auto r = s->prefill(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("token 10 at index 1"), std::string::npos) << r.error().message;
    EXPECT_EQ(s->n_past(), 0);

    const std::vector<int32_t> ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
    auto all = s->prefill(ten, runtime::Logits::All);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->size(), 100u);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(s->decode(i).ok());
    auto full = s->decode(1);
    ASSERT_FALSE(full.ok());
    EXPECT_NE(full.error().message.find("context full: 16 tokens in a context of 16"), std::string::npos)
        << full.error().message;

    // The last decode's logits equal the last row of one batched prefill of the same 16 tokens.
    backend::reference::ReferenceOps ops2;
    auto s2 = runtime::Session::create(**model, ops2, {.n_ctx = 16});
    std::vector<int32_t> all16 = ten;
    for (int i = 0; i < 6; ++i) all16.push_back(i);
    auto once = s2->prefill(all16);
    s->clear();
    auto again = s->prefill(all16);
    ASSERT_TRUE(once.ok() && again.ok());
    EXPECT_EQ(*once, *again);
}

// The same forward through the dry-run executor: the op list with shapes and llama.cpp's names.
TEST(Recording, ListsOpsWithShapesAndNames) {
    auto file = build({});
    ASSERT_TRUE(file.ok());
    auto model = model::load(*file);
    ASSERT_TRUE(model.ok());
    backend::recording::RecordingOps ops;
    std::vector<std::string> names;
    ops.set_callback([&](const backend::Act&, std::string_view n, int) { names.emplace_back(n); });
    auto s =
        runtime::Session::create(**model, ops, {.n_ctx = 16, .kv_type_k = GgmlType::F32, .kv_type_v = GgmlType::F32});
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(ops.kv_bytes(), 16u * 1 * (4 + 4) * 4);
    const std::vector<int32_t> five = {1, 2, 3, 4, 5};
    ASSERT_TRUE(s->prefill(five).ok());  // ops_ is reset after the prefill, so check a forward directly

    ops.reset();
    std::vector<backend::KvHandle> kv = {backend::KvHandle{0}};
    const backend::Act logits =
        (*model)->forward(ops, {.tokens = five, .pos0 = 0, .all_logits = false, .state = {}, .seqs = {}}, kv);
    EXPECT_EQ(logits.ne, (std::array<int64_t, 4>{10, 1, 1, 1}));
    const auto& rec = ops.ops();
    ASSERT_FALSE(rec.empty());
    EXPECT_EQ(rec.front().op, "get_rows");
    EXPECT_EQ(rec.front().out, (std::array<int64_t, 4>{8, 5, 1, 1}));
    bool saw_q = false, saw_attn = false;
    for (const auto& r : rec) {
        if (r.op == "matmul" && r.weight == "blk.0.attn_q.weight") {
            saw_q = true;
            EXPECT_EQ(r.in.at(0), (std::array<int64_t, 4>{8, 5, 1, 1}));
            EXPECT_EQ(r.out, (std::array<int64_t, 4>{8, 5, 1, 1}));
        }
        if (r.op == "attention") {
            saw_attn = true;
            EXPECT_EQ(r.out, (std::array<int64_t, 4>{4, 2, 5, 1}));
        }
    }
    EXPECT_TRUE(saw_q && saw_attn);
    EXPECT_EQ(rec.back().op, "matmul");
    EXPECT_EQ(rec.back().weight, "token_embd.weight");  // tied: no output.weight
    for (const char* n : {"attn_norm", "Qcur", "Kcur", "Vcur", "kqv_out", "ffn_inp", "ffn_out", "l_out", "result_norm",
                          "result_output"})
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
}

}  // namespace
}  // namespace ferry
