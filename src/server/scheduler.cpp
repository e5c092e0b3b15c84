#include "server/scheduler.h"

#include <algorithm>
#include <cmath>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/log.h"

namespace ferry::server {

struct Scheduler::Slot {
    int id = 0;
    std::unique_ptr<runtime::Session> session;
    std::vector<int32_t> cached;  // the tokens whose K/V the session holds, in order
    uint64_t last_used = 0;

    // The task being served (null: free).
    std::shared_ptr<Task> task;
    std::unique_ptr<runtime::Sampler> sampler;
    std::unique_ptr<text::StreamDecoder> decoder;
    size_t n_done = 0;      // prompt tokens already in the cache
    bool decoding = false;  // the prompt is done; next_token is to be decoded
    int32_t next_token = 0;
    std::atomic<int> n_generated{0};
    std::string held;  // generated text held back because it may begin a stop string
    Clock::time_point t_start, t_first;
};

namespace {

// How far before the end of a prompt a hybrid model's recurrent state is checkpointed (run_step).
constexpr size_t kCheckpointTail = 16;

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Length of the longest suffix of text that is a proper prefix of some stop string.
size_t stop_prefix_suffix(std::string_view text, const std::vector<std::string>& stops) {
    size_t best = 0;
    for (const std::string& s : stops) {
        for (size_t n = std::min(text.size(), s.size() - 1); n > best; --n) {
            if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
                best = n;
                break;
            }
        }
    }
    return best;
}

}  // namespace

const char* finish_reason(Finish f) {
    switch (f) {
        case Finish::Stop: return "stop";
        case Finish::Length: return "length";
        case Finish::Cancelled: return "cancelled";
        case Finish::Timeout: return "timeout";
        case Finish::Error: return "error";
        case Finish::None: break;
    }
    return "";
}

TaskOutput Task::wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_);
    // A stream's reader wakes for each new token, any other only at the end (or the timeout).
    cv_.wait_for(lock, timeout,
                 [&] { return done_ || (params.stream && (!pending_.text.empty() || !pending_.logprobs.empty())); });
    TaskOutput out = std::move(pending_);
    pending_ = TaskOutput{};
    out.done = done_;
    if (done_) pending_.done = true, pending_.finish = out.finish, pending_.error = out.error;
    return out;
}

TaskStats Task::stats() const {
    std::lock_guard lock(m_);
    return stats_;
}

void Task::append(std::string_view text, const TokenLogprob* lp) {
    {
        std::lock_guard lock(m_);
        pending_.text += text;
        if (lp) pending_.logprobs.push_back(*lp);
    }
    if (params.stream) cv_.notify_all();
}

void Task::finish(Finish f, std::string error) {
    {
        std::lock_guard lock(m_);
        done_ = true;
        pending_.finish = f;
        pending_.error = std::move(error);
    }
    cv_.notify_all();
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const model::Model& model, const text::Vocab& vocab,
                                                     backend::Ops& ops, const SchedulerParams& params) {
    if (params.n_parallel < 1) return make_error("--parallel must be at least 1");
    if (params.n_step < 1) return make_error("the step size must be positive");
    std::unique_ptr<Scheduler> s(new Scheduler(model, vocab, ops, params));
    runtime::SessionParams sp;
    sp.n_ctx = params.n_ctx_slot;
    sp.n_ubatch = params.n_step;
    sp.kv_type_k = params.kv_type_k;
    sp.kv_type_v = params.kv_type_v;
    sp.flash_attn = params.flash_attn;
    sp.exact_batches = params.exact_batches;
    for (int i = 0; i < params.n_parallel; ++i) {
        FERRY_ASSIGN(runtime::Session session, runtime::Session::create(model, ops, sp));
        auto slot = std::make_unique<Slot>();
        slot->id = i;
        slot->session = std::make_unique<runtime::Session>(std::move(session));
        s->slots_.push_back(std::move(slot));
    }
    s->thread_ = std::thread([p = s.get()] { p->loop(); });
    return s;
}

Scheduler::Scheduler(const model::Model& model, const text::Vocab& vocab, backend::Ops& ops, const SchedulerParams& p)
    : model_(&model), vocab_(&vocab), ops_(&ops), params_(p), recurrent_(!model.state_layers().empty()) {}

