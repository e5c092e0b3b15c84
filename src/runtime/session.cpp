#include "runtime/session.h"

#include <algorithm>
#include <string>

#include "core/ggml_type.h"

namespace ferry::runtime {

MemoryUse memory_use(const std::vector<backend::KvLayerSpec>& kv, const std::vector<backend::StateLayerSpec>& state) {
    MemoryUse m;
    for (const backend::KvLayerSpec& s : kv) {
        const TypeInfo &tk = type_info(s.type_k), &tv = type_info(s.type_v);
        const uint64_t per_token = uint64_t(s.n_head_kv * s.head_dim_k) / tk.block_size * tk.type_size +
                                   uint64_t(s.n_head_kv * s.head_dim_v) / tv.block_size * tv.type_size;
        m.kv_bytes_per_token += per_token;
        m.kv_bytes += per_token * uint64_t(s.n_ctx);
    }
    for (const backend::StateLayerSpec& s : state) m.state_bytes += s.bytes();
    m.n_kv_layers = int64_t(kv.size());
    m.n_state_layers = int64_t(state.size());
    return m;
}

MemoryUse memory_use(const model::Model& model, int64_t n_ctx, GgmlType type_k, GgmlType type_v) {
    return memory_use(model.kv_layers(n_ctx, type_k, type_v), model.state_layers());
}

Result<Session> Session::create(const model::Model& model, backend::Ops& ops, const SessionParams& params) {
    SessionParams p = params;
    if (p.n_ctx < 0) return make_error("context size " + std::to_string(p.n_ctx) + " is negative");
    if (p.n_ctx == 0) p.n_ctx = model.info().n_ctx_train;
    if (p.n_ctx <= 0) return make_error("context size: the model gives no context_length; set one");
    if (p.n_ctx > INT32_MAX) return make_error("context size " + std::to_string(p.n_ctx) + " is too large");
    if (p.n_ubatch <= 0) return make_error("micro-batch size " + std::to_string(p.n_ubatch) + " must be positive");
    if (p.n_checkpoints < 0) return make_error("checkpoint count " + std::to_string(p.n_checkpoints) + " is negative");
    std::vector<backend::KvLayerSpec> specs = model.kv_layers(p.n_ctx, p.kv_type_k, p.kv_type_v);
    for (backend::KvLayerSpec& spec : specs) spec.flash_attn = p.flash_attn;
    for (const backend::KvLayerSpec& spec : specs)
        if (std::string err = backend::kv_layer_error(spec); !err.empty()) return make_error(err);
    Session s(model, ops, p);
    for (const backend::KvLayerSpec& spec : specs) s.kv_.push_back(ops.new_kv_layer(spec));
    s.state_specs_ = model.state_layers();
    for (const backend::StateLayerSpec& spec : s.state_specs_) s.state_.push_back(ops.new_state_layer(spec));
    return s;
}

Result<std::vector<float>> Session::prefill(std::span<const int32_t> tokens, Logits which) {
    FERRY_TRY(check_append(tokens));
    FERRY_ASSIGN(std::vector<float> logits, run(tokens, which));
    if (tokens.size() > 1) checkpoint();
    return logits;
}

Result<std::vector<float>> Session::run(std::span<const int32_t> tokens, Logits which) {
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
                                 .state = state_,
                                 .seqs = {}};
        const backend::Act out = model_->forward(*ops_, batch, kv_);
        n_past_ += count;
        tokens_.insert(tokens_.end(), batch.tokens.begin(), batch.tokens.end());
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

Result<std::vector<std::vector<float>>> Session::step(std::span<const SeqStep> steps, Logits which) {
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
            FERRY_ASSIGN(std::vector<float> logits, s.session->prefill(s.tokens, which));
            out.push_back(std::move(logits));
        }
        return out;
    }
    std::vector<int32_t> tokens;
    std::vector<model::SeqSlice> seqs;
    for (const SeqStep& s : steps) {
        tokens.insert(tokens.end(), s.tokens.begin(), s.tokens.end());
        seqs.push_back({.n_tokens = int64_t(s.tokens.size()),
                        .pos0 = s.session->n_past_,
                        .kv = s.session->kv_,
                        .state = s.session->state_});
    }
    ops.reset();
    const bool all = which == Logits::All;
    const model::Batch batch{.tokens = tokens, .pos0 = 0, .all_logits = all, .state = {}, .seqs = seqs};
    ops.set_batched_step(!steps[0].session->params_.exact_batches);
    const backend::Act logits = model.forward(ops, batch, steps[0].session->kv_);
    ops.set_batched_step(false);
    const size_t n_vocab = size_t(model.info().n_vocab);
    std::vector<float> rows(n_vocab * (all ? tokens.size() : steps.size()));
    ops.read(logits, rows);
    ops.reset();
    size_t at = 0;
    for (const SeqStep& st : steps) {
        Session& s = *st.session;
        s.n_past_ += int64_t(st.tokens.size());
        s.tokens_.insert(s.tokens_.end(), st.tokens.begin(), st.tokens.end());
        if (st.tokens.size() > 1) s.checkpoint();
        const size_t n = n_vocab * (all ? st.tokens.size() : 1);
        out.emplace_back(rows.begin() + int64_t(at), rows.begin() + int64_t(at + n));
        at += n;
    }
    return out;
}

