// Sampling stages on hand-computed examples, the chain, and seeded draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "runtime/sampling.h"

// Counts every allocation in this binary, so a test can show sample() makes none.
static std::atomic<long> g_allocations{0};
[[gnu::noinline]] void* operator new(std::size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace ferry::runtime {
namespace {

Candidates make(const std::vector<float>& logits) {
    Candidates c;
    c.fill(logits);
    return c;
}

std::vector<int32_t> ids(const Candidates& c) {
    std::vector<int32_t> out;
    for (const Candidate& x : c.live()) out.push_back(x.id);
    return out;
}

std::vector<int32_t> ids(std::span<const Candidate> live) {
    std::vector<int32_t> out;
    for (const Candidate& x : live) out.push_back(x.id);
    return out;
}

// Logits whose softmax is exactly these probabilities (up to rounding).
std::vector<float> log_of(const std::vector<double>& probs) {
    std::vector<float> out;
    for (double p : probs) out.push_back(float(std::log(p)));
    return out;
}

// Every stage off: the chain leaves the logits alone.
SamplingParams neutral() {
    SamplingParams p;
    p.seed = 1234;
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

Sampler make_sampler(const SamplingParams& p, int32_t n_vocab) {
    auto s = Sampler::create(p, n_vocab);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return std::move(s).value();
}

// ---- validation and order strings

void expect_rejected(const SamplingParams& p, const std::string& name) {
    const Status st = validate(p);
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.error().message.rfind(name + " = ", 0), 0u) << st.error().message;
}

TEST(SamplingParams, DefaultsAreLlamaCpps) {
    const SamplingParams p;
    EXPECT_EQ(p.seed, kRandomSeed);
    EXPECT_FLOAT_EQ(p.temp, 0.8f);
    EXPECT_EQ(p.top_k, 40);
    EXPECT_FLOAT_EQ(p.top_p, 0.95f);
    EXPECT_FLOAT_EQ(p.min_p, 0.05f);
    EXPECT_FLOAT_EQ(p.typical_p, 1.0f);
    EXPECT_EQ(p.repeat_last_n, 64);
    EXPECT_FLOAT_EQ(p.repeat_penalty, 1.0f);
    EXPECT_EQ(format_sampler_order(p.order), "penalties;top_k;typical_p;top_p;min_p;temperature");
    EXPECT_TRUE(validate(p).ok());
}

TEST(SamplingParams, ValidateRejectsOutOfRange) {
    const float nan = std::nanf("");
    const float inf = INFINITY;
    auto with = [](auto setter) {
        SamplingParams p;
        setter(p);
        return p;
    };
    expect_rejected(with([](SamplingParams& p) { p.top_k = -1; }), "top_k");
    expect_rejected(with([](SamplingParams& p) { p.top_p = 0.0f; }), "top_p");
    expect_rejected(with([](SamplingParams& p) { p.top_p = 1.5f; }), "top_p");
    expect_rejected(with([&](SamplingParams& p) { p.top_p = nan; }), "top_p");
    expect_rejected(with([](SamplingParams& p) { p.min_p = -0.1f; }), "min_p");
    expect_rejected(with([](SamplingParams& p) { p.min_p = 1.1f; }), "min_p");
    expect_rejected(with([](SamplingParams& p) { p.typical_p = 0.0f; }), "typical_p");
    expect_rejected(with([](SamplingParams& p) { p.typical_p = 2.0f; }), "typical_p");
    expect_rejected(with([](SamplingParams& p) { p.repeat_last_n = -2; }), "repeat_last_n");
    expect_rejected(with([](SamplingParams& p) { p.repeat_penalty = 0.0f; }), "repeat_penalty");
    expect_rejected(with([](SamplingParams& p) { p.repeat_penalty = -1.1f; }), "repeat_penalty");
    expect_rejected(with([&](SamplingParams& p) { p.temp = nan; }), "temp");
    expect_rejected(with([&](SamplingParams& p) { p.temp = inf; }), "temp");
    expect_rejected(with([&](SamplingParams& p) { p.frequency_penalty = inf; }), "frequency_penalty");
    expect_rejected(with([&](SamplingParams& p) { p.presence_penalty = nan; }), "presence_penalty");
    expect_rejected(with([](SamplingParams& p) { p.min_keep = -1; }), "min_keep");

    // The edges of each range are accepted.
    SamplingParams p;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 1.0f;
    p.typical_p = 1.0f;
    p.repeat_last_n = -1;
    p.temp = -1.0f;
    p.frequency_penalty = -2.0f;
    EXPECT_TRUE(validate(p).ok());
    p.min_p = 0.0f;
    p.repeat_last_n = 0;
    EXPECT_TRUE(validate(p).ok());
}

TEST(SamplingParams, CreateValidatesAndResolvesContextWindow) {
    SamplingParams p;
    p.top_p = 0.0f;
    auto bad = Sampler::create(p, 10);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("top_p"), std::string::npos);

    p = SamplingParams{};
    p.repeat_last_n = -1;
    EXPECT_FALSE(Sampler::create(p, 10).ok());
    EXPECT_TRUE(Sampler::create(p, 10, 128).ok());
    EXPECT_FALSE(Sampler::create(SamplingParams{}, 0).ok());
}

TEST(SamplingParams, OrderStrings) {
    auto order = parse_sampler_order("penalties;top_k;typical_p;top_p;min_p;temperature");
    ASSERT_TRUE(order.ok());
    EXPECT_EQ(*order, default_sampler_order());

    order = parse_sampler_order("temp;min-p;;nucleus;typ_p;top-k");
    ASSERT_TRUE(order.ok());
    EXPECT_EQ(format_sampler_order(*order), "temperature;min_p;top_p;typical_p;top_k");

    auto bad = parse_sampler_order("top_k;xtc");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("'xtc'"), std::string::npos);

    auto letters = parse_sampler_letters("ekypmt");
    ASSERT_TRUE(letters.ok());
    EXPECT_EQ(*letters, default_sampler_order());
    EXPECT_FALSE(parse_sampler_letters("kx").ok());
}

// ---- stages on hand-computed examples

TEST(SamplingStages, TopKKeepsTheKLargestLowerIdOnTies) {
    Candidates c = make({1, 5, 3, 5, 2});
    apply_top_k(c, 2);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3}));

    c = make({1, 5, 3, 5, 2});
    apply_top_k(c, 3);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 2}));

    c = make({1, 5, 3, 5, 2});
    apply_top_k(c, 0);  // off
    EXPECT_EQ(c.size, 5u);
    apply_top_k(c, 10);  // k beyond the list keeps everything
    EXPECT_EQ(c.size, 5u);
}

