// Overflow-checked size arithmetic for sizes computed from untrusted counts.
// Each returns false (and leaves *out unspecified) when the exact result does not fit.
#pragma once

#include <cstdint>

namespace ferry {

inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// Rounds x up to a multiple of `align` (a power of two).
inline bool checked_align_up(uint64_t x, uint64_t align, uint64_t* out) {
    uint64_t sum;
    if (!checked_add(x, align - 1, &sum)) return false;
    *out = sum & ~(align - 1);
    return true;
}

inline bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace ferry
