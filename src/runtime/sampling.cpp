#include "runtime/sampling.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

namespace ferry::runtime {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The order every sorting stage uses: larger logit first, lower id on ties, so results never depend
// on the standard library's sort.
bool better(const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

float max_logit(const Candidates& c) {
    if (c.n_sorted > 0) return c.data[0].logit;
    float m = kNegInf;
    for (const Candidate& x : c.live()) m = std::max(m, x.logit);
    return m;
}

size_t best_index(const Candidates& c) {
    if (c.n_sorted > 0) return 0;
    size_t best = 0;
    for (size_t i = 1; i < c.size; ++i)
        if (better(c.data[i], c.data[best])) best = i;
    return best;
}

void keep_only(Candidates& c, size_t i) {
    c.data[0] = c.data[i];
    c.size = 1;
    c.n_sorted = 1;
    c.id_order = c.data[0].id == 0;
}

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

Error out_of_range(const char* name, double value, const char* range) {
    return make_error(std::string(name) + " = " + num(value) + " is out of range: " + range);
}

}  // namespace

std::vector<SamplerStage> default_sampler_order() {
    return {SamplerStage::Penalties, SamplerStage::TopK, SamplerStage::TypicalP,
            SamplerStage::TopP,      SamplerStage::MinP, SamplerStage::Temperature};
}

Status validate(const SamplingParams& p) {
    if (!std::isfinite(p.temp)) return out_of_range("temp", p.temp, "must be finite (<= 0 means greedy)");
    if (p.top_k < 0) return out_of_range("top_k", p.top_k, "must be >= 0 (0 = off)");
    if (!(p.top_p > 0 && p.top_p <= 1)) return out_of_range("top_p", p.top_p, "must be in (0, 1] (1 = off)");
    if (!(p.min_p >= 0 && p.min_p <= 1)) return out_of_range("min_p", p.min_p, "must be in [0, 1] (0 = off)");
    if (!(p.typical_p > 0 && p.typical_p <= 1))
        return out_of_range("typical_p", p.typical_p, "must be in (0, 1] (1 = off)");
    if (p.repeat_last_n < -1)
        return out_of_range("repeat_last_n", p.repeat_last_n, "must be >= -1 (0 = off, -1 = context size)");
    if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0))
        return out_of_range("repeat_penalty", p.repeat_penalty, "must be > 0 (1 = off)");
    if (!std::isfinite(p.frequency_penalty))
        return out_of_range("frequency_penalty", p.frequency_penalty, "must be finite (0 = off)");
    if (!std::isfinite(p.presence_penalty))
        return out_of_range("presence_penalty", p.presence_penalty, "must be finite (0 = off)");
    if (p.min_keep < 0) return out_of_range("min_keep", p.min_keep, "must be >= 0");
    for (SamplerStage s : p.order) {
        if (uint8_t(s) > uint8_t(SamplerStage::Temperature))
            return make_error("sampler order: stage " + std::to_string(int(s)) + " does not exist");
    }
    return {};
}

std::string_view stage_name(SamplerStage stage) {
    switch (stage) {
        case SamplerStage::Penalties: return "penalties";
        case SamplerStage::TopK: return "top_k";
        case SamplerStage::TypicalP: return "typical_p";
        case SamplerStage::TopP: return "top_p";
        case SamplerStage::MinP: return "min_p";
        case SamplerStage::Temperature: return "temperature";
    }
    return "?";
}

std::string format_sampler_order(std::span<const SamplerStage> order) {
    std::string out;
    for (SamplerStage s : order) {
        if (!out.empty()) out += ';';
        out += stage_name(s);
    }
    return out;
}