// probabilities 0.05, 0.5, 0.15, 0.3 for ids 0..3: sorted 0.5 (1), 0.3 (3), 0.15 (2), 0.05 (0);
// cumulative 0.5, 0.8, 0.95, 1.0.
const std::vector<double> kProbs = {0.05, 0.5, 0.15, 0.3};

TEST(SamplingStages, TopPKeepsSmallestPrefixReachingP) {
    const auto run = [](float p, size_t min_keep = 0) {
        Candidates c = make(log_of(kProbs));
        apply_top_p(c, p, min_keep);
        return ids(c);
    };
    EXPECT_EQ(run(0.49f), (std::vector<int32_t>{1}));
    EXPECT_EQ(run(0.51f), (std::vector<int32_t>{1, 3}));
    EXPECT_EQ(run(0.79f), (std::vector<int32_t>{1, 3}));
    EXPECT_EQ(run(0.81f), (std::vector<int32_t>{1, 3, 2}));
    EXPECT_EQ(run(0.96f), (std::vector<int32_t>{1, 3, 2, 0}));
    EXPECT_EQ(run(1.0f), (std::vector<int32_t>{0, 1, 2, 3}));  // off: untouched
    EXPECT_EQ(run(0.49f, 3), (std::vector<int32_t>{1, 3, 2}));
}

// The incremental sort (prefixes of 256, 1024, ...) must match a full sort on a big list.
TEST(SamplingStages, TopPOnLargeListMatchesFullSort) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> logits(5000);
    for (float& l : logits) l = normal(rng);
    for (float p : {0.1f, 0.5f, 0.9f, 0.99f, 0.9999f}) {
        Candidates ref = make(logits);
        apply_softmax(ref);
        std::vector<Candidate> all(ref.live().begin(), ref.live().end());
        std::sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
            return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
        });
        size_t keep = all.size();
        double cum = 0;
        for (size_t i = 0; i < all.size(); ++i) {
            cum += all[i].p;
            if (cum >= p) {
                keep = i + 1;
                break;
            }
        }
        Candidates c = make(logits);
        apply_top_p(c, p, 0);
        ASSERT_EQ(c.size, keep) << "p = " << p;
        for (size_t i = 0; i < keep; ++i) ASSERT_EQ(c.data[i].id, all[i].id) << "p = " << p << ", i = " << i;
    }
}