Scheduler::~Scheduler() {
    {
        std::lock_guard lock(m_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto& task : queue_) task->finish(Finish::Cancelled, "the server is shutting down");
    for (auto& slot : slots_)
        if (slot->task) slot->task->finish(Finish::Cancelled, "the server is shutting down");
}

std::shared_ptr<Task> Scheduler::submit(GenParams params) {
    auto task = std::make_shared<Task>(std::move(params));
    {
        std::lock_guard lock(m_);
        const auto free = std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return s->task == nullptr; });
        if (int64_t(queue_.size()) >= params_.max_queue + int64_t(free)) return nullptr;
        queue_.push_back(task);
        metrics_.queued.store(int(queue_.size()));
    }
    cv_.notify_all();
    return task;
}

std::vector<SlotInfo> Scheduler::slots() const {
    std::lock_guard lock(m_);
    std::vector<SlotInfo> out;
    for (const auto& s : slots_) {
        out.push_back({.id = s->id,
                       .busy = s->task != nullptr,
                       .n_ctx = s->session->n_ctx(),
                       .n_cached = int64_t(s->cached.size()),
                       .n_prompt = s->task ? int(s->task->params.prompt.size()) : 0,
                       .n_generated = s->n_generated.load()});
    }
    return out;
}

// Under m_. The free slot whose cache shares the longest prefix with the prompt; ties: least recently used.
void Scheduler::assign(std::shared_ptr<Task> task) {
    Slot* best = nullptr;
    size_t best_prefix = 0;
    for (auto& s : slots_) {
        if (s->task) continue;
        const size_t p = common_prefix(s->cached, task->params.prompt);
        if (!best || p > best_prefix || (p == best_prefix && s->last_used < best->last_used))
            best = s.get(), best_prefix = p;
    }
    FERRY_CHECK(best != nullptr);
    Slot& slot = *best;
    const std::vector<int32_t>& prompt = task->params.prompt;
    // Always recompute at least the last prompt token, for fresh logits.
    size_t keep = task->params.cache_prompt ? std::min(best_prefix, prompt.size() - 1) : 0;
    // A recurrent state (hybrid models) only goes back to a checkpoint: keep what the newest one at or
    // before `keep` holds and compute the rest as prompt, in steps like any other prompt (so the
    // truncate below recomputes nothing, and cached_tokens and the time to first token say so).
    keep -= size_t(slot.session->truncate_cost(int64_t(keep)));
    FERRY_CHECK(slot.session->truncate(int64_t(keep)).ok());
    slot.cached.resize(keep);
    slot.last_used = ++use_clock_;
    slot.task = task;
    slot.n_done = keep;
    slot.decoding = false;
    slot.n_generated.store(0);
    slot.held.clear();
    slot.decoder = std::make_unique<text::StreamDecoder>(*vocab_, false);
    slot.t_start = Clock::now();
    auto sampler = runtime::Sampler::create(task->params.sampling, vocab_->n_tokens(), slot.session->n_ctx());
    if (!sampler.ok()) {
        slot.task = nullptr;
        task->finish(Finish::Error, sampler.error().message);
        return;
    }
    slot.sampler = std::make_unique<runtime::Sampler>(std::move(*sampler));
    for (int32_t t : prompt) slot.sampler->accept(t);
    {
        std::lock_guard tl(task->m_);
        task->stats_.n_prompt = int(prompt.size());
        task->stats_.n_cached = int(keep);
        task->stats_.slot = slot.id;
        task->stats_.queued_ms = ms_between(task->submitted, slot.t_start);
    }
    if (keep > 0) metrics_.cache_hits.fetch_add(1);
    metrics_.cached_tokens.fetch_add(keep);
    metrics_.processing.fetch_add(1);
}

