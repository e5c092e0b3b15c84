// Continuous batching: Session::step runs several sequences in one forward pass. Each sequence's
// logits must equal what the same sequence gets alone (Session::prefill), for every architecture
// with Model::multi_sequence(), on both backends: a step that mixes a prompt chunk with decodes of
// other sequences, then decode-only steps, and sequences at different positions.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>

#include "backend/backends.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "runtime/session.h"

namespace ferry {
namespace {

double nmse(std::span<const float> a, std::span<const float> b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        den += double(a[i]) * a[i];
    }
    return den > 0 ? num / den : num;
}

class MultiSequence : public ::testing::TestWithParam<std::tuple<const char*, backend::BackendKind>> {};

TEST_P(MultiSequence, StepEqualsSequencesAlone) {
    const auto [name, kind] = GetParam();
    auto file = gguf::File::open(std::string("tests/data/models/") + name + ".gguf");
    ASSERT_TRUE(file.ok()) << file.error().message;
    auto model = model::load(*file);
    ASSERT_TRUE(model.ok()) << model.error().message;
    ASSERT_TRUE((*model)->multi_sequence());
    const int32_t n_vocab = int32_t((*model)->info().n_vocab);
    const auto ops = backend::make_ops(kind, 2);
    runtime::SessionParams sp;
    sp.n_ctx = 64;
    sp.n_ubatch = 64;

    // Three sequences: A and B have a prompt of different lengths, C starts later.
    const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 2, 7, 3}, {4, 4, 8}, {11, 2, 6, 6, 1, 9, 10, 3, 5}};
    const std::vector<int32_t> next = {3, 7, 12, 5, 1};  // tokens decoded after the prompts

    // Alone: each sequence prefilled, then decoded token by token.
    std::vector<std::vector<std::vector<float>>> alone(prompts.size());
    for (size_t s = 0; s < prompts.size(); ++s) {
        auto session = runtime::Session::create(**model, *ops, sp);
        ASSERT_TRUE(session.ok());
        auto l = session->prefill(prompts[s]);
        ASSERT_TRUE(l.ok());
        alone[s].push_back(*l);
        for (int32_t t : next) {
            auto d = session->decode(t % n_vocab);
            ASSERT_TRUE(d.ok());
            alone[s].push_back(*d);
        }
    }

    // Together: A and B prefill in one step; then A and B decode while C prefills; then all decode.
    std::vector<runtime::Session> sessions;
    for (size_t s = 0; s < prompts.size(); ++s) sessions.push_back(*runtime::Session::create(**model, *ops, sp));
    std::vector<std::vector<std::vector<float>>> together(prompts.size());
    auto run = [&](std::vector<runtime::SeqStep> steps, std::vector<size_t> who) {
        auto out = runtime::Session::step(steps);
        ASSERT_TRUE(out.ok()) << out.error().message;
        ASSERT_EQ(out->size(), who.size());
        for (size_t i = 0; i < who.size(); ++i) together[who[i]].push_back((*out)[i]);
    };
    std::vector<int32_t> tok(prompts.size());
    run({{&sessions[0], prompts[0]}, {&sessions[1], prompts[1]}}, {0, 1});
    tok = {next[0], next[0], 0};
    run({{&sessions[0], std::span(&tok[0], 1)}, {&sessions[2], prompts[2]}, {&sessions[1], std::span(&tok[1], 1)}},
        {0, 2, 1});
    size_t k_ab = 1, k_c = 0;
    while (k_c < next.size()) {
        std::vector<runtime::SeqStep> steps;
        std::vector<size_t> who;
        if (k_ab < next.size()) {
            tok[0] = tok[1] = next[k_ab++];
            steps.push_back({&sessions[0], std::span(&tok[0], 1)});
            steps.push_back({&sessions[1], std::span(&tok[1], 1)});
            who = {0, 1};
        }
        tok[2] = next[k_c++];
        steps.push_back({&sessions[2], std::span(&tok[2], 1)});
        who.push_back(2);
        run(steps, who);
    }

    for (size_t s = 0; s < prompts.size(); ++s) {
        ASSERT_EQ(together[s].size(), alone[s].size()) << "sequence " << s;
        for (size_t i = 0; i < alone[s].size(); ++i)
            EXPECT_LT(nmse(alone[s][i], together[s][i]), 1e-10) << name << " sequence " << s << " step " << i;
    }
}

TEST(MultiSequence, RejectsSharedSessionAndBadTokens) {
    auto file = gguf::File::open("tests/data/models/llama-F16.gguf");
    ASSERT_TRUE(file.ok());
    auto model = model::load(*file);
    ASSERT_TRUE(model.ok());
    const auto ops = backend::make_ops(backend::BackendKind::Cpu, 1);
    runtime::SessionParams sp;
    sp.n_ctx = 8;
    auto a = runtime::Session::create(**model, *ops, sp);
    auto b = runtime::Session::create(**model, *ops, sp);
    const int32_t ok[2] = {1, 2}, bad[1] = {-1}, many[9] = {};
    EXPECT_FALSE(runtime::Session::step(std::vector<runtime::SeqStep>{{&*a, ok}, {&*b, bad}}).ok());
    EXPECT_FALSE(runtime::Session::step(std::vector<runtime::SeqStep>{{&*a, ok}, {&*b, many}}).ok());
    EXPECT_EQ(a->n_past(), 0);
    EXPECT_TRUE(runtime::Session::step(std::vector<runtime::SeqStep>{{&*a, ok}, {&*b, ok}}).ok());
    EXPECT_EQ(a->n_past(), 2);
    EXPECT_EQ(b->n_past(), 2);
}

INSTANTIATE_TEST_SUITE_P(Models, MultiSequence,
                         ::testing::Combine(::testing::Values("llama-F16", "llama-Q8_0", "qwen3-F16", "gemma3-F16"),
                                            ::testing::Values(backend::BackendKind::Reference,
                                                              backend::BackendKind::Cpu)));

}  // namespace
}  // namespace ferry