TEST(SamplingStages, MinPIsRelativeToTheMostLikelyToken) {
    const auto run = [](float p, size_t min_keep = 0) {
        Candidates c = make(log_of(kProbs));
        apply_min_p(c, p, min_keep);
        return ids(c);
    };
    // p_max = 0.5: thresholds 0.1, 0.295, 0.305.
    EXPECT_EQ(run(0.2f), (std::vector<int32_t>{1, 2, 3}));  // survivors keep their order
    EXPECT_EQ(run(0.59f), (std::vector<int32_t>{1, 3}));
    EXPECT_EQ(run(0.61f), (std::vector<int32_t>{1}));
    EXPECT_EQ(run(0.0f), (std::vector<int32_t>{0, 1, 2, 3}));
    EXPECT_EQ(run(0.61f, 2), (std::vector<int32_t>{1, 3}));
}

TEST(SamplingStages, TypicalKeepsTokensNearTheEntropy) {
    // probs 0.5, 0.3, 0.15, 0.05: H = 1.1421 nats; |-ln p - H| = 0.449, 0.062, 0.755, 1.854.
    // Typical order: 1, 0, 2, 3 with cumulative mass 0.3, 0.8, 0.95, 1.0 (kept while not > p).
    const auto run = [](float p) {
        Candidates c = make(log_of({0.5, 0.3, 0.15, 0.05}));
        std::vector<Candidate> scratch;
        apply_typical(c, p, 0, scratch);
        return ids(c);
    };
    EXPECT_EQ(run(0.2f), (std::vector<int32_t>{1}));  // drops the most likely token
    EXPECT_EQ(run(0.5f), (std::vector<int32_t>{1, 0}));
    EXPECT_EQ(run(0.9f), (std::vector<int32_t>{1, 0, 2}));
    EXPECT_EQ(run(1.0f), (std::vector<int32_t>{0, 1, 2, 3}));

    Candidates c = make(log_of({0.5, 0.3, 0.15, 0.05}));
    std::vector<Candidate> scratch;
    apply_typical(c, 0.2f, 2, scratch);  // min_keep
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 0}));
}

TEST(SamplingStages, TemperatureScalesOrKeepsTheArgmax) {
    Candidates c = make({1, 2, -4});
    apply_temperature(c, 0.5f);
    EXPECT_FLOAT_EQ(c.data[0].logit, 2.0f);
    EXPECT_FLOAT_EQ(c.data[1].logit, 4.0f);
    EXPECT_FLOAT_EQ(c.data[2].logit, -8.0f);

    c = make({1, 2, -4});
    apply_temperature(c, 2.0f);
    EXPECT_FLOAT_EQ(c.data[1].logit, 1.0f);
    EXPECT_FLOAT_EQ(c.data[2].logit, -2.0f);

    c = make({1, 3, 3, 2});
    apply_temperature(c, 0.0f);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
}

TEST(SamplingStages, PenaltiesAsLlamaCppAppliesThem) {
    TokenHistory h(64, 4);
    for (int32_t t : {0, 1, 0}) h.push(t);
    EXPECT_EQ(h.count(0), 2);
    EXPECT_EQ(h.count(1), 1);
    EXPECT_EQ(h.count(2), 0);

    // repeat 2 divides the positive logit and multiplies the negative one; then
    // count * 0.5 + 0.25 is subtracted: 2/2 - (1 + 0.25) = -0.25; -1*2 - (0.5 + 0.25) = -2.75.
    Candidates c = make({2, -1, 0.5f, 3});
    apply_penalties(c, h, {.repeat = 2.0f, .frequency = 0.5f, .presence = 0.25f});
    EXPECT_FLOAT_EQ(c.data[0].logit, -0.25f);
    EXPECT_FLOAT_EQ(c.data[1].logit, -2.75f);
    EXPECT_FLOAT_EQ(c.data[2].logit, 0.5f);
    EXPECT_FLOAT_EQ(c.data[3].logit, 3.0f);

    // Same on a reordered, filtered list (the path that looks each candidate up).
    c = make({2, -1, 0.5f, 3});
    apply_top_k(c, 3);  // 3, 0, 2
    apply_penalties(c, h, {.repeat = 2.0f, .frequency = 0.5f, .presence = 0.25f});
    ASSERT_EQ(ids(c), (std::vector<int32_t>{3, 0, 2}));
    EXPECT_FLOAT_EQ(c.data[0].logit, 3.0f);
    EXPECT_FLOAT_EQ(c.data[1].logit, -0.25f);
    EXPECT_FLOAT_EQ(c.data[2].logit, 0.5f);
}

