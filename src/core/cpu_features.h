// What the CPU we run on can do, detected once at run time (CPUID + XGETBV), and how many physical
// cores it has.
//
// The binary is built without any global -m flags: SIMD kernels live in their own translation units
// compiled with per-file flags, and this detection decides which of them may run. A feature counts
// only when the OS also saves the registers it needs (XCR0: YMM state for AVX*, ZMM/opmask state for
// AVX-512), so a kernel chosen here never faults.
#pragma once

#include <string>

namespace ferry {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512vnni = false;
    bool avx512bf16 = false;
    bool avx_vnni = false;

    // The AVX2 kernel set needs AVX2 + FMA + F16C together.
    bool has_avx2_set() const { return avx2 && fma && f16c; }
    // The AVX-512 kernel set: F + BW + VL + VNNI on top of the AVX2 set.
    bool has_avx512_set() const { return has_avx2_set() && avx512f && avx512bw && avx512vl && avx512vnni; }

    // "AVX2 FMA F16C AVX512F ..." for logs and reports.
    std::string to_string() const;
};

// The features of this machine (detected on first call, then cached).
const CpuFeatures& cpu_features();

// Physical cores (SMT siblings counted once), from sysfs; falls back to the logical count, at least 1.
int physical_cores();

}  // namespace ferry