Result<std::vector<SamplerStage>> parse_sampler_order(std::string_view names) {
    struct Alias {
        std::string_view name;
        SamplerStage stage;
    };
    static constexpr Alias kAliases[] = {
        {"penalties", SamplerStage::Penalties},
        {"top_k", SamplerStage::TopK},
        {"top-k", SamplerStage::TopK},
        {"typical_p", SamplerStage::TypicalP},
        {"typ_p", SamplerStage::TypicalP},
        {"typical-p", SamplerStage::TypicalP},
        {"typ-p", SamplerStage::TypicalP},
        {"typical", SamplerStage::TypicalP},
        {"typ", SamplerStage::TypicalP},
        {"top_p", SamplerStage::TopP},
        {"top-p", SamplerStage::TopP},
        {"nucleus", SamplerStage::TopP},
        {"min_p", SamplerStage::MinP},
        {"min-p", SamplerStage::MinP},
        {"temperature", SamplerStage::Temperature},
        {"temp", SamplerStage::Temperature},
    };
    std::vector<SamplerStage> order;
    while (!names.empty()) {
        const size_t end = std::min(names.find(';'), names.size());
        const std::string_view item = names.substr(0, end);
        names.remove_prefix(std::min(end + 1, names.size()));
        if (item.empty()) continue;
        const Alias* hit =
            std::find_if(std::begin(kAliases), std::end(kAliases), [&](const Alias& a) { return a.name == item; });
        if (hit == std::end(kAliases)) {
            return make_error("sampler order: unknown stage '" + std::string(item) +
                              "' (known: penalties, top_k, typical_p, top_p, min_p, temperature)");
        }
        order.push_back(hit->stage);
    }
    return order;
}

Result<std::vector<SamplerStage>> parse_sampler_letters(std::string_view letters) {
    std::vector<SamplerStage> order;
    for (char ch : letters) {
        switch (ch) {
            case 'e': order.push_back(SamplerStage::Penalties); break;
            case 'k': order.push_back(SamplerStage::TopK); break;
            case 'y': order.push_back(SamplerStage::TypicalP); break;
            case 'p': order.push_back(SamplerStage::TopP); break;
            case 'm': order.push_back(SamplerStage::MinP); break;
            case 't': order.push_back(SamplerStage::Temperature); break;
            default:
                return make_error(std::string("sampling sequence: unknown letter '") + ch +
                                  "' (known: e = penalties, k = top_k, y = typical_p, p = top_p, m = min_p, "
                                  "t = temperature)");
        }
    }
    return order;
}

void Candidates::fill(std::span<const float> logits) {
    size = logits.size();
    if (data.size() < size) data.resize(size);  // first call only
    for (size_t i = 0; i < size; ++i) {
        const float l = logits[i];
        // A NaN would break the strict weak order the sorts rely on; it can never be chosen.
        data[i] = Candidate{int32_t(i), std::isnan(l) ? kNegInf : l, 0.0f};
    }
    n_sorted = 0;
    id_order = true;
}

TokenHistory::TokenHistory(size_t capacity, size_t n_vocab) : ring_(capacity), counts_(n_vocab, 0) {
    distinct_.reserve(std::min(capacity, n_vocab));
}

void TokenHistory::push(int32_t token) {
    FERRY_CHECK(token >= 0 && size_t(token) < counts_.size());
    if (ring_.empty()) return;
    if (filled_ == ring_.size()) {
        const int32_t old = ring_[head_];
        if (--counts_[size_t(old)] == 0) {
            auto it = std::find(distinct_.begin(), distinct_.end(), old);
            *it = distinct_.back();
            distinct_.pop_back();
        }
    } else {
        ++filled_;
    }
    ring_[head_] = token;
    head_ = (head_ + 1) % ring_.size();
    if (counts_[size_t(token)]++ == 0) distinct_.push_back(token);
}

void TokenHistory::clear() {
    for (int32_t t : distinct_) counts_[size_t(t)] = 0;
    distinct_.clear();
    head_ = 0;
    filled_ = 0;
}

int32_t TokenHistory::count(int32_t token) const {
    return token >= 0 && size_t(token) < counts_.size() ? counts_[size_t(token)] : 0;
}

void sort_prefix(Candidates& c, size_t k) {
    k = std::min(k, c.size);
    if (k <= c.n_sorted) return;
    Candidate* first = c.data.data() + c.n_sorted;
    Candidate* mid = c.data.data() + k;
    Candidate* last = c.data.data() + c.size;
    if (mid == last) {
        std::sort(first, last, better);
    } else if (mid - first <= 128) {
        std::partial_sort(first, mid, last, better);  // O(n log k): the top_k = 40 case
    } else {
        std::nth_element(first, mid, last, better);  // O(n), then sort only what is kept
        std::sort(first, mid, better);
    }
    c.n_sorted = k;
    c.id_order = false;
}

