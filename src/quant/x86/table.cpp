// The kernel table of this instruction set (FERRY_ISA), assembled from the kernel sources beside it.
#include "quant/x86/simd.h"

namespace ferry::quant::FERRY_ISA {

void fill_quantizers(KernelTable& t);
void fill_gemm_q32(KernelTable& t);
void fill_gemm_k(KernelTable& t);
void fill_gemm_float(KernelTable& t);
void fill_attn_ggml(KernelTable& t);
void fill_attn_tile(KernelTable& t);
void fill_expf_libm(KernelTable& t);

const KernelTable& table() {
    static const KernelTable t = [] {
        KernelTable k{};
#if defined(__AVX512F__)
        k.isa = Isa::Avx512;
#else
        k.isa = Isa::Avx2;
#endif
        fill_quantizers(k);
        fill_gemm_q32(k);
        fill_gemm_k(k);
        fill_gemm_float(k);
        fill_attn_ggml(k);
        fill_attn_tile(k);
        fill_expf_libm(k);
        return k;
    }();
    return t;
}

}  // namespace ferry::quant::FERRY_ISA
