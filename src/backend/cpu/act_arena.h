// The CPU backend's activation memory: a bump allocator over one block, handed out again after reset().
//
// A forward pass allocates every activation it makes and frees them all at once (Ops::reset). A pass
// that does not fit takes extra blocks; the next reset() replaces them by one block as large as the
// largest pass so far (with an eighth of headroom: pages never touched are not resident), so the
// memory held is the largest pass's. (One buffer per allocation index, kept and grown across passes,
// held the largest tensor each index ever had: when the passes differ in their allocation sequence —
// the server's steps batch 1..n sequences, and attention allocates per sequence — that sum kept
// creeping up with every new mix of sequences, request after request.)
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

namespace ferry::backend::cpu {

class ActArena {
public:
    // n floats, 64-byte aligned, valid until reset(); the contents are whatever the block held.
    float* alloc(size_t n) {
        n = (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
        if (blocks_.empty() || blocks_.back().cap - blocks_.back().used < n)
            add_block(std::max({n, kMinBlockFloats, pass_}));
        Block& b = blocks_.back();
        float* p = b.data.get() + b.used;
        b.used += n;
        pass_ += n;
        return p;
    }

    void reset() {
        peak_ = std::max(peak_, pass_);
        pass_ = 0;
        if (blocks_.size() > 1) {
            blocks_.clear();
            add_block(peak_ + peak_ / 8);
        }
        if (!blocks_.empty()) blocks_.back().used = 0;
    }

    // Floats held (all blocks' capacity).
    size_t capacity() const {
        size_t n = 0;
        for (const Block& b : blocks_) n += b.cap;
        return n;
    }

private:
    static constexpr size_t kAlignFloats = 16;                  // 64 bytes
    static constexpr size_t kMinBlockFloats = size_t(1) << 20;  // 4 MiB

    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    struct Block {
        std::unique_ptr<float, Free> data;
        size_t cap = 0;
        size_t used = 0;
    };

    void add_block(size_t n) {
        n = (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
        auto* p = static_cast<float*>(std::aligned_alloc(kAlignFloats * sizeof(float), n * sizeof(float)));
        if (p == nullptr) throw std::bad_alloc();
        blocks_.push_back({std::unique_ptr<float, Free>(p), n, 0});
    }

    std::vector<Block> blocks_;
    size_t pass_ = 0;  // floats handed out since the last reset()
    size_t peak_ = 0;  // the largest pass so far
};

}  // namespace ferry::backend::cpu
