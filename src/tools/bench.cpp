// ferry bench: the driver. See bench.h for what a test, an instance and a row are.
//
// Order of work: models outermost (each loaded once), then instances, then tests, then repetitions;
// with --vs-llama-cpp each ferry repetition is followed by llama.cpp's of the same test (A B A B), so
// both see the same drift of a noisy machine. Rows are printed as they finish; Ctrl-C abandons the
// test in progress, closes the output (a valid JSON array, a complete table) and exits with 130.
// Nothing is written to files.
#include "tools/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <random>

#include "backend/backends.h"
#include "core/cpu_features.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "runtime/session.h"
#include "tools/interrupt.h"
#include "tools/model_path.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace bench {

std::string Test::name() const {
    std::string s;
    if (n_prompt > 0) s = "pp" + std::to_string(n_prompt);
    if (n_gen > 0) s += (s.empty() ? "tg" : "+tg") + std::to_string(n_gen);
    if (n_parallel > 1) s += " x" + std::to_string(n_parallel);
    if (n_depth > 0) s += " @ d" + std::to_string(n_depth);
    return s;
}

std::vector<double> Side::samples_ts() const {
    std::vector<double> ts;
    for (uint64_t ns : samples_ns) ts.push_back(ns ? double(tokens) * 1e9 / double(ns) : 0.0);
    return ts;
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace bench

namespace {

using namespace bench;

// t/s of each sample = tokens / seconds; a Side only stores times, the row knows the token count.
struct Stats {
    double mean = 0, sd = 0;
};
Stats stats_ts(const std::vector<uint64_t>& ns, int n_tokens) {
    Stats s;
    if (ns.empty()) return s;
    for (uint64_t v : ns) s.mean += double(n_tokens) * 1e9 / double(v) / double(ns.size());
    if (ns.size() > 1) {
        for (uint64_t v : ns) s.sd += std::pow(double(n_tokens) * 1e9 / double(v) - s.mean, 2);
        s.sd = std::sqrt(s.sd / double(ns.size() - 1));
    }
    return s;
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "ferry bench: %s; see 'ferry bench --help'\n", message.c_str());
    return 2;
}

int fail(const std::string& message) {
    std::fprintf(stderr, "ferry bench: %s\n", message.c_str());
    return 1;
}

template <class T>
std::vector<T> or_default(const std::vector<T>& v, T def) {
    return v.empty() ? std::vector<T>{def} : v;
}

// Peak resident set of this process in bytes (VmHWM), and a reset of it (Linux >= 4.0) so that each
// model's figure is its own.
uint64_t peak_rss() {
    std::ifstream f("/proc/self/status");
    std::string key;
    while (f >> key) {
        if (key == "VmHWM:") {
            uint64_t kib = 0;
            f >> kib;
            return kib << 10;
        }
        f.ignore(1 << 16, '\n');
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return uint64_t(ru.ru_maxrss) << 10;
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

std::string cpu_info() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) return line.substr(colon + 2);
        }
    }
    return "unknown CPU";
}

