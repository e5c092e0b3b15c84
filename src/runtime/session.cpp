#include "runtime/session.h"

#include <algorithm>
#include <string>

namespace ferry::runtime {

Result<Session> Session::create(const model::Model& model, backend::Ops& ops, const SessionParams& params) {
    SessionParams p = params;
    if (p.n_ctx < 0) return make_error("context size " + std::to_string(p.n_ctx) + " is negative");
    if (p.n_ctx == 0) p.n_ctx = model.info().n_ctx_train;
    if (p.n_ctx <= 0) return make_error("context size: the model gives no context_length; set one");
    if (p.n_ctx > INT32_MAX) return make_error("context size " + std::to_string(p.n_ctx) + " is too large");
    if (p.n_ubatch <= 0) return make_error("micro-batch size " + std::to_string(p.n_ubatch) + " must be positive");
    const std::vector<backend::KvLayerSpec> specs = model.kv_layers(p.n_ctx, p.kv_type_k, p.kv_type_v);
    for (const backend::KvLayerSpec& spec : specs)
        if (std::string err = backend::kv_layer_error(spec); !err.empty()) return make_error(err);
    Session s(model, ops, p);
    for (const backend::KvLayerSpec& spec : specs) s.kv_.push_back(ops.new_kv_layer(spec));
    return s;
}

Result<std::vector<float>> Session::prefill(std::span<const int32_t> tokens, Logits which) {
    FERRY_TRY(check_append(tokens));
    const int64_t n = int64_t(tokens.size());
    const int64_t n_vocab = model_->info().n_vocab;
    std::vector<float> logits(size_t(which == Logits::All ? n * n_vocab : n_vocab));
    for (int64_t first = 0; first < n; first += params_.n_ubatch) {
        const int64_t count = std::min(params_.n_ubatch, n - first);
        const bool last_ubatch = first + count == n;
        ops_->reset();
        const model::Batch batch{.tokens = tokens.subspan(size_t(first), size_t(count)),
                                 .pos0 = n_past_,
                                 .all_logits = which == Logits::All,
                                 .seqs = {}};
        const backend::Act out = model_->forward(*ops_, batch, kv_);
        n_past_ += count;
        if (which == Logits::All) {
            ops_->read(out, std::span<float>(logits).subspan(size_t(first * n_vocab), size_t(count * n_vocab)));
        } else if (last_ubatch) {
            ops_->read(out, logits);
        }
    }
    ops_->reset();
    return logits;
}

Status Session::check_append(std::span<const int32_t> tokens) const {
    const int64_t n = int64_t(tokens.size());
    const int64_t n_vocab = model_->info().n_vocab;
    if (n == 0) return make_error("prefill: no tokens");
    if (n > params_.n_ctx - n_past_)
        return make_error("context full: " + std::to_string(n_past_) + " tokens in a context of " +
                          std::to_string(params_.n_ctx) + ", cannot add " + std::to_string(n));
    for (int64_t i = 0; i < n; ++i) {
        if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= n_vocab)
            return make_error("token " + std::to_string(tokens[size_t(i)]) + " at index " + std::to_string(i) +
                              " is outside the vocabulary of " + std::to_string(n_vocab));
    }
    return {};
}

Result<std::vector<std::vector<float>>> Session::step(std::span<const SeqStep> steps) {
    std::vector<std::vector<float>> out;
    if (steps.empty()) return out;
    const model::Model& model = *steps[0].session->model_;
    backend::Ops& ops = *steps[0].session->ops_;
    for (const SeqStep& s : steps) {
        FERRY_CHECK(s.session->model_ == &model && s.session->ops_ == &ops);
        for (const SeqStep& o : steps) FERRY_CHECK(&o == &s || o.session != s.session);
        FERRY_TRY(s.session->check_append(s.tokens));
    }
    if (steps.size() == 1 || !model.multi_sequence()) {
        for (const SeqStep& s : steps) {
            FERRY_ASSIGN(std::vector<float> logits, s.session->prefill(s.tokens));
            out.push_back(std::move(logits));
        }
        return out;
    }
    std::vector<int32_t> tokens;
    std::vector<model::SeqSlice> seqs;
    for (const SeqStep& s : steps) {
        tokens.insert(tokens.end(), s.tokens.begin(), s.tokens.end());
        seqs.push_back({.n_tokens = int64_t(s.tokens.size()), .pos0 = s.session->n_past_, .kv = s.session->kv_});
    }
    ops.reset();
    const model::Batch batch{.tokens = tokens, .pos0 = 0, .all_logits = false, .seqs = seqs};
    const backend::Act logits = model.forward(ops, batch, steps[0].session->kv_);
    const int64_t n_vocab = model.info().n_vocab;
    std::vector<float> all(size_t(n_vocab) * steps.size());
    ops.read(logits, all);
    ops.reset();
    for (size_t i = 0; i < steps.size(); ++i) {
        steps[i].session->n_past_ += int64_t(steps[i].tokens.size());
        out.emplace_back(all.begin() + int64_t(i) * n_vocab, all.begin() + int64_t(i + 1) * n_vocab);
    }
    return out;
}

Result<std::vector<float>> Session::decode(int32_t token) {
    const int32_t one[1] = {token};
    return prefill(one, Logits::Last);
}

Status Session::truncate(int64_t n) {
    if (n < 0 || n > n_past_)
        return make_error("cannot keep " + std::to_string(n) + " positions: the session holds " +
                          std::to_string(n_past_));
    n_past_ = n;
    return {};
}

}  // namespace ferry::runtime
