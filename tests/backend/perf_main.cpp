// main() of test_cpu_ops: the GoogleTest suite, or with --perf a throughput report of the CPU
// backend's matmul per weight type (not a timed test: nothing is asserted).
//
//   test_cpu_ops --perf [-t THREADS] [--n N] [--tokens T] [--reps R] [--isa scalar|avx2|avx512] [--matmul-only]
//                [--cpu-time] [--batched] [TYPE...]
//
// For a weight {N, N} (default 4096 x 4096) it times decode (1 activation column) and prefill
// (T columns, default 128) through CpuOps::matmul, activation quantization included, and prints the
// median time with GFLOP/s and the weight bytes streamed per second (GB/s). A second table times the
// other ops of a decode / prefill step on N-wide rows: attention over a KV cache per cache type
// (1 query token and T query tokens, 32 heads of 128, GQA 4:1, 4096 cached positions), RMSNorm, RoPE,
// SwiGLU, add, softmax and get_rows, with GFLOP/s and the bytes read and written per second
// (left out with --matmul-only). --cpu-time times the matmuls in process CPU seconds instead of wall
// seconds (GFLOP/s per busy core-second when threads wait for a core of a shared machine). --batched
// times the prefill columns as a step of several sequences computes them (Ops::set_batched_step: the one-sum
// kernels where the type has one).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/cpu_features.h"
#include "cpu_test_util.h"

