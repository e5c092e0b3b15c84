#include "backend/cpu/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backend/cpu/ggml_math.h"
#include "core/fp16.h"
#include "quant/formats.h"

namespace ferry::backend::cpu {
namespace {

// Below this many elements an element-wise op runs on the calling thread: waking the pool costs more.
constexpr int64_t kElementsPerChunk = 16384;

const float* weight_f32(const Tensor& w, int64_t n) {
    FERRY_CHECK(w.type == GgmlType::F32 && w.ne[0] == n && w.n_rows() == 1);
    return static_cast<const float*>(w.data);
}

float gelu_f(float x) {
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
    constexpr float kCoefA = 0.044715f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
}

// Calls fn(begin, len, n_vec) for the pieces of elements [b, e) cut at the ends of rows of n: n_vec is
// how many of the piece's leading elements lie in ggml's vector part of their row (ggml_vec_part).
template <class F>
void for_row_pieces(int64_t b, int64_t e, int64_t n, F fn) {
    const int64_t vp = ggml_vec_part(n);
    while (b < e) {
        const int64_t o = b % n, len = std::min(e - b, n - o);
        fn(b, len, std::max<int64_t>(0, vp - o));
        b += len;
    }
}

}  // namespace

CpuOps::CpuOps(int n_threads, const quant::KernelTable* kernels)
    : pool_(n_threads), kernels_(kernels ? kernels : &quant::best_kernels()), ew_(&cpu::ew_kernels(kernels_->isa)) {}

void CpuOps::reset() {
    live_.clear();
    arena_.reset();
}

Act CpuOps::alloc(std::array<int64_t, kMaxDims> ne) {
    Act a{ne, int32_t(live_.size())};
    FERRY_CHECK(a.n_elements() >= 0);
    live_.emplace_back(arena_.alloc(size_t(a.n_elements())), a.n_elements());
    return a;
}

float* CpuOps::ptr(const Act& a) {
    FERRY_CHECK(a.id >= 0 && size_t(a.id) < live_.size());
    FERRY_CHECK(live_[size_t(a.id)].second == a.n_elements());
    return live_[size_t(a.id)].first;
}

const float* CpuOps::ptr(const Act& a) const {
    FERRY_CHECK(a.id >= 0 && size_t(a.id) < live_.size());
    FERRY_CHECK(live_[size_t(a.id)].second == a.n_elements());
    return live_[size_t(a.id)].first;
}

std::span<const float> CpuOps::data(const Act& a) const { return {ptr(a), size_t(a.n_elements())}; }

template <class F>
void CpuOps::parallel_elements(int64_t n, F&& fn) {
    pool_.parallel_for(n, kElementsPerChunk, fn);
}

Act CpuOps::input(std::span<const float> data, std::array<int64_t, kMaxDims> ne) {
    Act a = alloc(ne);
    FERRY_CHECK(int64_t(data.size()) == a.n_elements());
    std::copy(data.begin(), data.end(), ptr(a));
    return a;
}

void CpuOps::read(const Act& a, std::span<float> out) {
    FERRY_CHECK(int64_t(out.size()) == a.n_elements());
    std::memcpy(out.data(), ptr(a), out.size() * sizeof(float));
}

Act CpuOps::get_rows(const Tensor& table, std::span<const int32_t> ids) {
    const quant::FormatTraits* f = quant::find_format(table.type);
    FERRY_CHECK(f != nullptr && table.ne[2] == 1 && table.ne[3] == 1);
    const int64_t n = table.ne[0];
    Act out = alloc({n, int64_t(ids.size()), 1, 1});
    float* y = ptr(out);
    for (int32_t id : ids) FERRY_CHECK(id >= 0 && id < table.ne[1]);
    traffic().weight_bytes += uint64_t(ids.size()) * uint64_t(n / f->block_size * f->type_size);
    pool_.parallel_for(int64_t(ids.size()), std::max<int64_t>(1, kElementsPerChunk / std::max<int64_t>(n, 1)),
                       [&](int64_t b, int64_t e) {
                           for (int64_t i = b; i < e; ++i) {
                               const auto* row =
                                   static_cast<const uint8_t*>(table.data) + uint64_t(ids[size_t(i)]) * table.nb[1];
                               f->dequantize_row(row, y + i * n, n);
                           }
                       });
    return out;
}

Act CpuOps::rms_norm(const Act& x, const Tensor* w, float eps) {
    const int64_t n = x.ne[0];
    const float* wd = w ? weight_f32(*w, n) : nullptr;
    if (wd) traffic().weight_bytes += uint64_t(n) * sizeof(float);
    Act out = alloc(x.ne);
    const float* xs = ptr(x);
    float* y = ptr(out);
    pool_.parallel_for(x.n_rows(), std::max<int64_t>(1, kElementsPerChunk / std::max<int64_t>(n, 1)),
                       [&](int64_t rb, int64_t re) {
                           for (int64_t r = rb; r < re; ++r) {
                               const float* xr = xs + r * n;
                               float* yr = y + r * n;
                               // ggml's order: each square rounded to float, summed in double.
                               double sum = 0;
                               for (int64_t i = 0; i < n; ++i) sum += double(xr[i] * xr[i]);
                               const float s = 1.0f / std::sqrt(float(sum / double(n)) + eps);
                               if (wd) {
                                   ew_->scale_mul(n, xr, s, wd, yr);
                               } else {
                                   ew_->scale(n, xr, s, yr);
                               }
                           }
                       });
    return out;
}

Act CpuOps::rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) {
    const int64_t head_dim = x.ne[0], n_head = x.ne[1], n_tok = x.ne[2];
    FERRY_CHECK(x.ne[3] == 1 && int64_t(pos.size()) == n_tok);
    FERRY_CHECK(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim);
    const float* ff = p.freq_factors ? weight_f32(*p.freq_factors, p.n_rot / 2) : nullptr;
    const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.n_rot));
    const int64_t n_pairs = p.n_rot / 2;
    Act out = alloc(x.ne);
    const float* xs = ptr(x);
    float* y = ptr(out);
    pool_.parallel_for(n_tok, std::max<int64_t>(1, kElementsPerChunk / std::max<int64_t>(head_dim * n_head, 1)),
                       [&](int64_t tb, int64_t te) {
                           std::vector<float> cos_t(static_cast<size_t>(n_pairs)), sin_t(static_cast<size_t>(n_pairs));
                           for (int64_t t = tb; t < te; ++t) {
                               float theta = float(pos[size_t(t)]);
                               for (int64_t i = 0; i < n_pairs; ++i) {
                                   const float th = p.freq_scale * (ff ? theta / ff[i] : theta);
                                   cos_t[size_t(i)] = std::cos(th);
                                   sin_t[size_t(i)] = std::sin(th);
                                   theta *= theta_scale;
                               }
                               for (int64_t h = 0; h < n_head; ++h) {
                                   const float* xh = xs + (t * n_head + h) * head_dim;
                                   float* yh = y + (t * n_head + h) * head_dim;
                                   std::copy(xh + p.n_rot, xh + head_dim, yh + p.n_rot);
                                   // ggml's rotation as GCC contracts it (-ffp-contract=fast): the
                                   // first product fused, the second rounded (EwKernels::rope).
                                   ew_->rope(n_pairs, p.mode != RopeMode::Normal, cos_t.data(), sin_t.data(), xh, yh);
                               }
                           }
                       });
    return out;
}

