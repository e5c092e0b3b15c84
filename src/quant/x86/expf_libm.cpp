// KernelTable::expf_libm of this instruction set: glibc's expf on vector lanes (expf_libm.h), chosen
// when the table is built if it agrees with the C library this process runs on.
#include "quant/x86/expf_libm.h"

namespace ferry::quant::FERRY_ISA {
namespace {

// Arguments across the whole range the vector path takes (|x| < 88, every binade down to denormals,
// both signs) and the boundaries of the special cases; the library and the vector path must agree on
// every one.
bool agrees_with_library() {
    constexpr int kProbes = 4096;
    alignas(32) float x[kProbes], want[kProbes], got[kProbes];
    uint32_t bits = 0x9e3779b9u;
    for (int i = 0; i < kProbes; ++i) {
        bits = bits * 1664525u + 1013904223u;  // an LCG over all bit patterns
        float v = 0;
        if (i % 2 == 0) {
            std::memcpy(&v, &bits, sizeof v);
        } else {
            v = float(int32_t(bits >> 8) % (1 << 23)) * (88.0f / float(1 << 23));  // uniform in (-88, 88)
        }
        x[i] = v;
    }
    const float edges[] = {0.0f,          -0.0f,          88.0f,          -88.0f, 0x1.5ffffep6f, -0x1.5ffffep6f,
                           0x1.62e42ep6f, -0x1.9fe368p6f, -0x1.9d1d9ep6f, 1e-30f, -1e-30f,       0x1p-149f,
                           1.0f,          -1.0f,          0.5f,           -103.0f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; ++i) x[i] = edges[i];
    for (int i = 0; i < kProbes; ++i) want[i] = __builtin_expf(x[i]);
    expf_libm_n(kProbes, x, got);
    return std::memcmp(want, got, sizeof want) == 0;
}

}  // namespace

bool expf_libm_agrees() {
    static const bool agrees = agrees_with_library();
    return agrees;
}

void fill_expf_libm(KernelTable& t) {
    t.expf_libm_vector = expf_libm_agrees();
    t.expf_libm = expf_library_n;
}

}  // namespace ferry::quant::FERRY_ISA
