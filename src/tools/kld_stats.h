// What `ferry perplexity --kl-divergence` (and --compare-model) accumulates and prints: the
// statistics of llama-perplexity's KL-divergence mode, in its order, wording and number formats.
//
// Per scored token, with P the base distribution (from the base file) and Q the model's:
//   KLD = Σ_i p_i (log p_i − log q_i) over the tokens the base row resolves (llama.cpp layout: log p
//         > −16; compact layout: the top k, plus one term for the remaining mass, see below);
//   same top = argmax Q == argmax P;  Δp = q(next) − p(next) for the token that actually follows.
//
// Compact rows keep the k most likely tokens and the tail mass P_t = 1 − Σ_top p. The tail enters as
// one bucket, P_t (log P_t − log Q_t), which is the KL divergence of the two distributions with the
// tail merged: a lower bound on the full value. The missing part is P_t · KL(P|tail ‖ Q|tail) ≥ 0,
// unknown because P's tail is not stored, but bounded: every tail p_i ≤ p_k (the smallest kept), and
// Σ p_i log(p_i/q_i) is convex in p, so its maximum over {0 ≤ p_i ≤ p_k, Σ p_i = P_t} sits at a
// vertex that puts p_k on the tail tokens Q finds least likely. That maximum minus the bucket term
// is the per-token bound the summary prints.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include "tools/kld_base.h"

namespace ferry::tools::kld {

// −log softmax(logits)[next], computed as llama-perplexity does (float log-sum-exp).
double token_nll(std::span<const float> logits, int32_t next);

class Stats {
public:
    explicit Stats(int32_t n_vocab) : n_vocab_(n_vocab) {}

    // One scored token: the model's logits [n_vocab], the base row and the token that follows.
    void add(std::span<const float> logits, const BaseRow& base, int32_t next);

    // The column header, then one line per chunk with the running statistics.
    static void print_chunk_header(std::FILE* out);
    void print_chunk(std::FILE* out, int chunk) const;
    // The three summary blocks (skipped below 100 tokens, as llama.cpp does), then for compact
    // files the bound on the tail term.
    void print_summary(std::FILE* out) const;

    size_t count() const { return count_; }
    double mean_kld() const { return count_ ? sum_kld_ / double(count_) : 0; }
    double max_kld() const;
    double same_top() const { return count_ ? double(n_same_top_) / double(count_) : 0; }
    double mean_tail_bound() const { return count_ ? sum_tail_bound_ / double(count_) : 0; }
    bool has_tail() const { return has_tail_; }

private:
    struct Token {
        double nll_base = 0;
        double kld = 0;
        bool same_top = false;
    };
    Token compare_llama(std::span<const float> logits, std::span<const uint16_t> packed, int32_t next, float log_norm,
                        int32_t imax) const;
    Token compare_compact(std::span<const float> logits, const BaseRow& base, float log_norm, int32_t imax);

    int32_t n_vocab_;
    double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
    double sum_kld_ = 0, sum_kld2_ = 0, sum_p_diff_ = 0, sum_p_diff2_ = 0, sum_p_diff4_ = 0;
    double sum_tail_bound_ = 0, max_tail_bound_ = 0;
    size_t n_same_top_ = 0, count_ = 0;
    bool has_tail_ = false;
    // 8 bytes per scored token (percentiles need them all): 2 MiB for 1000 chunks of 512.
    std::vector<float> kld_values_, p_diff_values_;
    std::vector<uint8_t> in_top_;     // scratch: membership of the compact row's top k
    std::vector<double> tail_log_q_;  // scratch: Q's log-probabilities outside the top k
};

}  // namespace ferry::tools::kld
