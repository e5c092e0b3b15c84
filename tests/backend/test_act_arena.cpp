// ActArena (the CPU backend's activation memory): pointers are aligned, distinct and stable within a
// pass; after passes whose allocation sequences differ (the server's steps batch 1..n sequences), the
// memory held is that of the largest pass, not a high-water mark per allocation index that creeps up
// with every new mix.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/act_arena.h"

namespace ferry::backend::cpu {
namespace {

// One pass: n_seq "sequences", each allocating a small and a large tensor, then a shared big one.
size_t pass(ActArena& arena, int n_seq, size_t big) {
    size_t total = 0;
    std::vector<std::pair<float*, size_t>> got;
    for (int s = 0; s < n_seq; ++s) {
        for (size_t n : {size_t(17), big / size_t(n_seq + 1)}) {
            float* p = arena.alloc(n);
            EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
            std::memset(p, 0x5a, n * sizeof(float));  // the whole range is usable
            got.emplace_back(p, n);
            total += n;
        }
    }
    float* p = arena.alloc(big);
    std::memset(p, 0x3c, big * sizeof(float));
    got.emplace_back(p, big);
    // No overlap, and earlier tensors are not disturbed by later allocations.
    for (size_t i = 0; i + 1 < got.size(); ++i) {
        EXPECT_EQ(reinterpret_cast<const unsigned char*>(got[i].first)[0], 0x5a);
        for (size_t j = i + 1; j < got.size(); ++j)
            EXPECT_TRUE(got[i].first + got[i].second <= got[j].first || got[j].first + got[j].second <= got[i].first);
    }
    arena.reset();
    return total + big;
}

TEST(ActArena, HoldsTheLargestPassWhateverTheMix) {
    ActArena arena;
    EXPECT_EQ(arena.capacity(), 0u);
    const size_t big = size_t(3) << 20;  // larger than one first block
    size_t largest = 0;
    for (int n_seq = 1; n_seq <= 4; ++n_seq) largest = std::max(largest, pass(arena, n_seq, big));
    const size_t held = arena.capacity();
    EXPECT_GE(held, largest);
    EXPECT_LE(held, largest + largest / 4);
    // Any further mix of the same passes fits without growing.
    for (int round = 0; round < 12; ++round) pass(arena, 1 + (round * 7) % 4, big);
    EXPECT_EQ(arena.capacity(), held);
}

TEST(ActArena, ZeroSizedAndTinyAllocations) {
    ActArena arena;
    float* a = arena.alloc(0);
    float* b = arena.alloc(1);
    float* c = arena.alloc(1);
    EXPECT_NE(b, c);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % 64, 0u);
    arena.reset();
    EXPECT_EQ(arena.alloc(1), a);  // memory is handed out again from the start
}

}  // namespace
}  // namespace ferry::backend::cpu
