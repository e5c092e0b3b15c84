// The engine loop of `ferry serve`: slots, a bounded queue and continuous batching.
//
// One thread owns the model. HTTP threads submit a Task (a tokenized prompt and its generation
// settings) and read its output as it grows; they never touch the model. Each slot is a Session with
// its own KV cache (the context is split evenly between slots) and remembers the tokens its cache
// holds, so a new prompt that shares a prefix with the slot's last conversation computes only its
// new part (the prompt cache: a task goes to the free slot with the longest common prefix).
//
// One iteration of the loop builds a single step for runtime::Session::step: one token for every
// slot that is generating, plus chunks of pending prompts up to the step's token budget, so decodes
// of several sequences share one forward pass (the weights are read once for all of them) and a
// long prompt is cut into chunks between which the others keep generating. Hybrid models batch the
// same way (each slot's session carries its own recurrent state); their prompt cache resumes from the
// session's recurrent-state checkpoints, taken at the end of every prompt chunk and a few tokens
// before the end of each prompt, and counts only what it did not recompute. Before each step, slots
// whose task was cancelled (client gone) or ran past its deadline are freed, so a disconnect frees a
// slot within one step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/ops.h"
#include "model/model.h"
#include "runtime/sampling.h"
#include "runtime/session.h"
#include "text/tokenizer/vocab.h"

namespace ferry::server {

using Clock = std::chrono::steady_clock;

struct GenParams {
    std::vector<int32_t> prompt;  // at least one token, each in the vocabulary
    runtime::SamplingParams sampling;
    int max_tokens = -1;            // -1: until end of generation or the slot's context is full
    std::vector<std::string> stop;  // generation ends before the first of these strings
    int top_logprobs = -1;          // -1: no logprobs; otherwise this many alternatives per token
    bool ignore_eos = false;
    bool cache_prompt = true;  // false: reuse nothing from the slot's cache
    // true: the reader takes the output token by token (a stream), so each token wakes it; false: it
    // waits for the end, and new tokens do not wake it (an HTTP thread woken 4 times a step on a 2-core
    // machine takes a core from the engine's threads).
    bool stream = true;
    Clock::time_point deadline = Clock::time_point::max();
};

struct TopLogprob {
    std::string token;
    float logprob = 0;
};

struct TokenLogprob {
    std::string token;  // the token's text (special tokens rendered)
    float logprob = 0;
    std::vector<TopLogprob> top;
};

enum class Finish { None, Stop, Length, Cancelled, Timeout, Error };

// What an HTTP thread reads from a task: text and logprobs produced since its last read.
struct TaskOutput {
    std::string text;
    std::vector<TokenLogprob> logprobs;
    bool done = false;
    Finish finish = Finish::None;
    std::string error;
};

struct TaskStats {
    int n_prompt = 0;
    int n_cached = 0;  // prompt tokens whose KV came from the slot's cache
    int n_generated = 0;
    double prompt_ms = 0;    // from the start of prefill to the first token
    double generate_ms = 0;  // from the first token to the end
    double queued_ms = 0;    // waiting for a slot
    int slot = -1;
};

class Task {
public:
    explicit Task(GenParams p) : params(std::move(p)), submitted(Clock::now()) {}

    // Waits up to `timeout` for new output (a stream: GenParams::stream) or the end; takes what is new.
    TaskOutput wait(std::chrono::milliseconds timeout);
    // Asks the engine to stop this task (the client went away); the slot is freed before the next step.
    void cancel() { cancelled.store(true); }
    TaskStats stats() const;

private:
    friend class Scheduler;
    void append(std::string_view text, const TokenLogprob* lp);
    void finish(Finish f, std::string error = {});

    GenParams params;
    Clock::time_point submitted;
    std::atomic<bool> cancelled{false};
    mutable std::mutex m_;
    std::condition_variable cv_;
    TaskOutput pending_;  // guarded by m_
    bool done_ = false;   // guarded by m_
    TaskStats stats_;     // guarded by m_
};

struct SchedulerParams {
    int n_parallel = 4;      // slots
    int64_t n_ctx_slot = 0;  // positions per slot
    int64_t n_step = 256;    // tokens per forward step (decodes + prompt chunks)
    int max_queue = 64;      // tasks waiting for a slot beyond this are refused
    GgmlType kv_type_k = GgmlType::F16;
    GgmlType kv_type_v = GgmlType::F16;
    bool flash_attn = true;      // -fa (runtime::SessionParams::flash_attn)
    bool exact_batches = false;  // --exact-batches (runtime::SessionParams::exact_batches)
};

// Counters for /metrics and /slots; read without stopping the engine.
struct SchedulerMetrics {
    std::atomic<uint64_t> prompt_tokens{0};  // prompt tokens computed (cached ones excluded)
    std::atomic<uint64_t> prompt_us{0};      // time spent in steps that carried prompt tokens
    std::atomic<uint64_t> generated_tokens{0};
    std::atomic<uint64_t> generate_us{0};    // time spent in steps that only decoded
    std::atomic<uint64_t> cached_tokens{0};  // prompt tokens served from a slot's cache
    std::atomic<uint64_t> cache_hits{0};     // tasks that reused at least one cached token
    std::atomic<uint64_t> requests_done{0};
    std::atomic<int> processing{0};
    std::atomic<int> queued{0};
    std::atomic<int64_t> kv_cells_used{0};
};

struct SlotInfo {
    int id = 0;
    bool busy = false;
    int64_t n_ctx = 0;
    int64_t n_cached = 0;  // tokens the slot's KV holds
    int n_prompt = 0;
    int n_generated = 0;
};

class Scheduler {
public:
    static Result<std::unique_ptr<Scheduler>> create(const model::Model& model, const text::Vocab& vocab,
                                                     backend::Ops& ops, const SchedulerParams& params);
    ~Scheduler();

    // Queues a task; nullptr when the queue is full (answer 503 with Retry-After).
    std::shared_ptr<Task> submit(GenParams params);

    const SchedulerParams& params() const { return params_; }
    const SchedulerMetrics& metrics() const { return metrics_; }
    std::vector<SlotInfo> slots() const;

private:
    struct Slot;
    Scheduler(const model::Model& model, const text::Vocab& vocab, backend::Ops& ops, const SchedulerParams& p);
    void loop();
    void assign(std::shared_ptr<Task> task);
    void run_step();
    void release(Slot& slot, Finish finish, const std::string& error = {});
    void on_logits(Slot& slot, std::span<const float> logits);

    const model::Model* model_;
    const text::Vocab* vocab_;
    backend::Ops* ops_;
    SchedulerParams params_;
    bool recurrent_;  // the model has a recurrent state (checkpoints instead of KV truncation)
    std::vector<std::unique_ptr<Slot>> slots_;
    uint64_t use_clock_ = 0;

    mutable std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Task>> queue_;  // guarded by m_
    bool stopping_ = false;                    // guarded by m_
    SchedulerMetrics metrics_;
    std::thread thread_;
};

const char* finish_reason(Finish f);

}  // namespace ferry::server
