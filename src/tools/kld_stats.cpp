#include "tools/kld_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

namespace ferry::tools::kld {
namespace {

struct MaxAndLogNorm {
    float max_logit = 0;
    int32_t imax = 0;    // the first index holding the maximum
    float log_norm = 0;  // max + log Σ exp(logit − max), in float as llama.cpp rounds it
};

MaxAndLogNorm max_and_log_norm(std::span<const float> logits) {
    MaxAndLogNorm r{logits[0], 0, 0};
    for (size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > r.max_logit) {
            r.max_logit = logits[i];
            r.imax = int32_t(i);
        }
    }
    double sum_exp = 0;
    for (float l : logits) sum_exp += std::exp(l - r.max_logit);
    r.log_norm = r.max_logit + float(std::log(sum_exp));
    return r;
}

// Mean and its standard error from a sum and a sum of squares (llama.cpp: no error below 11 values).
std::pair<double, double> mean_and_uncertainty(double sum, double sum2, size_t count) {
    if (count < 1) return {0., 0.};
    const double f = sum / double(count);
    double df = sum2 / double(count) - f * f;
    df = df > 0 && count > 10 ? std::sqrt(df / double(count - 1)) : 0.;
    return {f, df};
}

double covariance(double suma, double sumb, double sumab, size_t count) {
    if (count < 10) return 0.0;
    const double n = double(count);
    return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

// Linear interpolation between the two nearest order statistics (values sorted ascending).
float percentile(const std::vector<float>& values, float fraction) {
    if (fraction <= 0) return values.front();
    if (fraction >= 1) return values.back();
    float p = fraction * float(values.size() - 1);
    const size_t ip = size_t(p);
    p -= float(ip);
    return (1 - p) * values[ip] + p * values[std::min(ip + 1, values.size() - 1)];
}

float median(const std::vector<float>& v) {
    const size_t n = v.size();
    return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

}  // namespace

double token_nll(std::span<const float> logits, int32_t next) {
    const MaxAndLogNorm m = max_and_log_norm(logits);
    return double(m.log_norm - logits[size_t(next)]);
}

Stats::Token Stats::compare_llama(std::span<const float> logits, std::span<const uint16_t> packed, int32_t next,
                                  float log_norm, int32_t imax) const {
    float scale, min_log_prob;
    std::memcpy(&scale, packed.data(), 4);
    std::memcpy(&min_log_prob, packed.data() + 2, 4);
    const uint16_t* u = packed.data() + 4;
    Token t;
    t.nll_base = -(scale * u[next] + min_log_prob);
    double sum = 0;
    int32_t imax_base = 0;
    float log_p_base_max = 0;
    for (int32_t i = 0; i < n_vocab_; ++i) {
        const float log_p_base = scale * u[i] + min_log_prob;
        if (i == 0 || log_p_base > log_p_base_max) {
            log_p_base_max = log_p_base;
            imax_base = i;
        }
        // Below −16 nats the row holds no information (the encoding clamps there).
        if (log_p_base > -16.f) sum += std::exp(log_p_base) * (log_p_base - logits[size_t(i)] + log_norm);
    }
    t.kld = sum;
    t.same_top = imax == imax_base;
    return t;
}

Stats::Token Stats::compare_compact(std::span<const float> logits, const BaseRow& base, float log_norm, int32_t imax) {
    Token t;
    t.nll_base = -double(base.log_p_next);
    t.same_top = imax == base.top_ids[0];
    const size_t k = base.top_ids.size();
    in_top_.assign(size_t(n_vocab_), 0);
    double kld = 0;
    for (size_t j = 0; j < k; ++j) {
        const int32_t id = base.top_ids[j];
        const double lp = base.top_log_p[j];
        kld += std::exp(lp) * (lp - (double(logits[size_t(id)]) - log_norm));
        in_top_[size_t(id)] = 1;
    }
    if (base.log_tail == -INFINITY) {
        t.kld = kld;
        return t;
    }
    tail_log_q_.clear();
    double q_tail = 0;
    for (int32_t i = 0; i < n_vocab_; ++i) {
        if (in_top_[size_t(i)]) continue;
        const double lq = double(logits[size_t(i)]) - log_norm;
        tail_log_q_.push_back(lq);
        q_tail += std::exp(lq);
    }
    const double p_tail = std::exp(double(base.log_tail));
    const double log_q_tail = std::log(std::max(q_tail, 1e-300));
    const double bucket = p_tail * (double(base.log_tail) - log_q_tail);
    t.kld = kld + bucket;

    // The bound: p_k on the m tail tokens Q finds least likely, the remainder on the next one.
    const double p_k = std::exp(double(base.top_log_p[k - 1]));
    const size_t n_tail = tail_log_q_.size();
    size_t m = std::min(n_tail, size_t(p_tail / p_k));
    const double r = std::max(0.0, p_tail - double(m) * p_k);
    const size_t need = std::min(n_tail, m + 1);
    std::nth_element(tail_log_q_.begin(), tail_log_q_.begin() + (need - 1), tail_log_q_.end());
    std::sort(tail_log_q_.begin(), tail_log_q_.begin() + need);
    double worst = 0;
    for (size_t j = 0; j < m; ++j) worst += p_k * (std::log(p_k) - tail_log_q_[j]);
    if (m < n_tail && r > 0) worst += r * (std::log(r) - tail_log_q_[m]);
    const double bound = std::max(0.0, worst - bucket);
    sum_tail_bound_ += bound;
    max_tail_bound_ = std::max(max_tail_bound_, bound);
    has_tail_ = true;
    return t;
}

void Stats::add(std::span<const float> logits, const BaseRow& base, int32_t next) {
    const MaxAndLogNorm m = max_and_log_norm(logits);
    const float nll = m.log_norm - logits[size_t(next)];
    const Token t = base.packed.empty() ? compare_compact(logits, base, m.log_norm, m.imax)
                                        : compare_llama(logits, base.packed, next, m.log_norm, m.imax);
    sum_nll_ += nll;
    sum_nll2_ += double(nll) * nll;
    sum_nll_base_ += t.nll_base;
    sum_nll_base2_ += t.nll_base * t.nll_base;
    sum_nll_nll_base_ += nll * t.nll_base;
    sum_kld_ += t.kld;
    sum_kld2_ += t.kld * t.kld;
    ++count_;
    n_same_top_ += t.same_top;
    const float p_diff = std::exp(-nll) - std::exp(-float(t.nll_base));
    sum_p_diff_ += p_diff;
    const double p_diff2 = double(p_diff) * p_diff;
    sum_p_diff2_ += p_diff2;
    sum_p_diff4_ += p_diff2 * p_diff2;
    kld_values_.push_back(float(t.kld));
    p_diff_values_.push_back(p_diff);
}

double Stats::max_kld() const {
    return kld_values_.empty() ? 0 : double(*std::max_element(kld_values_.begin(), kld_values_.end()));
}

void Stats::print_chunk_header(std::FILE* out) {
    std::fprintf(out,
                 "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              "
                 "Δp RMS            Same top p\n");
}

void Stats::print_chunk(std::FILE* out, int chunk) const {
    std::fprintf(out, "%4d", chunk);
    const auto log_ppl = mean_and_uncertainty(sum_nll_, sum_nll2_, count_);
    const double ppl = std::exp(log_ppl.first);
    std::fprintf(out, "    %9.4lf ± %9.4lf", ppl, ppl * log_ppl.second);
    const auto log_ppl_base = mean_and_uncertainty(sum_nll_base_, sum_nll_base2_, count_);
    const double cov = covariance(sum_nll_, sum_nll_base_, sum_nll_nll_base_, count_);
    std::fprintf(out, "    %10.5lf ± %10.5lf", log_ppl.first - log_ppl_base.first,
                 std::sqrt(log_ppl.second * log_ppl.second + log_ppl_base.second * log_ppl_base.second - 2.0 * cov));
    const auto kl = mean_and_uncertainty(sum_kld_, sum_kld2_, count_);
    std::fprintf(out, "    %10.5lf ± %10.5lf", kl.first, kl.second);
    const auto mse = mean_and_uncertainty(sum_p_diff2_, sum_p_diff4_, count_);
    const double rms = std::sqrt(mse.first);
    std::fprintf(out, "    %6.3lf ± %6.3lf %%", 100.0 * rms, 100.0 * 0.5 / rms * mse.second);
    const double top = same_top();
    std::fprintf(out, "    %6.3lf ± %6.3lf %%\n", 100.0 * top, 100.0 * std::sqrt(top * (1 - top) / double(count_ - 1)));
}

void Stats::print_summary(std::FILE* out) const {
    if (count_ < 100) return;  // too few values for statistics
    std::vector<float> kld = kld_values_, p_diff = p_diff_values_;
    std::sort(kld.begin(), kld.end());
    std::sort(p_diff.begin(), p_diff.end());

    std::fprintf(out, "====== Perplexity statistics ======\n");
    const auto log_ppl = mean_and_uncertainty(sum_nll_, sum_nll2_, count_);
    const double ppl = std::exp(log_ppl.first), ppl_unc = ppl * log_ppl.second;
    std::fprintf(out, "Mean PPL(Q)                   : %10.6lf ± %10.6lf\n", ppl, ppl_unc);
    const auto log_base = mean_and_uncertainty(sum_nll_base_, sum_nll_base2_, count_);
    const double base = std::exp(log_base.first), base_unc = base * log_base.second;
    std::fprintf(out, "Mean PPL(base)                : %10.6lf ± %10.6lf\n", base, base_unc);
    const double cov = covariance(sum_nll_, sum_nll_base_, sum_nll_nll_base_, count_);
    std::fprintf(out, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%\n", 100.0 * cov / (log_ppl.second * log_base.second));
    const double ratio = log_ppl.first - log_base.first;
    const double ratio_unc = std::sqrt(log_ppl.second * log_ppl.second + log_base.second * log_base.second - 2.0 * cov);
    std::fprintf(out, "Mean ln(PPL(Q)/PPL(base))     : %10.6lf ± %10.6lf\n", ratio, ratio_unc);
    std::fprintf(out, "Mean PPL(Q)/PPL(base)         : %10.6lf ± %10.6lf\n", std::exp(ratio),
                 std::exp(ratio) * ratio_unc);
    const double ppl_cov = ppl * base * cov;
    std::fprintf(out, "Mean PPL(Q)-PPL(base)         : %10.6lf ± %10.6lf\n", ppl - base,
                 std::sqrt(ppl_unc * ppl_unc + base_unc * base_unc - 2.0 * ppl_cov));
    std::fprintf(out, "\n");

    std::fprintf(out, "====== KL divergence statistics ======\n");
    const auto kl = mean_and_uncertainty(sum_kld_, sum_kld2_, count_);
    std::fprintf(out, "Mean    KLD: %10.6lf ± %10.6lf\n", kl.first, kl.second);
    std::fprintf(out, "Maximum KLD: %10.6f\n", double(kld.back()));
    const std::pair<const char*, float> kld_rows[] = {{"99.9%", 0.999f}, {"99.0%", 0.990f}, {"95.0%", 0.950f},
                                                      {"90.0%", 0.900f}, {"Median", -1.f},  {"10.0%", 0.100f},
                                                      {" 5.0%", 0.050f}, {" 1.0%", 0.010f}, {" 0.1%", 0.001f}};
    for (const auto& [label, f] : kld_rows) {
        if (f < 0) {
            std::fprintf(out, "Median  KLD: %10.6f\n", double(median(kld)));
        } else {
            std::fprintf(out, "%s   KLD: %10.6f\n", label, double(percentile(kld, f)));
        }
    }
    std::fprintf(out, "Minimum KLD: %10.6f\n", double(kld.front()));
    std::fprintf(out, "\n");

    std::fprintf(out, "====== Token probability statistics ======\n");
    const auto pd = mean_and_uncertainty(sum_p_diff_, sum_p_diff2_, count_);
    std::fprintf(out, "Mean    Δp: %6.3lf ± %5.3lf %%\n", 100.0 * pd.first, 100.0 * pd.second);
    std::fprintf(out, "Maximum Δp: %6.3lf%%\n", 100.0 * p_diff.back());
    const std::pair<const char*, float> pd_rows[] = {
        {"99.9%", 0.999f}, {"99.0%", 0.990f}, {"95.0%", 0.950f}, {"90.0%", 0.900f}, {"75.0%", 0.750f}, {"Median", -1.f},
        {"25.0%", 0.250f}, {"10.0%", 0.100f}, {" 5.0%", 0.050f}, {" 1.0%", 0.010f}, {" 0.1%", 0.001f}};
    for (const auto& [label, f] : pd_rows) {
        if (f < 0) {
            std::fprintf(out, "Median  Δp: %6.3lf%%\n", 100.0 * median(p_diff));
        } else {
            std::fprintf(out, "%s   Δp: %6.3lf%%\n", label, 100.0 * percentile(p_diff, f));
        }
    }
    std::fprintf(out, "Minimum Δp: %6.3lf%%\n", 100.0 * p_diff.front());
    const auto mse = mean_and_uncertainty(sum_p_diff2_, sum_p_diff4_, count_);
    const double rms = std::sqrt(mse.first);
    std::fprintf(out, "RMS Δp    : %6.3lf ± %5.3lf %%\n", 100.0 * rms, 100.0 * 0.5 / rms * mse.second);
    const double top = same_top();
    std::fprintf(out, "Same top p: %6.3lf ± %5.3lf %%\n", 100.0 * top,
                 100.0 * std::sqrt(top * (1.0 - top) / double(count_ - 1)));
    if (has_tail_) {
        std::fprintf(out, "\n====== Compact base file: tail term ======\n");
        std::fprintf(out, "KLD tail bound: the true KLD exceeds the values above by at most %.6f (mean), %.6f (max)\n",
                     mean_tail_bound(), max_tail_bound_);
    }
}

}  // namespace ferry::tools::kld
