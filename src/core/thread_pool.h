// A fixed pool of worker threads for data-parallel loops (`-t N`).
//
// The calling thread is one of the N: a pool of N threads starts N - 1 workers once, and every
// parallel_for runs on them plus the caller. Work is handed out in chunks through one atomic counter,
// so a thread that was preempted (a noisy 2-core machine) simply takes fewer chunks. Between loops the
// workers spin for a short while (the next op of a decode step usually follows within microseconds),
// then sleep on a futex (std::atomic::wait) so an idle pool costs nothing.
//
// Not reentrant: parallel_for must not be called from inside a parallel_for body, and only one
// thread may drive a pool at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace ferry {

class ThreadPool {
public:
    // n_threads <= 0: one per physical core.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(begin, end) over [0, n) split in chunks of `grain` items (the last may be shorter),
    // spread over the pool; returns when all chunks are done. With one thread, or n <= grain, it is a
    // single call fn(0, n) on the calling thread. fn must not throw.
    template <class F>
    void parallel_for(int64_t n, int64_t grain, F&& fn) {
        if (n <= 0) return;
        if (grain < 1) grain = 1;
        if (n_threads_ == 1 || n <= grain) {
            fn(int64_t(0), n);
            return;
        }
        using Fn = std::remove_reference_t<F>;
        run(n, grain, const_cast<void*>(static_cast<const void*>(&fn)),
            [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); });
    }

private:
    using Trampoline = void (*)(void* ctx, int64_t begin, int64_t end);

    void run(int64_t n, int64_t grain, void* ctx, Trampoline call);
    void work_chunks();
    void worker_main();

    int n_threads_ = 1;
    std::vector<std::thread> workers_;

    // The current job, published by bumping generation_ (release) and read after seeing it (acquire).
    void* ctx_ = nullptr;
    Trampoline call_ = nullptr;
    int64_t n_ = 0;
    int64_t grain_ = 1;

    alignas(64) std::atomic<int64_t> next_{0};         // next chunk start
    alignas(64) std::atomic<uint32_t> generation_{0};  // bumped once per job
    alignas(64) std::atomic<int> done_{0};             // workers finished with the current job
    std::atomic<bool> stop_{false};
};

}  // namespace ferry
