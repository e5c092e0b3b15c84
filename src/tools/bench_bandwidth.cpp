// The memory-bandwidth probe of ferry bench, in the manner of STREAM: arrays several times larger than
// the last-level cache, touched first by the threads that later read them, timed over a few passes
// of which the fastest counts (the others were disturbed by something else on the machine).
//
//   read:  sum of 64-bit words of one array       bytes counted: the array
//   triad: a[i] = b[i] + s * c[i] over doubles    bytes counted: 3 arrays (STREAM's convention; the
//                                                 write-allocate read of a is not counted)
//
// The larger of the two is the 100% line of the decode rows (a decode step streams weights and KV
// cache and writes almost nothing, but one sequential stream per thread may not reach what the memory
// system delivers to several, as the triad's three do).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>

#include "core/thread_pool.h"
#include "tools/bench.h"

namespace ferry::tools::bench {
namespace {

// Each array: 4x the last-level cache, at least 256 MiB, at most 512 MiB (three of them in the triad).
constexpr uint64_t kMinArrayBytes = uint64_t(256) << 20;
constexpr uint64_t kMaxArrayBytes = uint64_t(512) << 20;
constexpr int kPasses = 5;

uint64_t last_level_cache_bytes() {
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0) return uint64_t(l3);
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index3/size");
    uint64_t kib = 0;
    if (f >> kib) return kib << 10;  // "32768K"
    return 0;
}

template <class F>
double best_seconds(F&& pass) {
    double best = 1e30;
    for (int i = 0; i < kPasses; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        pass();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

}  // namespace

Bandwidth measure_bandwidth(int threads) {
    ThreadPool pool(threads);
    const uint64_t bytes = std::clamp(4 * last_level_cache_bytes(), kMinArrayBytes, kMaxArrayBytes);
    const int64_t n = int64_t(bytes / sizeof(double));
    // Work in chunks of 1 MiB so every thread has many and a preempted one takes fewer.
    const int64_t grain = int64_t(1 << 20) / int64_t(sizeof(double));
    std::unique_ptr<double[]> a(new double[size_t(n)]), b(new double[size_t(n)]), c(new double[size_t(n)]);
    pool.parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
            a[size_t(i)] = 0.0;
            b[size_t(i)] = 1.0;
            c[size_t(i)] = 2.0;
        }
    });

    Bandwidth bw;
    bw.array_bytes = bytes;
    std::atomic<uint64_t> sink{0};
    const auto* words = reinterpret_cast<const uint64_t*>(b.get());
    const double t_read = best_seconds([&] {
        pool.parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
            uint64_t s = 0;  // integer sum: vectorizes without reassociating floats
            for (int64_t i = lo; i < hi; ++i) s += words[i];
            sink.fetch_add(s, std::memory_order_relaxed);
        });
    });
    bw.read_gbs = double(bytes) / t_read / 1e9;

    const double scalar = 3.0;
    const double t_triad = best_seconds([&] {
        pool.parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
            double* ap = a.get();
            const double* bp = b.get();
            const double* cp = c.get();
            for (int64_t i = lo; i < hi; ++i) ap[i] = bp[i] + scalar * cp[i];
        });
    });
    bw.triad_gbs = 3.0 * double(bytes) / t_triad / 1e9;
    return bw;
}

}  // namespace ferry::tools::bench