namespace ferry::cpu_test {
namespace {

struct PerfOptions {
    int n_threads = 0;
    int64_t n = 4096;
    int64_t n_tok = 128;
    int reps = 9;
    quant::Isa isa = quant::Isa::Avx512;
    bool isa_set = false;
    bool matmul_only = false;
    bool cpu_time = false;
    bool batched = false;
    std::vector<GgmlType> types;
};

// A {n, n} weight: 64 rows quantized from random data, repeated (quantizing 16M floats with the
// K-quant fitters would take longer than the measurement).
Weight perf_weight(GgmlType type, int64_t n) {
    constexpr int64_t kDistinct = 64;
    Weight w = make_weight(type, n, kDistinct, 1);
    std::vector<uint8_t> all(size_t(w.row_bytes * n));
    for (int64_t r = 0; r < n; ++r)
        std::memcpy(all.data() + r * w.row_bytes, w.bytes.data() + (r % kDistinct) * w.row_bytes, size_t(w.row_bytes));
    w.bytes = std::move(all);
    w.t.ne = {n, n, 1, 1};
    w.t.nb = contiguous_strides(type, w.t.ne);
    w.t.data = w.bytes.data();
    return w;
}

// Wall-clock seconds, or with cpu_time the CPU seconds of the whole process (all its threads): on a
// machine shared with other work that counts only the time the product actually ran.
double now_seconds(bool cpu_time) {
    if (!cpu_time) return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double median_seconds(backend::cpu::CpuOps& ops, const Weight& w, const std::vector<float>& x, int64_t n_tok, int reps,
                      bool cpu_time) {
    std::vector<double> t;
    for (int i = 0; i < reps + 1; ++i) {
        ops.reset();
        const backend::Act a = ops.input(std::span(x).first(size_t(w.t.ne[0] * n_tok)), {w.t.ne[0], n_tok, 1, 1});
        const double t0 = now_seconds(cpu_time);
        ops.matmul(w.t, a);
        const double t1 = now_seconds(cpu_time);
        if (i > 0) t.push_back(t1 - t0);  // first run warms up
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void run_perf_ops(backend::cpu::CpuOps& ops, const PerfOptions& o);

int run_perf(const PerfOptions& o) {
    const quant::KernelTable* k = o.isa_set ? quant::kernels_for(o.isa) : &quant::best_kernels();
    if (k == nullptr) {
        std::fprintf(stderr, "kernel set %s not available on this CPU\n", quant::isa_name(o.isa));
        return 1;
    }
    backend::cpu::CpuOps ops(o.n_threads, k);
    ops.set_batched_step(o.batched);
    std::printf("cpu: %s\nkernels: %s, threads: %d, weight %lld x %lld, prefill %lld tokens, median of %d\n",
                cpu_features().to_string().c_str(), quant::isa_name(k->isa), ops.n_threads(), (long long)o.n,
                (long long)o.n, (long long)o.n_tok, o.reps);
    std::printf("%-7s %10s | %9s %9s %8s | %9s %9s %8s\n", "type", "MiB", "decode ms", "GFLOP/s", "GB/s", "pp ms",
                "GFLOP/s", "GB/s");
    std::vector<GgmlType> types = o.types;
    if (types.empty())
        types = {GgmlType::Q4_0,  GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,   GgmlType::Q2_K,
                 GgmlType::Q3_K,  GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                 GgmlType::MXFP4, GgmlType::F16,  GgmlType::BF16, GgmlType::F32};
    for (GgmlType type : types) {
        if (o.n % quant::find_format(type)->block_size != 0) continue;  // K-quants with n not a multiple of 256
        const Weight w = perf_weight(type, o.n);
        const double bytes = double(w.bytes.size());
        const std::vector<float> x = random_floats(size_t(o.n * o.n_tok), 2);
        const double td = median_seconds(ops, w, x, 1, o.reps, o.cpu_time);
        const double tp = median_seconds(ops, w, x, o.n_tok, std::max(3, o.reps / 3), o.cpu_time);
        const double flop = 2.0 * double(o.n) * double(o.n);
        std::printf("%-7s %10.1f | %9.3f %9.1f %8.2f | %9.3f %9.1f %8.2f%s\n", std::string(type_name(type)).c_str(),
                    bytes / (1 << 20), td * 1e3, flop / td * 1e-9, bytes / td * 1e-9, tp * 1e3,
                    flop * double(o.n_tok) / tp * 1e-9, bytes / tp * 1e-9,
                    k->gemm_for(type) ? "" : "  (scalar fallback)");
        std::fflush(stdout);
    }
    if (!o.matmul_only) run_perf_ops(ops, o);
    return 0;
}

// Median seconds of op() over reps runs after one warm-up; setup() runs before each, untimed.
template <class S, class F>
double median_of(int reps, S&& setup, F&& op) {
    std::vector<double> t;
    for (int i = 0; i < reps + 1; ++i) {
        setup();
        const auto t0 = std::chrono::steady_clock::now();
        op();
        const auto t1 = std::chrono::steady_clock::now();
        if (i > 0) t.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void print_op(const char* name, const std::string& shape, double seconds, double flop, double bytes) {
    std::printf("%-22s %-24s %10.3f %9.2f %8.2f\n", name, shape.c_str(), seconds * 1e3, flop / seconds * 1e-9,
                bytes / seconds * 1e-9);
    std::fflush(stdout);
}

void run_perf_ops(backend::cpu::CpuOps& ops, const PerfOptions& o) {
    using backend::Act;
    std::printf("\n%-22s %-24s %10s %9s %8s\n", "op", "shape", "ms", "GFLOP/s", "GB/s");
    const int reps = o.reps;
    // Attention: decode (1 token) and prefill (n_tok tokens) at the end of a filled cache.
    constexpr int64_t kHeads = 32, kHeadsKv = 8, kDim = 128, kPast = 4096;
    for (GgmlType cache : {GgmlType::F16, GgmlType::Q8_0, GgmlType::F32}) {
        for (int64_t n_tok : {int64_t(1), o.n_tok}) {
            ops.reset();
            backend::cpu::CpuOps fresh(o.n_threads, &ops.kernels());
            const int64_t n_kv = kPast + n_tok;
            const backend::KvHandle kv = fresh.new_kv_layer({n_kv, kHeadsKv, kDim, kDim, cache, cache});
            const std::vector<float> k = random_floats(size_t(n_kv * kHeadsKv * kDim), 31);
            const std::array<int64_t, kMaxDims> ne{kDim, kHeadsKv, n_kv, 1};
            fresh.kv_write(kv, fresh.input(k, ne), fresh.input(k, ne), 0);
            const std::vector<float> q = random_floats(size_t(n_tok * kHeads * kDim), 32);
            std::vector<int32_t> pos(static_cast<size_t>(n_tok));
            for (int64_t t = 0; t < n_tok; ++t) pos[size_t(t)] = int32_t(kPast + t);
            const backend::AttnParams p{.kq_scale = 0.088f, .n_kv = n_kv, .n_swa = 0};
            Act qa;
            const double t = median_of(
                reps,
                [&] {
                    fresh.reset();
                    qa = fresh.input(q, {kDim, kHeads, n_tok, 1});
                },
                [&] { fresh.attention(qa, kv, pos, p); });
            const auto& f = *quant::find_format(cache);
            const double cache_bytes = 2.0 * double(n_kv * kHeadsKv * kDim / f.block_size * f.type_size);
            const double flop = 4.0 * double(kHeads * kDim) * double(n_tok) * double(n_kv);
            print_op(("attention " + std::string(type_name(cache))).c_str(),
                     std::to_string(n_tok) + " tok x " + std::to_string(n_kv) + " kv", t, flop, cache_bytes);
        }
    }
    // Row ops on {n, T} activations.
    for (int64_t n_tok : {int64_t(1), o.n_tok}) {
        const int64_t n = o.n, elems = n * n_tok;
        const std::vector<float> x = random_floats(size_t(elems), 41), y = random_floats(size_t(elems), 42);
        const std::string shape = std::to_string(n) + " x " + std::to_string(n_tok);
        const double f4 = 4.0 * double(elems);
        auto time_op = [&](const char* name, double flop, double bytes, auto&& op) {
            Act a, b;
            const double t = median_of(
                reps,
                [&] {
                    ops.reset();
                    a = ops.input(x, {n, n_tok, 1, 1});
                    b = ops.input(y, {n, n_tok, 1, 1});
                },
                [&] { op(a, b); });
            print_op(name, shape, t, flop, bytes);
        };
        time_op("rms_norm", 3.0 * double(elems), 2 * f4,
                [&](const Act& a, const Act&) { ops.rms_norm(a, nullptr, 1e-5f); });
        time_op("add", double(elems), 3 * f4, [&](const Act& a, const Act& b) { ops.add(a, b); });
        time_op("swiglu", 5.0 * double(elems), 3 * f4, [&](const Act& a, const Act& b) { ops.swiglu(a, b); });
        time_op("softmax", 4.0 * double(elems), 2 * f4, [&](const Act& a, const Act&) { ops.softmax(a, 1.0f); });
        std::vector<int32_t> pos(static_cast<size_t>(n_tok), 100);
        const backend::RopeParams rp{.mode = backend::RopeMode::Normal, .n_rot = 128};
        time_op("rope", 6.0 * double(elems), 2 * f4, [&](const Act& a, const Act&) {
            ops.rope(backend::Act{{128, n / 128, n_tok, 1}, a.id}, pos, rp);
        });
    }
    // get_rows of a Q8_0 table (an embedding lookup).
    {
        const Weight table = perf_weight(GgmlType::Q8_0, o.n);
        std::vector<int32_t> ids(static_cast<size_t>(o.n_tok));
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i * 7 % size_t(o.n));
        const double t = median_of(
            reps, [&] { ops.reset(); }, [&] { ops.get_rows(table.t, ids); });
        print_op("get_rows q8_0", std::to_string(o.n) + " x " + std::to_string(o.n_tok), t, 0.0,
                 double(o.n_tok) * double(table.row_bytes + o.n * 4));
    }
}

bool parse_perf(int argc, char** argv, PerfOptions& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--perf") continue;
        if (a == "--cpu-time") {
            o.cpu_time = true;
            continue;
        }
        if (a == "--batched") {
            o.batched = true;
            continue;
        }
        if (a == "--matmul-only") {
            o.matmul_only = true;
            continue;
        }
        if (a == "-t") {
            o.n_threads = std::atoi(next());
        } else if (a == "--n") {
            o.n = std::atoll(next());
        } else if (a == "--tokens") {
            o.n_tok = std::max<int64_t>(1, std::atoll(next()));
        } else if (a == "--reps") {
            o.reps = std::max(1, std::atoi(next()));
        } else if (a == "--isa") {
            const std::string v = next();
            o.isa_set = true;
            o.isa = v == "scalar" ? quant::Isa::Scalar : v == "avx2" ? quant::Isa::Avx2 : quant::Isa::Avx512;
        } else {
            bool found = false;
            for (GgmlType t : weight_types()) {
                if (type_name(t) == a) {
                    o.types.push_back(t);
                    found = true;
                }
            }
            if (!found) {
                std::fprintf(stderr, "unknown argument or type: %s\n", a.c_str());
                return false;
            }
        }
    }
    if (o.n <= 0 || o.n % (o.matmul_only ? 32 : 256) != 0) {
        std::fprintf(stderr, "--n must be a positive multiple of 256 (of 32 with --matmul-only)\n");
        return false;
    }
    for (GgmlType t : o.types) {
        if (o.n % quant::find_format(t)->block_size != 0) {
            std::fprintf(stderr, "--n must be a multiple of %s's block size\n", std::string(type_name(t)).c_str());
            return false;
        }
    }
    return true;
}

}  // namespace
}  // namespace ferry::cpu_test

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--perf") == 0) {
            ferry::cpu_test::PerfOptions o;
            if (!ferry::cpu_test::parse_perf(argc, argv, o)) return 2;
            return ferry::cpu_test::run_perf(o);
        }
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