TEST(SamplingStages, PenaltyWindowForgetsOldTokens) {
    TokenHistory h(2, 4);
    for (int32_t t : {0, 1, 0}) h.push(t);  // window: 1, 0
    EXPECT_EQ(h.count(0), 1);
    EXPECT_EQ(h.count(1), 1);
    Candidates c = make({2, -1, 0.5f, 3});
    apply_penalties(c, h, {.repeat = 2.0f, .frequency = 0.5f, .presence = 0.25f});
    EXPECT_FLOAT_EQ(c.data[0].logit, 0.25f);   // 2/2 - 0.75
    EXPECT_FLOAT_EQ(c.data[1].logit, -2.75f);  // -1*2 - 0.75

    h.push(2);
    h.push(2);  // window: 2, 2
    EXPECT_EQ(h.count(0), 0);
    EXPECT_EQ(h.count(1), 0);
    EXPECT_EQ(h.count(2), 2);
    EXPECT_EQ(h.distinct().size(), 1u);
    h.clear();
    EXPECT_EQ(h.count(2), 0);
    EXPECT_TRUE(h.distinct().empty());

    TokenHistory off(0, 4);  // repeat_last_n = 0
    off.push(1);
    EXPECT_EQ(off.count(1), 0);
}

// fill_top_k must pick exactly what fill + penalties + top_k pick, ties, NaN and all.
TEST(SamplingStages, FusedTopKMatchesTheStages) {
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> level(-8, 8);  // coarse logits: many ties
    for (int trial = 0; trial < 40; ++trial) {
        const size_t n = 300 + size_t(trial) * 7;
        std::vector<float> logits(n);
        for (float& l : logits) l = float(level(rng)) * 0.5f;
        logits[size_t(trial) % n] = std::nanf("");
        logits[(size_t(trial) * 13) % n] = -INFINITY;
        TokenHistory h(16, n);
        std::uniform_int_distribution<int32_t> tok(0, int32_t(n) - 1);
        for (int i = 0; i < 24; ++i) h.push(tok(rng));
        const Penalties pen = trial % 3 == 0   ? Penalties{}
                              : trial % 3 == 1 ? Penalties{.repeat = 1.3f, .frequency = 0.5f, .presence = 0.5f}
                                               : Penalties{.repeat = 1.0f, .frequency = -1.0f, .presence = 0.0f};
        for (size_t k : {size_t(1), size_t(5), size_t(40), n - 1}) {
            Candidates want = make(logits);
            apply_penalties(want, h, pen);
            apply_top_k(want, int32_t(k));
            Candidates got;
            fill_top_k(got, logits, k, h, pen);
            ASSERT_EQ(ids(got), ids(want)) << "trial " << trial << ", k " << k;
            for (size_t i = 0; i < k; ++i) ASSERT_EQ(got.data[i].logit, want.data[i].logit);
        }
    }
}

// ---- the Sampler

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
    SamplingParams p;  // default chain, temp <= 0
    p.temp = 0.0f;
    Sampler s = make_sampler(p, 4);
    const std::vector<float> logits = {0.1f, 0.9f, 0.9f, 0.2f};
    EXPECT_EQ(s.sample(logits), 1);
    p.temp = -1.0f;
    p.top_k = 0;
    Sampler s2 = make_sampler(p, 4);
    EXPECT_EQ(s2.sample(logits), 1);
}

TEST(Sampler, GreedyAppliesPenalties) {
    SamplingParams p;
    p.temp = 0.0f;
    p.repeat_penalty = 2.0f;
    Sampler s = make_sampler(p, 2);
    const std::vector<float> logits = {3.0f, 2.9f};
    EXPECT_EQ(s.sample(logits), 0);
    s.accept(0);  // 3 / 2 = 1.5 < 2.9
    EXPECT_EQ(s.sample(logits), 1);
    s.reset();
    EXPECT_EQ(s.sample(logits), 0);
}