void Scheduler::release(Slot& slot, Finish finish, const std::string& error) {
    std::shared_ptr<Task> task;
    {
        std::lock_guard lock(m_);
        task = std::move(slot.task);
        slot.task = nullptr;
    }
    if (!task) return;
    {
        std::lock_guard tl(task->m_);
        task->stats_.n_generated = slot.n_generated.load();
        if (slot.t_first != Clock::time_point{}) task->stats_.generate_ms = ms_between(slot.t_first, Clock::now());
    }
    if (finish == Finish::Error) {
        // The cache may be half-written: start the slot over.
        std::lock_guard lock(m_);
        slot.session->clear();
        slot.cached.clear();
    }
    slot.sampler.reset();
    slot.decoder.reset();
    metrics_.processing.fetch_sub(1);
    metrics_.requests_done.fetch_add(1);
    task->finish(finish, error);
}

void Scheduler::loop() {
    uint64_t trimmed_at_done = 0;  // requests finished when the heap was last trimmed
    Clock::time_point trimmed_at;
    while (true) {
        {
            std::unique_lock lock(m_);
            const auto busy = [&] {
                return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->task != nullptr; });
            };
#if defined(__GLIBC__)
            // After some requests, hand the heap's free memory back to the system: when idle at most once
            // a second, while busy every 10 s (a trim takes well under a millisecond). Otherwise glibc's
            // arenas keep what each step and request freed, and the resident size creeps up request after
            // request (+1.3% from 100 to 300 short requests without it).
            const uint64_t done = metrics_.requests_done.load();
            const auto since = Clock::now() - trimmed_at;
            const bool idle = queue_.empty() && !busy();
            if (!stopping_ && done != trimmed_at_done &&
                (since >= std::chrono::seconds(10) || (idle && since >= std::chrono::seconds(1)))) {
                lock.unlock();
                malloc_trim(0);
                trimmed_at_done = done;
                trimmed_at = Clock::now();
                continue;
            }
#endif
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || busy(); });
            if (stopping_) return;
            while (!queue_.empty() &&
                   std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->task == nullptr; })) {
                std::shared_ptr<Task> task = std::move(queue_.front());
                queue_.pop_front();
                if (task->cancelled.load()) {
                    task->finish(Finish::Cancelled);
                    continue;
                }
                assign(std::move(task));
            }
            metrics_.queued.store(int(queue_.size()));
            // Queued tasks whose client left are dropped without waiting for a slot.
            std::erase_if(queue_, [](const std::shared_ptr<Task>& t) {
                if (!t->cancelled.load()) return false;
                t->finish(Finish::Cancelled);
                return true;
            });
        }
        run_step();
    }
}

void Scheduler::run_step() {
    const Clock::time_point now = Clock::now();
    for (auto& s : slots_) {
        if (!s->task) continue;
        if (s->task->cancelled.load())
            release(*s, Finish::Cancelled);
        else if (now > s->task->params.deadline)
            release(*s, Finish::Timeout, "the request ran past --timeout");
    }

    // Decodes first (one token each), then prompt chunks while the budget lasts.
    std::vector<runtime::SeqStep> steps;
    std::vector<Slot*> owners;
    int64_t budget = params_.n_step;
    for (auto& s : slots_) {
        if (!s->task || !s->decoding) continue;
        steps.push_back({.session = s->session.get(), .tokens = std::span<const int32_t>(&s->next_token, 1)});
        owners.push_back(s.get());
        --budget;
    }
    bool has_prompt = false;
    for (auto& s : slots_) {
        if (!s->task || s->decoding || budget <= 0) continue;
        const std::vector<int32_t>& prompt = s->task->params.prompt;
        size_t n = std::min<size_t>(prompt.size() - s->n_done, size_t(std::max<int64_t>(budget, 1)));
        // Hybrid models: a chunk also ends kCheckpointTail tokens before the end of the prompt, where the
        // step checkpoints the recurrent state. The next turn of a chat shares this prompt only up to
        // its generation prompt (Qwen3.5's template renders "<|im_start|>assistant\n<think>\n" there but
        // drops the "<think>" of a past answer), and a repeated prompt keeps all but its last token:
        // without this checkpoint both would resume from an older one, often the start.
        const size_t tail = prompt.size() - std::min(prompt.size(), kCheckpointTail);
        if (recurrent_ && s->n_done + 1 < tail && s->n_done + n > tail) n = tail - s->n_done;
        steps.push_back(
            {.session = s->session.get(), .tokens = std::span<const int32_t>(prompt).subspan(s->n_done, n)});
        owners.push_back(s.get());
        budget -= int64_t(n);
        has_prompt = true;
    }
    if (steps.empty()) return;

    const Clock::time_point t0 = Clock::now();
    auto logits = runtime::Session::step(steps);
    const uint64_t us = uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    (has_prompt ? metrics_.prompt_us : metrics_.generate_us).fetch_add(us);
    if (!logits.ok()) {
        log::error("step failed: " + logits.error().message);
        for (Slot* s : owners) release(*s, Finish::Error, logits.error().message);
        return;
    }
    int64_t cells = 0;
    for (size_t i = 0; i < owners.size(); ++i) {
        Slot& s = *owners[i];
        {
            std::lock_guard lock(m_);
            s.cached.insert(s.cached.end(), steps[i].tokens.begin(), steps[i].tokens.end());
        }
        if (!s.decoding) {
            s.n_done += steps[i].tokens.size();
            metrics_.prompt_tokens.fetch_add(steps[i].tokens.size());
            if (s.n_done < s.task->params.prompt.size()) continue;  // more prompt to go
            s.decoding = true;
            s.t_first = Clock::now();
            std::lock_guard tl(s.task->m_);
            s.task->stats_.prompt_ms = ms_between(s.t_start, s.t_first);
        }
        on_logits(s, (*logits)[i]);
    }
    for (auto& s : slots_) cells += s->session->n_past();
    metrics_.kv_cells_used.store(cells);
}

