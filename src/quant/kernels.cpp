#include "quant/kernels.h"

#include "core/cpu_features.h"
#include "core/fp16.h"

namespace ferry::quant {

#if FERRY_HAVE_X86_KERNELS
namespace avx2 {
const KernelTable& table();
}
namespace avx512 {
const KernelTable& table();
}
#endif

namespace {

float dot_f32(int64_t n, const float* x, const float* y) {
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
    return s;
}

float dot_f16_f32(int64_t n, const uint16_t* x, const float* y) {
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += fp16_to_fp32(x[i]) * y[i];
    return s;
}

void mad_f32(int64_t n, float* y, const float* x, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

void mad_f16(int64_t n, float* y, const uint16_t* x, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] += s * fp16_to_fp32(x[i]);
}

void scale_f32(int64_t n, float* y, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

void round_f16(int64_t n, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

KernelTable make_scalar() {
    KernelTable t{};
    t.isa = Isa::Scalar;
    t.dot_f32 = dot_f32;
    t.dot_f16_f32 = dot_f16_f32;
    t.mad_f32 = mad_f32;
    t.mad_f16 = mad_f16;
    t.scale_f32 = scale_f32;
    t.round_f16 = round_f16;
    return t;
}

}  // namespace

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "?";
}

QuantizeFn KernelTable::quantize_for(GgmlType act_type) const {
    switch (act_type) {
        case GgmlType::Q8_0: return quantize_q8_0;
        case GgmlType::Q8_1: return quantize_q8_1;
        case GgmlType::Q8_K: return quantize_q8_k;
        default: return nullptr;
    }
}

const KernelTable* kernels_for(Isa isa) {
    static const KernelTable scalar = make_scalar();
    switch (isa) {
        case Isa::Scalar: return &scalar;
#if FERRY_HAVE_X86_KERNELS
        case Isa::Avx2: return cpu_features().has_avx2_set() ? &avx2::table() : nullptr;
        case Isa::Avx512: return cpu_features().has_avx512_set() ? &avx512::table() : nullptr;
#else
        default: return nullptr;
#endif
    }
    return nullptr;
}

const KernelTable& best_kernels() {
    static const KernelTable* best = [] {
        for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
            if (const KernelTable* t = kernels_for(isa)) return t;
        }
        return kernels_for(Isa::Scalar);
    }();
    return *best;
}

}  // namespace ferry::quant