// Greedy with penalties over many steps equals the argmax of penalties applied by hand.
TEST(Sampler, GreedyWithPenaltiesMatchesNaiveArgmax) {
    SamplingParams p;
    p.temp = 0.0f;
    p.repeat_last_n = 8;
    p.repeat_penalty = 1.5f;
    p.frequency_penalty = 0.3f;
    p.presence_penalty = 0.2f;
    const int32_t n = 50;
    Sampler s = make_sampler(p, n);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<int32_t> accepted;
    for (int step = 0; step < 200; ++step) {
        std::vector<float> logits(static_cast<size_t>(n));
        for (float& l : logits) l = normal(rng) + 2.0f;  // mostly positive; some negative
        std::vector<float> penalized = logits;
        const size_t from = accepted.size() > 8 ? accepted.size() - 8 : 0;
        std::vector<int> count(static_cast<size_t>(n), 0);
        for (size_t i = from; i < accepted.size(); ++i) ++count[size_t(accepted[i])];
        for (size_t t = 0; t < size_t(n); ++t) {
            if (count[t] == 0) continue;
            float& l = penalized[t];
            l = l <= 0 ? l * 1.5f : l / 1.5f;
            l -= float(count[t]) * 0.3f + 0.2f;
        }
        const int32_t want = int32_t(std::max_element(penalized.begin(), penalized.end()) - penalized.begin());
        const int32_t got = s.sample(logits);
        ASSERT_EQ(got, want) << "step " << step;
        s.accept(got);
        accepted.push_back(got);
    }
}

TEST(Sampler, ChainOrderMatters) {
    // logits 0, -1, -2 with min_p 0.3: before temperature the ratios are e^-1 = 0.37 and
    // e^-2 = 0.14, so two survive; after temp 0.5 they are e^-2 and e^-4, so only one does.
    SamplingParams p = neutral();
    p.min_p = 0.3f;
    p.temp = 0.5f;
    const std::vector<float> logits = {0.0f, -1.0f, -2.0f};
    p.order = {SamplerStage::MinP, SamplerStage::Temperature};
    Sampler a = make_sampler(p, 3);
    EXPECT_EQ(ids(a.apply(logits)), (std::vector<int32_t>{0, 1}));
    p.order = {SamplerStage::Temperature, SamplerStage::MinP};
    Sampler b = make_sampler(p, 3);
    EXPECT_EQ(ids(b.apply(logits)), (std::vector<int32_t>{0}));

    // Penalties after top_k = 1 cannot bring back a token top_k dropped, even when greedy.
    SamplingParams g = neutral();
    g.temp = 0.0f;
    g.top_k = 1;
    g.repeat_penalty = 2.0f;
    const std::vector<float> two = {3.0f, 2.9f};
    g.order = {SamplerStage::Penalties, SamplerStage::TopK};
    Sampler first = make_sampler(g, 2);
    first.accept(0);
    EXPECT_EQ(first.sample(two), 1);
    g.order = {SamplerStage::TopK, SamplerStage::Penalties};
    Sampler last = make_sampler(g, 2);
    last.accept(0);
    EXPECT_EQ(last.sample(two), 0);
}

TEST(Sampler, SeededStreamIsReproducible) {
    SamplingParams p = neutral();
    p.seed = 42;
    const std::vector<float> logits = {0.3f, 0.1f, 0.0f, -0.2f, 0.25f, 0.05f, -0.1f, 0.2f};
    Sampler a = make_sampler(p, 8);
    Sampler b = make_sampler(p, 8);
    std::vector<int32_t> sa, sb;
    for (int i = 0; i < 500; ++i) {
        sa.push_back(a.sample(logits));
        sb.push_back(b.sample(logits));
    }
    EXPECT_EQ(sa, sb);

    a.reset();
    std::vector<int32_t> again;
    for (int i = 0; i < 500; ++i) again.push_back(a.sample(logits));
    EXPECT_EQ(sa, again);

    p.seed = 43;
    Sampler c = make_sampler(p, 8);
    std::vector<int32_t> sc;
    for (int i = 0; i < 500; ++i) sc.push_back(c.sample(logits));
    EXPECT_NE(sa, sc);

    // A random seed is reported, and reusing it reproduces the stream.
    p.seed = kRandomSeed;
    Sampler r = make_sampler(p, 8);
    p.seed = r.seed();
    Sampler r2 = make_sampler(p, 8);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(r.sample(logits), r2.sample(logits));
}

// Pearson's statistic of counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int n) {
    double chi2 = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
        const double e = probs[i] * n;
        if (e == 0) {
            if (counts[i] != 0) return INFINITY;
            continue;
        }
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi2;
}