void Scheduler::on_logits(Slot& s, std::span<const float> logits) {
    const GenParams& gp = s.task->params;
    const int32_t token = s.sampler->sample(logits);
    s.sampler->accept(token);

    TokenLogprob lp;
    const bool want_lp = gp.top_logprobs >= 0;
    if (want_lp) {
        float mx = -INFINITY;
        for (float l : logits) mx = std::max(mx, l);
        double sum = 0;
        for (float l : logits) sum += std::exp(double(l - mx));
        const float log_z = mx + float(std::log(sum));
        lp.token = vocab_->token_to_piece(token, true).value();
        lp.logprob = logits[size_t(token)] - log_z;
        if (gp.top_logprobs > 0) {
            std::vector<int32_t> ids(logits.size());
            for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
            const size_t k = std::min(ids.size(), size_t(gp.top_logprobs));
            std::partial_sort(ids.begin(), ids.begin() + int64_t(k), ids.end(), [&](int32_t a, int32_t b) {
                return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
            });
            for (size_t i = 0; i < k; ++i)
                lp.top.push_back({vocab_->token_to_piece(ids[i], true).value(), logits[size_t(ids[i])] - log_z});
        }
    }

    if (vocab_->is_eog(token) && !gp.ignore_eos) {
        s.held += s.decoder->flush();
        if (!s.held.empty()) s.task->append(s.held, nullptr);
        release(s, Finish::Stop);
        return;
    }
    ++s.n_generated;
    metrics_.generated_tokens.fetch_add(1);
    auto piece = s.decoder->push(token);
    s.held += piece.ok() ? *piece : std::string();

    // Stop strings: cut at the first one; otherwise hold back what may still become one.
    size_t stop_at = std::string::npos;
    for (const std::string& st : gp.stop) stop_at = std::min(stop_at, s.held.find(st));
    if (stop_at != std::string::npos) {
        s.task->append(std::string_view(s.held).substr(0, stop_at), want_lp ? &lp : nullptr);
        release(s, Finish::Stop);
        return;
    }
    const size_t hold = stop_prefix_suffix(s.held, gp.stop);
    s.task->append(std::string_view(s.held).substr(0, s.held.size() - hold), want_lp ? &lp : nullptr);
    s.held.erase(0, s.held.size() - hold);

    const bool full = s.session->n_past() + 1 >= s.session->n_ctx();
    if ((gp.max_tokens >= 0 && s.n_generated >= gp.max_tokens) || full) {
        s.held += s.decoder->flush();
        if (!s.held.empty()) s.task->append(s.held, nullptr);
        release(s, Finish::Length);
        return;
    }
    s.next_token = token;
}

}  // namespace ferry::server