double apply_softmax(Candidates& c) {
    FERRY_CHECK(c.size > 0);
    const float m = max_logit(c);
    if (m == kNegInf) {  // every logit -inf: all equally (un)likely
        for (Candidate& x : c.live()) x.p = 1.0f / float(c.size);
        return 0.0;
    }
    double sum = 0.0;
    for (Candidate& x : c.live()) {
        x.p = std::exp(x.logit - m);
        sum += x.p;
    }
    const float inv = float(1.0 / sum);
    for (Candidate& x : c.live()) x.p *= inv;
    return sum;
}

void apply_penalties(Candidates& c, const TokenHistory& history, const Penalties& penalties) {
    if (history.distinct().empty() || !penalties.active()) return;
    if (c.id_order) {
        // Fresh from the logits: visit the few tokens in the window, not the whole vocabulary.
        for (int32_t t : history.distinct()) {
            if (size_t(t) < c.size)
                c.data[size_t(t)].logit = penalties.apply(c.data[size_t(t)].logit, history.count(t));
        }
    } else {
        for (Candidate& x : c.live())
            if (const int32_t n = history.count(x.id); n > 0) x.logit = penalties.apply(x.logit, n);
    }
    c.n_sorted = 0;
}

// fill_top_k scans the logits in chunks of this many.
constexpr size_t kScanChunk = 32;

void fill_top_k(Candidates& c, std::span<const float> logits, size_t k, const TokenHistory& history,
                const Penalties& penalties) {
    FERRY_CHECK(k > 0 && k < logits.size());
    if (c.data.size() < k) c.data.resize(k);
    // A heap ordered by `better` keeps its worst candidate at the front.
    Candidate* heap = c.data.data();
    size_t filled = 0;
    auto offer = [&](Candidate x) {
        if (filled < k) {
            heap[filled++] = x;
            std::push_heap(heap, heap + filled, better);
        } else if (better(x, heap[0])) {
            std::pop_heap(heap, heap + k, better);
            heap[k - 1] = x;
            std::push_heap(heap, heap + k, better);
        }
    };
    // Penalized tokens are offered afterwards with their new logits.
    const bool penalize = penalties.active() && !history.distinct().empty();
    const size_t n = logits.size();
    for (size_t c = 0; c < n; c += kScanChunk) {
        const size_t end = std::min(n, c + kScanChunk);
        // Once the heap is full, most chunks hold nothing above its worst: one vector compare skips them.
        if (filled == k && end - c == kScanChunk) {
            const float worst = heap[0].logit;
            int above = 0;
            for (size_t i = c; i < end; ++i) above += logits[i] > worst ? 1 : 0;
            if (above == 0) continue;
        }
        for (size_t i = c; i < end; ++i) {
            const float l = logits[i];
            // Ids rise, so a tie with the current worst never wins; NaN fails the test too.
            if (filled == k && !(l > heap[0].logit)) continue;
            if (penalize && history.count(int32_t(i)) > 0) continue;
            offer(Candidate{int32_t(i), std::isnan(l) ? kNegInf : l, 0.0f});
        }
    }
    if (penalize) {
        for (int32_t t : history.distinct()) {
            if (size_t(t) >= logits.size()) continue;
            const float l = logits[size_t(t)];
            offer(Candidate{t, penalties.apply(std::isnan(l) ? kNegInf : l, history.count(t)), 0.0f});
        }
    }
    std::sort_heap(heap, heap + filled, better);  // best first
    c.size = filled;
    c.n_sorted = filled;
    c.id_order = false;
}

void apply_top_k(Candidates& c, int32_t k) {
    if (k <= 0 || size_t(k) >= c.size) return;
    sort_prefix(c, size_t(k));
    c.size = size_t(k);
}

void apply_top_p(Candidates& c, float p, size_t min_keep) {
    if (p >= 1.0f || c.size <= 1) return;
    apply_softmax(c);
    // The nucleus is usually small: sort a growing prefix instead of the whole list.
    size_t k = std::min(c.size, std::max<size_t>(c.n_sorted, 256));
    size_t i = 0;
    double cum = 0.0;
    for (;;) {
        sort_prefix(c, k);
        for (; i < k; ++i) {
            cum += c.data[i].p;
            if (cum >= p && i + 1 >= min_keep) {
                c.size = i + 1;
                c.n_sorted = c.size;
                return;
            }
        }
        if (k == c.size) return;
        k = std::min(c.size, k * 4);
    }
}

