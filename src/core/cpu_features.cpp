#include "core/cpu_features.h"

#include <sched.h>

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define FERRY_X86 1
#endif

namespace ferry {
namespace {

#if FERRY_X86
struct Regs {
    unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub) {
    Regs r;
    if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) return Regs{};
    return r;
}

// XCR0 through the xgetbv instruction (encoded as bytes so no -mxsave flag is needed).
unsigned long long xcr0() {
    unsigned lo = 0, hi = 0;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<unsigned long long>(hi) << 32) | lo;
}

CpuFeatures detect() {
    CpuFeatures f;
    const Regs l1 = cpuid(1, 0);
    const bool osxsave = (l1.c >> 27) & 1;
    if (!osxsave) return f;
    const unsigned long long x = xcr0();
    const bool ymm = (x & 0x6) == 0x6;    // SSE + AVX state
    const bool zmm = (x & 0xe6) == 0xe6;  // + opmask, ZMM_Hi256, Hi16_ZMM
    if (!ymm) return f;
    const Regs l7 = cpuid(7, 0);
    const Regs l7s1 = cpuid(7, 1);
    f.fma = (l1.c >> 12) & 1;
    f.f16c = (l1.c >> 29) & 1;
    f.avx2 = (l7.b >> 5) & 1;
    f.avx_vnni = (l7s1.a >> 4) & 1;
    if (zmm) {
        f.avx512f = (l7.b >> 16) & 1;
        f.avx512bw = (l7.b >> 30) & 1;
        f.avx512vl = (l7.b >> 31) & 1;
        f.avx512vnni = (l7.c >> 11) & 1;
        f.avx512bf16 = (l7s1.a >> 5) & 1;
    }
    return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

std::string CpuFeatures::to_string() const {
    std::string s;
    auto add = [&s](bool on, const char* name) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(avx2, "AVX2");
    add(fma, "FMA");
    add(f16c, "F16C");
    add(avx512f, "AVX512F");
    add(avx512bw, "AVX512BW");
    add(avx512vl, "AVX512VL");
    add(avx512vnni, "AVX512_VNNI");
    add(avx512bf16, "AVX512_BF16");
    add(avx_vnni, "AVX_VNNI");
    return s.empty() ? "none" : s;
}

const CpuFeatures& cpu_features() {
    static const CpuFeatures f = detect();
    return f;
}

int physical_cores() {
    // The CPUs this process may run on (a container or taskset may allow fewer than are online);
    // each core lists its SMT siblings, so count distinct lists.
    std::vector<int> cpus;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
            if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
    const unsigned n_logical = cpus.empty() ? std::thread::hardware_concurrency() : unsigned(cpus.size());
    if (cpus.empty())
        for (unsigned cpu = 0; cpu < n_logical; ++cpu) cpus.push_back(int(cpu));
    std::set<std::string> cores;
    for (int cpu : cpus) {
        std::ifstream in("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
        std::string line;
        if (!std::getline(in, line)) {
            cores.clear();
            break;
        }
        cores.insert(line);
    }
    if (!cores.empty()) return int(cores.size());
    return n_logical > 0 ? int(n_logical) : 1;
}

}  // namespace ferry