template <class F>
Act CpuOps::unary(const Act& a, F f) {
    Act out = alloc(a.ne);
    const float* x = ptr(a);
    float* y = ptr(out);
    parallel_elements(a.n_elements(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
    });
    return out;
}

template <class F>
Act CpuOps::binary(const Act& a, const Act& b, F f) {
    FERRY_CHECK(a.ne == b.ne);
    Act out = alloc(a.ne);
    const float* x = ptr(a);
    const float* z = ptr(b);
    float* y = ptr(out);
    parallel_elements(a.n_elements(), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) y[i] = f(x[i], z[i]);
    });
    return out;
}

Act CpuOps::ew_binary(const Act& a, const Act& b, void (*fn)(int64_t, const float*, const float*, float*)) {
    FERRY_CHECK(a.ne == b.ne);
    Act out = alloc(a.ne);
    const float *x = ptr(a), *z = ptr(b);
    float* y = ptr(out);
    parallel_elements(a.n_elements(), [&](int64_t lo, int64_t hi) { fn(hi - lo, x + lo, z + lo, y + lo); });
    return out;
}
Act CpuOps::add(const Act& a, const Act& b) { return ew_binary(a, b, ew_->add); }
Act CpuOps::mul(const Act& a, const Act& b) { return ew_binary(a, b, ew_->mul); }
Act CpuOps::scale(const Act& a, float s) {
    Act out = alloc(a.ne);
    const float* x = ptr(a);
    float* y = ptr(out);
    parallel_elements(a.n_elements(), [&](int64_t lo, int64_t hi) { ew_->scale(hi - lo, x + lo, s, y + lo); });
    return out;
}
Act CpuOps::silu(const Act& a) {
    const int64_t n = a.ne[0];
    Act out = alloc(a.ne);
    const float* x = ptr(a);
    float* y = ptr(out);
    parallel_elements(a.n_elements(), [&](int64_t b, int64_t e) {
        for_row_pieces(b, e, n, [&](int64_t i, int64_t len, int64_t n_vec) { ew_->silu(len, x + i, y + i, n_vec); });
    });
    return out;
}
Act CpuOps::gelu(const Act& a) { return unary(a, gelu_f); }
Act CpuOps::sigmoid(const Act& a) {
    return unary(a, [](float x) { return 1.0f / (1.0f + std::exp(-x)); });
}
Act CpuOps::swiglu(const Act& gate, const Act& up) {
    FERRY_CHECK(gate.ne == up.ne);
    const int64_t n = gate.ne[0];
    Act out = alloc(gate.ne);
    const float* g = ptr(gate);
    const float* u = ptr(up);
    float* y = ptr(out);
    parallel_elements(gate.n_elements(), [&](int64_t b, int64_t e) {
        for_row_pieces(b, e, n,
                       [&](int64_t i, int64_t len, int64_t n_vec) { ew_->swiglu(len, g + i, u + i, y + i, n_vec); });
    });
    return out;
}
Act CpuOps::geglu(const Act& gate, const Act& up) {
    return binary(gate, up, [](float g, float u) { return gelu_f(g) * u; });
}