void apply_min_p(Candidates& c, float p, size_t min_keep) {
    if (p <= 0.0f || c.size == 0) return;
    const float threshold = max_logit(c) + std::log(p);  // p_i >= p * p_max
    size_t n_pass = 0;
    for (const Candidate& x : c.live()) n_pass += x.logit >= threshold;
    if (n_pass < min_keep) {
        sort_prefix(c, min_keep);
        c.size = std::min(c.size, min_keep);
        return;
    }
    if (n_pass == c.size) return;
    // Stable compaction; a sorted prefix stays a sorted prefix (its survivors are the largest).
    size_t out = 0;
    size_t n_sorted = 0;
    for (size_t i = 0; i < c.size; ++i) {
        if (c.data[i].logit < threshold) continue;
        if (i < c.n_sorted) ++n_sorted;
        c.data[out++] = c.data[i];
    }
    c.size = out;
    c.n_sorted = n_sorted;
    c.id_order = false;
}

void apply_typical(Candidates& c, float p, size_t min_keep, std::vector<Candidate>& scratch) {
    if (p >= 1.0f || c.size <= 1) return;
    apply_softmax(c);
    double entropy = 0.0;
    for (const Candidate& x : c.live())
        if (x.p > 0) entropy -= double(x.p) * std::log(double(x.p));

    // scratch[i] = {index into c, |-log p - H|}; sorted by that distance, then by index.
    if (scratch.size() < c.size) scratch.resize(c.size);
    for (size_t i = 0; i < c.size; ++i) {
        const float p_i = c.data[i].p;
        const float score =
            p_i > 0 ? float(std::fabs(-std::log(double(p_i)) - entropy)) : std::numeric_limits<float>::infinity();
        scratch[i] = Candidate{int32_t(i), score, 0.0f};
    }
    std::sort(scratch.begin(), scratch.begin() + ptrdiff_t(c.size), [](const Candidate& a, const Candidate& b) {
        return a.logit < b.logit || (a.logit == b.logit && a.id < b.id);
    });
    size_t keep = c.size;
    double cum = 0.0;
    for (size_t i = 0; i < c.size; ++i) {
        scratch[i] = c.data[size_t(scratch[i].id)];  // each slot reads its own index, then takes the candidate
        cum += scratch[i].p;
        if (cum > p && i + 1 >= min_keep) {
            keep = i + 1;
            break;
        }
    }
    if (keep < c.size) {
        std::copy(scratch.begin(), scratch.begin() + ptrdiff_t(keep), c.data.begin());
        c.size = keep;
        c.n_sorted = 0;
        c.id_order = false;
    }
}

void apply_temperature(Candidates& c, float temp) {
    if (c.size == 0) return;
    if (temp <= 0.0f) {
        keep_only(c, best_index(c));
        return;
    }
    if (temp == 1.0f) return;
    for (Candidate& x : c.live()) x.logit /= temp;
}

