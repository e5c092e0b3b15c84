#include "core/thread_pool.h"

#include "core/check.h"
#include "core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FERRY_PAUSE() _mm_pause()
#else
#define FERRY_PAUSE() std::this_thread::yield()
#endif

namespace ferry {
namespace {

// Spinning before a worker sleeps bridges the gap between two ops of a decode step (microseconds).
// Every kYieldEvery checks the spinner yields its core, so with more threads than free cores (a busy
// machine, or -t above the core count) the thread that still has work gets to run. About 2000 checks
// is some tens of microseconds.
constexpr int kSpinIterations = 2048;
constexpr int kYieldEvery = 16;

inline void spin_pause(int i) {
    if (i % kYieldEvery == kYieldEvery - 1) {
        std::this_thread::yield();
    } else {
        FERRY_PAUSE();
    }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
    n_threads_ = n_threads > 0 ? n_threads : physical_cores();
    FERRY_CHECK(n_threads_ >= 1 && n_threads_ <= 1024);
    workers_.reserve(size_t(n_threads_ - 1));
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_main(); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (std::thread& t : workers_) t.join();
}

void ThreadPool::work_chunks() {
    for (;;) {
        const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
        if (b >= n_) return;
        call_(ctx_, b, b + grain_ < n_ ? b + grain_ : n_);
    }
}

void ThreadPool::run(int64_t n, int64_t grain, void* ctx, Trampoline call) {
    ctx_ = ctx;
    call_ = call;
    n_ = n;
    grain_ = grain;
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    work_chunks();
    const int n_workers = n_threads_ - 1;
    for (int spin = 0; done_.load(std::memory_order_acquire) != n_workers; ++spin) spin_pause(spin);
}

void ThreadPool::worker_main() {
    // The generation at construction (0), not a fresh load: a worker that starts late must still run
    // the jobs published before it first looked.
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = generation_.load(std::memory_order_acquire);
        for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
            spin_pause(spin);
            g = generation_.load(std::memory_order_acquire);
        }
        while (g == seen) {
            generation_.wait(seen, std::memory_order_acquire);
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load(std::memory_order_relaxed)) return;
        work_chunks();
        done_.fetch_add(1, std::memory_order_release);
    }
}

}  // namespace ferry