Result<std::vector<float>> Session::decode(int32_t token) {
    const int32_t one[1] = {token};
    return prefill(one, Logits::Last);
}

void Session::clear() {
    n_past_ = 0;
    tokens_.clear();
    checkpoints_.clear();
    restore(nullptr);
}

void Session::checkpoint() {
    if (state_.empty() || params_.n_checkpoints == 0 || n_past_ == 0) return;
    std::erase_if(checkpoints_, [&](const Checkpoint& c) { return c.n_past == n_past_; });
    if (int64_t(checkpoints_.size()) >= params_.n_checkpoints) checkpoints_.erase(checkpoints_.begin());
    Checkpoint c{n_past_, {}};
    for (size_t i = 0; i < state_.size(); ++i) {
        const size_t at = c.state.size();
        c.state.resize(at + size_t(state_specs_[i].n_floats()));
        ops_->state_get(state_[i], std::span<float>(c.state).subspan(at));
    }
    checkpoints_.push_back(std::move(c));
}

std::vector<int64_t> Session::checkpoint_positions() const {
    std::vector<int64_t> out;
    for (const Checkpoint& c : checkpoints_) out.push_back(c.n_past);
    return out;
}

const Session::Checkpoint* Session::checkpoint_at_or_before(int64_t n) const {
    const Checkpoint* best = nullptr;
    for (const Checkpoint& c : checkpoints_)
        if (c.n_past <= n && (best == nullptr || c.n_past > best->n_past)) best = &c;
    return best;
}

void Session::restore(const Checkpoint* c) {
    size_t at = 0;
    for (size_t i = 0; i < state_.size(); ++i) {
        const size_t n = size_t(state_specs_[i].n_floats());
        if (c != nullptr) {
            ops_->state_set(state_[i], std::span<const float>(c->state).subspan(at, n));
        } else {
            ops_->state_set(state_[i], std::vector<float>(n, 0.0f));
        }
        at += n;
    }
}

int64_t Session::truncate_cost(int64_t n) const {
    if (state_.empty() || n == n_past_) return 0;
    const Checkpoint* c = checkpoint_at_or_before(n);
    return n - (c ? c->n_past : 0);
}

Status Session::truncate(int64_t n) {
    if (n < 0 || n > n_past_)
        return make_error("cannot keep " + std::to_string(n) + " positions: the session holds " +
                          std::to_string(n_past_));
    last_recomputed_ = 0;
    if (state_.empty() || n == n_past_) {
        n_past_ = n;
        tokens_.resize(size_t(n));
        return {};
    }
    // The recurrent state cannot forget tokens: go back to the newest checkpoint at or before n (or the
    // empty sequence) and recompute the rest. KV cells past the checkpoint are simply rewritten.
    const Checkpoint* c = checkpoint_at_or_before(n);
    const int64_t from = c ? c->n_past : 0;
    restore(c);
    const std::vector<int32_t> redo(tokens_.begin() + from, tokens_.begin() + n);
    n_past_ = from;
    tokens_.resize(size_t(from));
    std::erase_if(checkpoints_, [&](const Checkpoint& k) { return k.n_past > n; });
    if (!redo.empty()) {
        FERRY_ASSIGN(const std::vector<float> ignored, run(redo, Logits::Last));
        (void)ignored;
    }
    last_recomputed_ = n - from;
    return {};
}

MemoryUse Session::memory() const {
    MemoryUse m = memory_use(*model_, params_.n_ctx, params_.kv_type_k, params_.kv_type_v);
    return m;
}

}  // namespace ferry::runtime