Result<Sampler> Sampler::create(const SamplingParams& params, int32_t n_vocab, int64_t n_ctx) {
    FERRY_TRY(validate(params));
    if (n_vocab <= 0) return make_error("sampler: vocabulary size " + std::to_string(n_vocab) + " must be positive");
    int64_t window = params.repeat_last_n;
    if (window == -1) {
        if (n_ctx <= 0) return make_error("repeat_last_n = -1 means the context size, which is not known here");
        window = n_ctx;
    }
    uint32_t seed = params.seed;
    if (seed == kRandomSeed) {
        std::random_device rd;
        seed = rd() ^ uint32_t(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    return Sampler(params, n_vocab, size_t(window), seed);
}

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab, size_t window, uint32_t seed)
    : params_(params),
      penalties_{
          .repeat = params.repeat_penalty, .frequency = params.frequency_penalty, .presence = params.presence_penalty},
      n_vocab_(n_vocab),
      seed_(seed),
      rng_(seed),
      history_(window, size_t(n_vocab)) {
    greedy_ = greedy_shortcut();
    const auto& order = params_.order;
    const bool top_k_cuts = params_.top_k > 0 && params_.top_k < n_vocab;
    n_fused_ = 0;
    if (top_k_cuts && !order.empty() && order[0] == SamplerStage::TopK) n_fused_ = 1;
    if (top_k_cuts && order.size() >= 2 && order[0] == SamplerStage::Penalties && order[1] == SamplerStage::TopK)
        n_fused_ = 2;
    cand_.data.resize(n_fused_ > 0 ? size_t(params_.top_k) : size_t(n_vocab));
    if (params_.typical_p < 1.0f) scratch_.resize(n_fused_ ? size_t(params_.top_k) : size_t(n_vocab));
}

void Sampler::accept(int32_t token) {
    FERRY_CHECK(token >= 0 && token < n_vocab_);
    history_.push(token);
}

void Sampler::reset() {
    history_.clear();
    rng_.seed(seed_);
}

// With temp <= 0 the answer is the argmax of the penalized logits whenever the penalties (if any)
// run once and before every stage that could drop a token, and typical sampling (which may drop the
// argmax) is off: top_k, top_p and min_p always keep the argmax. Then sample() reads the logits once.
bool Sampler::greedy_shortcut() const {
    if (params_.temp > 0.0f) return false;
    bool filtered = false;
    int n_penalties = 0;
    for (SamplerStage s : params_.order) {
        if (s == SamplerStage::TypicalP && params_.typical_p < 1.0f) return false;
        if (s == SamplerStage::Penalties && penalties_.active() && (filtered || ++n_penalties > 1)) return false;
        if (s != SamplerStage::Penalties) filtered = true;
    }
    return true;
}

std::span<const Candidate> Sampler::apply(std::span<const float> logits) {
    FERRY_CHECK(logits.size() == size_t(n_vocab_));
    if (n_fused_ > 0) {
        const Penalties none;
        fill_top_k(cand_, logits, size_t(params_.top_k), history_, n_fused_ == 2 ? penalties_ : none);
    } else {
        cand_.fill(logits);
    }
    const size_t min_keep = size_t(params_.min_keep);
    for (size_t i = n_fused_; i < params_.order.size(); ++i) {
        switch (params_.order[i]) {
            case SamplerStage::Penalties: apply_penalties(cand_, history_, penalties_); break;
            case SamplerStage::TopK: apply_top_k(cand_, params_.top_k); break;
            case SamplerStage::TypicalP: apply_typical(cand_, params_.typical_p, min_keep, scratch_); break;
            case SamplerStage::TopP: apply_top_p(cand_, params_.top_p, min_keep); break;
            case SamplerStage::MinP: apply_min_p(cand_, params_.min_p, min_keep); break;
            case SamplerStage::Temperature: apply_temperature(cand_, params_.temp); break;
        }
    }
    return cand_.live();
}

int32_t Sampler::sample(std::span<const float> logits) {
    if (greedy_ && n_vocab_ > 1) {
        FERRY_CHECK(logits.size() == size_t(n_vocab_));
        const bool penalize =
            std::find(params_.order.begin(), params_.order.end(), SamplerStage::Penalties) != params_.order.end();
        fill_top_k(cand_, logits, 1, history_, penalize ? penalties_ : Penalties{});
        return cand_.data[0].id;
    }
    apply(logits);
    if (params_.temp <= 0.0f) return cand_.data[best_index(cand_)].id;
    return draw();
}

// A uniform double in [0, 1) from 53 random bits; defined by mt19937 alone, so it is portable.
double Sampler::uniform01() {
    const uint64_t hi = rng_() >> 5;  // 27 bits
    const uint64_t lo = rng_() >> 6;  // 26 bits
    return double((hi << 26) | lo) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::draw() {
    FERRY_CHECK(cand_.size > 0);
    if (cand_.size == 1) return cand_.data[0].id;
    const float m = max_logit(cand_);
    if (m == kNegInf) return cand_.data[best_index(cand_)].id;
    double sum = 0.0;
    for (Candidate& x : cand_.live()) {
        x.p = std::exp(x.logit - m);
        sum += x.p;
    }
    const double target = uniform01() * sum;
    double cum = 0.0;
    size_t last_nonzero = 0;
    for (size_t i = 0; i < cand_.size; ++i) {
        if (cand_.data[i].p == 0.0f) continue;
        cum += cand_.data[i].p;
        last_nonzero = i;
        if (cum > target) return cand_.data[i].id;
    }
    return cand_.data[last_nonzero].id;  // rounding left target just above the total
}

}  // namespace ferry::runtime