std::vector<double> softmax(const std::vector<float>& logits, double temp) {
    std::vector<double> p(logits.size());
    const double m = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp((logits[i] - m) / temp);
    for (double& x : p) x /= sum;
    return p;
}

TEST(Sampler, EmpiricalDistributionMatchesSoftmaxOverTemperature) {
    const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 2.0f};
    SamplingParams p = neutral();
    p.temp = 0.7f;
    p.seed = 2024;
    Sampler s = make_sampler(p, 6);
    const int n = 30000;
    std::vector<int> counts(6, 0);
    for (int i = 0; i < n; ++i) ++counts[size_t(s.sample(logits))];
    // 5 degrees of freedom: P(chi2 > 25) < 2e-4 for a correct sampler. The seed is fixed.
    EXPECT_LT(chi_square(counts, softmax(logits, 0.7), n), 25.0);
    // The bound discriminates: the same counts are far from softmax at temperature 1.
    EXPECT_GT(chi_square(counts, softmax(logits, 1.0), n), 200.0);

    // After top_k = 3 the mass renormalizes over ids 5, 0, 1 and nothing else is drawn.
    p.top_k = 3;
    Sampler k = make_sampler(p, 6);
    std::fill(counts.begin(), counts.end(), 0);
    for (int i = 0; i < n; ++i) ++counts[size_t(k.sample(logits))];
    std::vector<float> top3 = {1.0f, 0.5f, -INFINITY, -INFINITY, -INFINITY, 2.0f};
    EXPECT_LT(chi_square(counts, softmax(top3, 0.7), n), 25.0);
}

TEST(Sampler, NanAndMinusInfinityAreNeverDrawn) {
    SamplingParams p = neutral();
    Sampler s = make_sampler(p, 4);
    const std::vector<float> logits = {std::nanf(""), 0.0f, -INFINITY, 0.0f};
    int n1 = 0;
    for (int i = 0; i < 200; ++i) {
        const int32_t t = s.sample(logits);
        ASSERT_TRUE(t == 1 || t == 3) << t;
        n1 += t == 1;
    }
    EXPECT_GT(n1, 60);  // ids 1 and 3 are equally likely
    EXPECT_LT(n1, 140);
}

TEST(Sampler, LargeVocabularyDefaultChain) {
    const int32_t n_vocab = 262144;
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> logits(static_cast<size_t>(n_vocab));
    for (float& l : logits) l = normal(rng);
    std::vector<float> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + 39, sorted.end(), std::greater<>());
    const float kth = sorted[39];

    SamplingParams p;  // llama.cpp defaults: top_k 40, top_p 0.95, min_p 0.05, temp 0.8
    p.seed = 5;
    p.repeat_penalty = 1.1f;
    Sampler s = make_sampler(p, n_vocab);
    const Candidate* first_buffer = s.apply(logits).data();
    for (int i = 0; i < 20; ++i) {
        const int32_t t = s.sample(logits);
        ASSERT_GE(logits[size_t(t)], kth);  // within the top 40
        s.accept(t);
    }
    EXPECT_EQ(s.apply(logits).data(), first_buffer);  // the candidate buffer is reused

    p.temp = 0.0f;
    p.repeat_penalty = 1.0f;
    Sampler g = make_sampler(p, n_vocab);
    const auto argmax = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(g.sample(logits), argmax);
}

TEST(Sampler, SampleDoesNotAllocate) {
    const int32_t n_vocab = 5000;
    std::vector<float> logits(static_cast<size_t>(n_vocab));
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (float& l : logits) l = normal(rng);
    SamplingParams fused;  // defaults: [penalties;]top_k through fill_top_k
    fused.seed = 1;
    fused.repeat_penalty = 1.2f;
    SamplingParams full = fused;  // every stage on the whole list
    full.top_k = 0;
    full.typical_p = 0.9f;
    SamplingParams greedy = fused;
    greedy.temp = 0.0f;
    for (const SamplingParams& p : {fused, full, greedy}) {
        Sampler s = make_sampler(p, n_vocab);
        const long before = g_allocations.load();
        for (int i = 0; i < 50; ++i) s.accept(s.sample(logits));
        s.reset();
        EXPECT_EQ(g_allocations.load(), before) << format_sampler_order(p.order) << ", top_k " << p.top_k;
    }
}

}  // namespace
}  // namespace ferry::runtime