ModelDesc describe(const gguf::File& file, const model::ModelInfo& info) {
    ModelDesc d;
    std::map<GgmlType, uint64_t> by_type;
    for (const gguf::TensorInfo& t : file.tensors()) {
        d.n_params += uint64_t(t.n_elements());
        d.size += t.size;
        by_type[t.type] += t.size;
    }
    std::string ftype;
    if (const gguf::Value* v = file.find("general.file_type"); v && v->get_uint())
        ftype = file_type_name(*v->get_uint());
    if (ftype.empty() || ftype == "unknown") {
        const auto most = std::max_element(by_type.begin(), by_type.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
        ftype = most == by_type.end() ? "?" : std::string(type_name(most->first));
    }
    const double p = double(d.n_params);
    char size[32];
    if (p >= 1e9) {
        std::snprintf(size, sizeof size, "%.0fB", p / 1e9);
    } else {
        std::snprintf(size, sizeof size, "%.0fM", p / 1e6);
    }
    d.type = info.arch + " " + size + " " + ftype;
    return d;
}

// ferry's side of one instance: a backend and a session sized for the largest test.
class FerryRunner {
public:
    FerryRunner(const model::Model& model, const Instance& inst, int64_t n_ctx, uint32_t seed)
        : model_(model), inst_(inst), n_ctx_(n_ctx), rng_(seed) {}

    Status init() {
        ops_ = backend::make_ops(backend::BackendKind::Cpu, inst_.threads);
        sp_.n_ctx = n_ctx_;
        sp_.n_ubatch = inst_.n_ubatch;
        sp_.kv_type_k = inst_.type_k;
        sp_.kv_type_v = inst_.type_v;
        sp_.flash_attn = inst_.flash_attn != "off";
        FERRY_ASSIGN(runtime::Session s, runtime::Session::create(model_, *ops_, sp_));
        session_ = std::make_unique<runtime::Session>(std::move(s));
        return {};
    }

    // One repetition; nanoseconds of the timed part. `traffic` (optional) receives the bytes the
    // timed part read. Returns 0 when interrupted.
    Result<uint64_t> run(const Test& t, backend::Traffic* traffic) {
        if (t.n_parallel > 1) return run_parallel(t, traffic);
        const std::atomic<bool>& stop = interrupt_flag();
        if (depth_ != t.n_depth) {
            session_->clear();
            if (t.n_depth > 0) FERRY_TRY(prefill(random_tokens(t.n_depth)));
            depth_ = t.n_depth;
        } else {
            FERRY_TRY(session_->truncate(t.n_depth));
        }
        const std::vector<int32_t> prompt = random_tokens(t.n_prompt), gen = random_tokens(t.n_gen);
        ops_->traffic() = {};
        const auto t0 = std::chrono::steady_clock::now();
        if (!prompt.empty()) FERRY_TRY(prefill(prompt));
        for (int32_t tok : gen) {
            if (stop.load()) return uint64_t(0);
            FERRY_TRY(session_->decode(tok));
        }
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
        if (traffic) *traffic = ops_->traffic();
        if (stop.load()) return uint64_t(0);
        return uint64_t(std::max<int64_t>(1, ns.count()));
    }

private:
    // A tg test of n_parallel sequences: each holds n_depth random tokens (untimed), then every timed
    // step decodes one token of each in one batch (Session::step), as the server's continuous batching does.
    Result<uint64_t> run_parallel(const Test& t, backend::Traffic* traffic) {
        const std::atomic<bool>& stop = interrupt_flag();
        std::vector<runtime::Session*> seqs{session_.get()};
        for (int i = 1; i < t.n_parallel; ++i) {
            if (size_t(i) > extra_.size()) {
                FERRY_ASSIGN(runtime::Session s, runtime::Session::create(model_, *ops_, sp_));
                extra_.push_back(std::make_unique<runtime::Session>(std::move(s)));
            }
            seqs.push_back(extra_[size_t(i - 1)].get());
        }
        for (runtime::Session* s : seqs) {
            s->clear();
            if (t.n_depth > 0) FERRY_TRY(prefill(*s, random_tokens(t.n_depth)));
        }
        depth_ = -1;  // the first session no longer holds what a one-sequence test left
        std::vector<std::vector<int32_t>> gen;
        for (size_t i = 0; i < seqs.size(); ++i) gen.push_back(random_tokens(t.n_gen));
        std::vector<runtime::SeqStep> steps(seqs.size());
        ops_->traffic() = {};
        const auto t0 = std::chrono::steady_clock::now();
        for (int g = 0; g < t.n_gen; ++g) {
            if (stop.load()) return uint64_t(0);
            for (size_t i = 0; i < seqs.size(); ++i)
                steps[i] = {.session = seqs[i], .tokens = std::span<const int32_t>(&gen[i][size_t(g)], 1)};
            FERRY_TRY(runtime::Session::step(steps));
        }
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
        if (traffic) *traffic = ops_->traffic();
        if (stop.load()) return uint64_t(0);
        return uint64_t(std::max<int64_t>(1, ns.count()));
    }

    // In -b sized calls, as ferry run submits a prompt.
    Status prefill(runtime::Session& session, const std::vector<int32_t>& tokens) {
        const size_t step = size_t(inst_.n_batch);
        for (size_t i = 0; i < tokens.size(); i += step) {
            const std::span<const int32_t> part(tokens.data() + i, std::min(step, tokens.size() - i));
            FERRY_TRY(session.prefill(part));
        }
        return {};
    }
    Status prefill(const std::vector<int32_t>& tokens) { return prefill(*session_, tokens); }
    std::vector<int32_t> random_tokens(int n) {
        std::uniform_int_distribution<int32_t> d(0, int32_t(model_.info().n_vocab - 1));
        std::vector<int32_t> v(size_t(std::max(n, 0)));
        for (int32_t& t : v) t = d(rng_);
        return v;
    }

    const model::Model& model_;
    Instance inst_;
    int64_t n_ctx_;
    std::mt19937 rng_;
    std::unique_ptr<backend::Ops> ops_;
    runtime::SessionParams sp_;
    std::unique_ptr<runtime::Session> session_;
    std::vector<std::unique_ptr<runtime::Session>> extra_;  // sequences 2.. of the -np tests
    int depth_ = -1;                                        // depth the cache holds now; -1 = none
};

struct Plan {
    std::vector<Instance> instances;  // grouped by model, in -m order
    std::vector<Test> tests;
};

Result<Plan> make_plan(const Params& params) {
    const BenchParams& b = params.bench;
    Plan plan;
    std::vector<std::string> models = b.models;
    if (models.empty()) {
        FERRY_ASSIGN(std::string m, resolve_model(params));
        models.push_back(m);
    }
    for (int d : or_default(b.n_depth, 0)) {
        for (int p : or_default(b.n_prompt, 512))
            if (p > 0) plan.tests.push_back({p, 0, d});
        for (int n : or_default(b.n_gen, 128))
            for (int np : or_default(b.n_parallel, 1))
                if (n > 0) plan.tests.push_back({0, n, d, np});
        for (const auto& [p, n] : b.prompt_gen)
            if (p + n > 0) plan.tests.push_back({p, n, d});
    }
    if (plan.tests.empty()) return make_error("nothing to measure: every -p, -n and -pg is 0");
    for (const std::string& m : models)
        for (int t : or_default(b.threads, physical_cores()))
            for (int nb : or_default(b.n_batch, 2048))
                for (int ub : or_default(b.n_ubatch, 512))
                    for (GgmlType tk : or_default(b.type_k, GgmlType::F16))
                        for (GgmlType tv : or_default(b.type_v, GgmlType::F16))
                            for (const std::string& fa : or_default(b.flash_attn, std::string("auto"))) {
                                if (fa == "off" && type_info(tv).quantized) {
                                    return make_error("-ctv " + std::string(type_name(tv)) +
                                                      " (a quantized V cache) needs flash attention, but -fa has off");
                                }
                                plan.instances.push_back({m, t, nb, ub, tk, tv, fa, !params.no_mmap});
                            }
    return plan;
}

// Whether the GGUF at path has routed-expert tensors (`*_exps.weight`); a file that does not open is left
// to the run, which reports it.
bool has_experts(const std::string& path) {
    auto file = gguf::File::open(path, FileData::Mode::Mmap);
    if (!file.ok()) return false;
    for (const gguf::TensorInfo& t : file->tensors())
        if (t.name.ends_with("_exps.weight")) return true;
    return false;
}

Context make_context(const Plan& plan, const BenchParams& b, double bandwidth) {
    Context ctx;
    ctx.cpu_info = cpu_info();
    ctx.bandwidth_gbs = bandwidth;
    for (const Instance& i : plan.instances) {
        ctx.show_batch |= i.n_batch != 2048;
        ctx.show_ubatch |= i.n_ubatch != 512;
        ctx.show_type_k |= i.type_k != GgmlType::F16;
        ctx.show_type_v |= i.type_v != GgmlType::F16;
        ctx.show_fa |= i.flash_attn != "auto";
        ctx.show_mmap |= !i.mmap;
    }
    for (size_t i = 0; i < plan.instances.size() && !ctx.show_experts; ++i)
        if (i == 0 || plan.instances[i].model != plan.instances[i - 1].model)
            ctx.show_experts = has_experts(plan.instances[i].model);
    ctx.vs_llama_cpp = b.vs_llama_cpp;
    return ctx;
}

void print_bandwidth(std::FILE* out, const Bandwidth& bw, int threads) {
    std::fprintf(out, "memory bandwidth: read %.2f GB/s, triad %.2f GB/s (%d thread%s, %.0f MiB arrays, best of 5)\n",
                 bw.read_gbs, bw.triad_gbs, threads, threads == 1 ? "" : "s", double(bw.array_bytes) / (1 << 20));
}

struct Runner {
    const Params& params;
    Printer& printer;
    std::optional<LlamaCpp>& llama;
    int rows = 0;
    bool interrupted = false;

    // --progress: "ferry bench: llama 135M Q4_1 t2: tg128: repetition 2/5" (0/5 = the warm-up).
    void progress(const ModelDesc& desc, const Instance& inst, const Test& t, int r) const {
        if (!params.bench.progress) return;
        std::fprintf(stderr, "ferry bench: %s t%d: %s: repetition %d/%d\n", desc.type.c_str(), inst.threads,
                     t.name().c_str(), r, params.bench.repetitions);
    }

    // All tests of one instance. Errors of llama.cpp's side only drop its columns.
    Status instance(const model::Model& model, const ModelDesc& desc, const Instance& inst,
                    const std::vector<Test>& tests) {
        int64_t n_ctx = 1;
        for (const Test& t : tests) n_ctx = std::max<int64_t>(n_ctx, int64_t(t.n_depth) + t.n_prompt + t.n_gen);
        FerryRunner ferry(model, inst, n_ctx, 1234);
        FERRY_TRY(ferry.init());
        bool with_llama = llama.has_value();
        if (with_llama) {
            if (Status st = llama->load(inst, n_ctx); !st.ok()) {
                std::fprintf(stderr, "ferry bench: %s; this instance runs without llama.cpp\n",
                             st.error().message.c_str());
                with_llama = false;
            }
        }
        for (const Test& t : tests) {
            Row row;
            row.inst = inst;
            row.model = desc;
            row.test = t;
            row.test_time = utc_now();
            // Warm-up (untimed): the prompt, or one generated token.
            const Test warm{t.n_prompt, std::min(t.n_gen, t.n_prompt > 0 ? 0 : 1), t.n_depth, t.n_parallel};
            progress(desc, inst, t, 0);
            FERRY_TRY(ferry.run(warm, nullptr));
            // llama-cpp-python decodes one sequence: -np rows have no llama.cpp figure.
            const bool llama_test = with_llama && t.n_parallel == 1;
            if (llama_test && !llama->run(warm).ok()) with_llama = false;
            if (llama_test && with_llama) row.llama_cpp = Side{};
            backend::Traffic total;
            for (int r = 0; r < params.bench.repetitions && !interrupted; ++r) {
                progress(desc, inst, t, r + 1);
                backend::Traffic traffic;
                FERRY_ASSIGN(const uint64_t ns, ferry.run(t, &traffic));
                if (ns == 0) {
                    interrupted = true;
                    break;
                }
                row.ferry.samples_ns.push_back(ns);
                total.weight_bytes += traffic.weight_bytes;
                total.expert_bytes += traffic.expert_bytes;
                total.kv_bytes += traffic.kv_bytes;
                if (row.llama_cpp) {
                    Result<uint64_t> lns = llama->run(t);
                    if (!lns.ok()) {
                        std::fprintf(stderr, "ferry bench: %s\n", lns.error().message.c_str());
                        row.llama_cpp.reset();
                        with_llama = false;
                    } else {
                        row.llama_cpp->samples_ns.push_back(*lns);
                    }
                }
                interrupted = interrupted || interrupt_flag().load();
            }
            if (interrupted) return {};
            const double tokens = double(t.n_gen) * t.n_parallel * double(row.ferry.samples_ns.size());
            if (row.is_decode() && tokens > 0) {
                row.weight_bytes_per_token = double(total.weight_bytes) / tokens;
                row.expert_bytes_per_token = double(total.expert_bytes) / tokens;
                row.kv_bytes_per_token = double(total.kv_bytes) / tokens;
            }
            row.peak_rss = peak_rss();
            row.ferry.tokens = t.n_tokens();
            if (row.llama_cpp) row.llama_cpp->tokens = t.n_tokens();
            printer.row(row);
            ++rows;
        }
        return {};
    }
};

}  // namespace

