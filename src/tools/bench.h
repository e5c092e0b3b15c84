// ferry bench: llama-bench's tests and tables, with the memory traffic of each decoded token and
// llama.cpp's figure from the same run.
//
// A test is one prompt length, generation length or prompt+generation pair, at one KV depth (a
// generation test also for each -np count of sequences decoding side by side, t/s their aggregate); an
// instance is one combination of model, threads, batch sizes, KV types and flash-attention setting.
// Every test runs on every instance, -r times after one untimed warm-up, with random token ids. A
// sample is the wall time of one repetition; t/s is tokens / time per sample, reported as mean and
// sample standard deviation (as llama-bench does). Decode (tg) rows also carry the bytes of weights
// and KV cache the backend read per token (Ops::traffic), hence the achieved GB/s and its share of
// the machine's measured bandwidth (bench_bandwidth.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ggml_type.h"
#include "core/result.h"
#include "tools/params.h"

namespace ferry::tools::bench {

struct Test {
    int n_prompt = 0;
    int n_gen = 0;
    int n_depth = 0;
    int n_parallel = 1;  // tg only: sequences decoding side by side, each at n_depth, one batched step per token

    // "pp512", "tg128", "pp512+tg128", "tg128 x4" (4 sequences), with " @ d4096" at a depth.
    std::string name() const;
    // Tokens a repetition processes (all sequences').
    int n_tokens() const { return (n_prompt + n_gen) * n_parallel; }
};

struct Instance {
    std::string model;
    int threads = 1;
    int n_batch = 2048;
    int n_ubatch = 512;
    GgmlType type_k = GgmlType::F16;
    GgmlType type_v = GgmlType::F16;
    std::string flash_attn = "auto";
    bool mmap = true;
};

// What a row says about its model file.
struct ModelDesc {
    std::string type;       // llama-bench's model_type: "llama 135M Q4_1"
    uint64_t size = 0;      // bytes of tensor data
    uint64_t n_params = 0;  // elements of all tensors
};

// One engine's samples of a test.
struct Side {
    std::vector<uint64_t> samples_ns;  // wall time of each repetition
    int tokens = 1;                    // tokens per repetition (the test's n_prompt + n_gen)
    double avg_ts() const;
    double stddev_ts() const;
    std::vector<double> samples_ts() const;
};

struct Row {
    Instance inst;
    ModelDesc model;
    Test test;
    std::string test_time;  // ISO 8601, UTC, when the test started
    Side ferry;
    std::optional<Side> llama_cpp;  // --vs-llama-cpp and llama.cpp ran the test
    // Decode (tg) rows: bytes read per generated token. Zero elsewhere.
    double weight_bytes_per_token = 0;
    double expert_bytes_per_token = 0;  // the routed experts' part of weight_bytes_per_token (MoE)
    double kv_bytes_per_token = 0;
    uint64_t peak_rss = 0;  // bytes: the process's peak resident set since the model was loaded

    bool is_decode() const { return test.n_prompt == 0 && test.n_gen > 0; }
    double achieved_gbs() const { return (weight_bytes_per_token + kv_bytes_per_token) * ferry.avg_ts() / 1e9; }
};

// Run-wide facts printed with every row.
struct Context {
    std::string cpu_info;
    double bandwidth_gbs = 0;       // the 100% line: the larger probe figure or --bandwidth-gbs; 0 = unknown
    std::string llama_cpp_version;  // empty without --vs-llama-cpp
    bool vs_llama_cpp = false;
    // Columns md shows only when some instance differs from llama-bench's default.
    bool show_batch = false, show_ubatch = false, show_type_k = false, show_type_v = false, show_fa = false,
         show_mmap = false;
    bool show_experts = false;  // md's experts/tok column: some model is a mixture of experts
};

// Writes rows as they finish (so an interrupted run still has a complete table of what finished).
class Printer {
public:
    virtual ~Printer() = default;
    virtual void begin() = 0;
    virtual void row(const Row& r) = 0;
    virtual void end() = 0;
};

// format: md, csv, json or jsonl.
std::unique_ptr<Printer> make_printer(const std::string& format, const Context& ctx, std::FILE* out);

// The machine's memory bandwidth, STREAM style, on `threads` threads.
struct Bandwidth {
    double read_gbs = 0;   // sum of a large array: bytes read / s (decode is this kind of traffic)
    double triad_gbs = 0;  // a[i] = b[i] + s * c[i]: 3 x 8 bytes per element / s
    uint64_t array_bytes = 0;
};
Bandwidth measure_bandwidth(int threads);

// llama-cpp-python in a helper process (scripts/bench_llama_cpp.py), one JSON line each way.
class LlamaCpp {
public:
    // nullopt when Python or the llama_cpp package is missing; `why` then says what to install.
    static std::optional<LlamaCpp> start(std::string& why);
    LlamaCpp(LlamaCpp&& o) noexcept;
    LlamaCpp& operator=(LlamaCpp&&) = delete;
    ~LlamaCpp();

    const std::string& version() const { return version_; }
    Status load(const Instance& inst, int64_t n_ctx);
    Result<uint64_t> run(const Test& test);  // nanoseconds

private:
    LlamaCpp() = default;
    Result<std::string> request(const std::string& json_line);

    int pid_ = -1;
    std::FILE* to_ = nullptr;
    std::FILE* from_ = nullptr;
    std::string version_;
};

// "2026-11-29T02:40:00Z"
std::string utc_now();

}  // namespace ferry::tools::bench