Act CpuOps::softmax(const Act& x, float scale) {
    const int64_t n = x.ne[0];
    Act out = alloc(x.ne);
    const float* xs = ptr(x);
    float* y = ptr(out);
    pool_.parallel_for(x.n_rows(), std::max<int64_t>(1, kElementsPerChunk / std::max<int64_t>(n, 1)),
                       [&](int64_t rb, int64_t re) {
                           for (int64_t r = rb; r < re; ++r) {
                               const float* xr = xs + r * n;
                               float* yr = y + r * n;
                               float mx = -INFINITY;
                               for (int64_t i = 0; i < n; ++i) mx = std::max(mx, scale * xr[i]);
                               double sum = 0;
                               for (int64_t i = 0; i < n; ++i) {
                                   yr[i] = std::exp(scale * xr[i] - mx);
                                   sum += yr[i];
                               }
                               for (int64_t i = 0; i < n; ++i) yr[i] = float(yr[i] / sum);
                           }
                       });
    return out;
}

Act CpuOps::rows(const Act& x, int64_t first, int64_t count) {
    const int64_t n = x.ne[0];
    FERRY_CHECK(first >= 0 && count >= 0 && first + count <= x.n_rows());
    Act out = alloc({n, count, 1, 1});
    const float* xs = ptr(x);
    std::copy(xs + first * n, xs + (first + count) * n, ptr(out));
    return out;
}

Act CpuOps::concat_rows(std::span<const Act> parts) {
    Act out = alloc(concat_rows_shape(parts));
    float* dst = ptr(out);
    for (const Act& p : parts) {
        const float* src = ptr(p);
        dst = std::copy(src, src + p.n_elements(), dst);
    }
    return out;
}

std::vector<int32_t> CpuOps::top_k(const Act& x, int64_t k) {
    const int64_t n = x.ne[0];
    FERRY_CHECK(k > 0 && k <= n);
    const float* xs = ptr(x);
    std::vector<int32_t> out;
    out.reserve(size_t(k * x.n_rows()));
    std::vector<int32_t> idx(static_cast<size_t>(n));
    for (int64_t r = 0; r < x.n_rows(); ++r) {
        const float* xr = xs + r * n;
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                          [&](int32_t a, int32_t b) { return xr[a] > xr[b] || (xr[a] == xr[b] && a < b); });
        out.insert(out.end(), idx.begin(), idx.begin() + k);
    }
    return out;
}

}  // namespace ferry::backend::cpu