namespace bench {

double Side::avg_ts() const { return stats_ts(samples_ns, tokens).mean; }
double Side::stddev_ts() const { return stats_ts(samples_ns, tokens).sd; }

}  // namespace bench

int run_bench(const Params& params) {
    const BenchParams& b = params.bench;
    const int max_threads =
        b.threads.empty() ? physical_cores() : *std::max_element(b.threads.begin(), b.threads.end());
    if (b.bandwidth) {
        print_bandwidth(stdout, measure_bandwidth(max_threads), max_threads);
        return 0;
    }
    auto plan = make_plan(params);
    if (!plan.ok()) return usage_error(plan.error().message);

    double bandwidth = b.bandwidth_gbs;
    if (bandwidth <= 0) {
        const Bandwidth bw = measure_bandwidth(max_threads);
        std::fputs("ferry bench: ", stderr);
        print_bandwidth(stderr, bw, max_threads);
        bandwidth = std::max(bw.read_gbs, bw.triad_gbs);
    }
    Context ctx = make_context(*plan, b, bandwidth);
    std::string why;
    std::optional<LlamaCpp> llama = b.vs_llama_cpp ? LlamaCpp::start(why) : std::nullopt;
    if (b.vs_llama_cpp) {
        if (llama) {
            ctx.llama_cpp_version = "llama-cpp-python " + llama->version();
            std::fprintf(stderr, "ferry bench: llama.cpp side: %s\n", ctx.llama_cpp_version.c_str());
        } else {
            std::fprintf(stderr, "ferry bench: --vs-llama-cpp: %s; continuing without llama.cpp\n", why.c_str());
        }
    }

    interrupt_flag();  // Ctrl-C from here on ends the run cleanly
    std::unique_ptr<Printer> printer = make_printer(b.output, ctx, stdout);
    printer->begin();
    Runner runner{params, *printer, llama};
    int status = 0;
    for (size_t i = 0; i < plan->instances.size() && !runner.interrupted;) {
        const std::string& path = plan->instances[i].model;
        reset_peak_rss();
        auto file = gguf::File::open(path, params.no_mmap ? FileData::Mode::Read : FileData::Mode::Mmap);
        if (!file.ok()) {
            status = fail(file.error().message);
            break;
        }
        auto model = model::load(*file);
        if (!model.ok()) {
            status = fail(path + ": " + model.error().message);
            break;
        }
        const ModelDesc desc = describe(*file, (*model)->info());
        for (; i < plan->instances.size() && plan->instances[i].model == path && !runner.interrupted; ++i) {
            if (Status st = runner.instance(**model, desc, plan->instances[i], plan->tests); !st.ok()) {
                status = fail(st.error().message);
                break;
            }
        }
        if (status != 0) break;
    }
    printer->end();
    if (runner.interrupted) {
        std::fprintf(stderr, "ferry bench: interrupted; %d test%s finished\n", runner.rows,
                     runner.rows == 1 ? "" : "s");
        return 130;
    }
    return status;
}

}  // namespace ferry::tools
