#include "backend/reference/reference_ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/moe_routing.h"
#include "core/fp16.h"
#include "quant/formats.h"

namespace ferry::backend::reference {
namespace {

bool same_shape(const Act& a, const Act& b) { return a.ne == b.ne; }

const float* weight_f32(const Tensor& w, int64_t n) {
    FERRY_CHECK(w.type == GgmlType::F32 && w.ne[0] == n && w.n_rows() == 1);
    return static_cast<const float*>(w.data);
}

// All 65536 halves as floats (exact), so widening an F16 row is a lookup.
const std::vector<float>& f16_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_fp32(uint16_t(h));
        return t;
    }();
    return table;
}

// Dot product of two float rows in double. Four partial sums (element i goes to sum i % 4), added in
// order at the end: the products are exact in double, so the order only moves the last double bits,
// and the independent sums keep the scalar loop from waiting on one add chain.
float dot_f64(const float* a, const float* b, int64_t n) {
    double s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int k = 0; k < 4; ++k) s[k] += double(a[i + k]) * double(b[i + k]);
    }
    for (; i < n; ++i) s[0] += double(a[i]) * double(b[i]);
    return float((s[0] + s[1]) + (s[2] + s[3]));
}

float silu_f(float x) { return x / (1.0f + std::exp(-x)); }

float gelu_f(float x) {
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
    constexpr float kCoefA = 0.044715f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
}

float sigmoid_f(float x) { return 1.0f / (1.0f + std::exp(-x)); }

float softplus_f(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// y [n_tok][n_out] = w {n_in, n_out} x [n_tok][n_in], with matmul's numerics.
void matmul_rows(const Tensor& w, const float* xs, int64_t n_tok, float* y) {
    const quant::FormatTraits* wf = quant::find_format(w.type);
    FERRY_CHECK(wf != nullptr && wf->vec_dot != nullptr);
    FERRY_CHECK(w.ne[2] == 1 && w.ne[3] == 1);
    const int64_t n_in = w.ne[0], n_out = w.ne[1];
    FERRY_CHECK(n_in % wf->block_size == 0);
    const auto* w_bytes = static_cast<const uint8_t*>(w.data);

    if (wf->block_size == 1) {
        // F32 / F16 / BF16: ggml rounds the activations to the weight's type; the products of two
        // floats are exact in double and summed there. Each weight row is widened once and reused for
        // every token.
        std::vector<float> xr(xs, xs + n_tok * n_in);
        if (w.type == GgmlType::F16)
            for (float& v : xr) v = fp16_to_fp32(fp32_to_fp16(v));
        if (w.type == GgmlType::BF16)
            for (float& v : xr) v = bf16_to_fp32(fp32_to_bf16(v));
        std::vector<float> wr(static_cast<size_t>(n_in));
        for (int64_t o = 0; o < n_out; ++o) {
            const uint8_t* row = w_bytes + uint64_t(o) * w.nb[1];
            if (w.type == GgmlType::F16) {
                for (int64_t i = 0; i < n_in; ++i)
                    wr[size_t(i)] = f16_table()[reinterpret_cast<const uint16_t*>(row)[i]];
            } else {
                wf->dequantize_row(row, wr.data(), n_in);
            }
            for (int64_t t = 0; t < n_tok; ++t) y[t * n_out + o] = dot_f64(wr.data(), xr.data() + t * n_in, n_in);
        }
        return;
    }

    // Block formats: each activation row quantized to the paired format, then the format's vec_dot.
    const quant::FormatTraits* af = quant::find_format(wf->vec_dot_type);
    FERRY_CHECK(af != nullptr && n_in % af->block_size == 0);
    const int64_t act_row_bytes = n_in / af->block_size * af->type_size;
    std::vector<uint8_t> qx(static_cast<size_t>(act_row_bytes * n_tok));
    const quant::QuantizeRowFn quantize = quant::activation_quantizer(af->type);
    FERRY_CHECK(quantize != nullptr);
    for (int64_t t = 0; t < n_tok; ++t) quantize(xs + t * n_in, qx.data() + t * act_row_bytes, n_in);
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int64_t o = 0; o < n_out; ++o)
            y[t * n_out + o] = wf->vec_dot(n_in, w_bytes + uint64_t(o) * w.nb[1], qx.data() + t * act_row_bytes);
    }
}

}  // namespace

void ReferenceOps::reset() { acts_.clear(); }

Act ReferenceOps::alloc(std::array<int64_t, kMaxDims> ne) {
    Act a{ne, int32_t(acts_.size())};
    FERRY_CHECK(a.n_elements() >= 0);
    acts_.emplace_back(size_t(a.n_elements()), 0.0f);
    return a;
}

std::vector<float>& ReferenceOps::buf(const Act& a) {
    FERRY_CHECK(a.id >= 0 && size_t(a.id) < acts_.size());
    FERRY_CHECK(int64_t(acts_[size_t(a.id)].size()) == a.n_elements());
    return acts_[size_t(a.id)];
}

const std::vector<float>& ReferenceOps::buf(const Act& a) const {
    FERRY_CHECK(a.id >= 0 && size_t(a.id) < acts_.size());
    FERRY_CHECK(int64_t(acts_[size_t(a.id)].size()) == a.n_elements());
    return acts_[size_t(a.id)];
}

std::span<const float> ReferenceOps::data(const Act& a) const { return buf(a); }

Act ReferenceOps::input(std::span<const float> data, std::array<int64_t, kMaxDims> ne) {
    Act a = alloc(ne);
    FERRY_CHECK(int64_t(data.size()) == a.n_elements());
    std::copy(data.begin(), data.end(), buf(a).begin());
    return a;
}

void ReferenceOps::read(const Act& a, std::span<float> out) {
    const std::vector<float>& x = buf(a);
    FERRY_CHECK(out.size() == x.size());
    std::copy(x.begin(), x.end(), out.begin());
}

Act ReferenceOps::get_rows(const Tensor& table, std::span<const int32_t> ids) {
    const quant::FormatTraits* f = quant::find_format(table.type);
    FERRY_CHECK(f != nullptr && table.ne[2] == 1 && table.ne[3] == 1);
    const int64_t n = table.ne[0];
    Act out = alloc({n, int64_t(ids.size()), 1, 1});
    std::vector<float>& y = buf(out);
    for (size_t i = 0; i < ids.size(); ++i) {
        FERRY_CHECK(ids[i] >= 0 && ids[i] < table.ne[1]);
        const auto* row = static_cast<const uint8_t*>(table.data) + uint64_t(ids[i]) * table.nb[1];
        f->dequantize_row(row, y.data() + int64_t(i) * n, n);
    }
    return out;
}

Act ReferenceOps::matmul(const Tensor& w, const Act& x) {
    FERRY_CHECK(x.ne[0] == w.ne[0]);
    Act out = alloc({w.ne[1], x.n_rows(), 1, 1});
    matmul_rows(w, buf(x).data(), x.n_rows(), buf(out).data());
    return out;
}

Act ReferenceOps::rms_norm(const Act& x, const Tensor* w, float eps) {
    const int64_t n = x.ne[0];
    const float* wd = w ? weight_f32(*w, n) : nullptr;
    Act out = alloc(x.ne);
    const std::vector<float>& xs = buf(x);
    std::vector<float>& y = buf(out);
    for (int64_t r = 0; r < x.n_rows(); ++r) {
        const float* xr = xs.data() + r * n;
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += double(xr[i]) * double(xr[i]);
        const float mean = float(sum / double(n));
        const float s = 1.0f / std::sqrt(mean + eps);
        for (int64_t i = 0; i < n; ++i) {
            const float v = xr[i] * s;
            y[size_t(r * n + i)] = wd ? v * wd[i] : v;
        }
    }
    return out;
}

Act ReferenceOps::rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) {
    const int64_t head_dim = x.ne[0], n_head = x.ne[1], n_tok = x.ne[2];
    FERRY_CHECK(x.ne[3] == 1 && int64_t(pos.size()) == n_tok);
    FERRY_CHECK(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim);
    const float* ff = p.freq_factors ? weight_f32(*p.freq_factors, p.n_rot / 2) : nullptr;
    const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.n_rot));
    const int64_t n_pairs = p.n_rot / 2;

    Act out = alloc(x.ne);
    const std::vector<float>& xs = buf(x);
    std::vector<float>& y = buf(out);
    std::copy(xs.begin(), xs.end(), y.begin());  // dims >= n_rot pass through
    std::vector<float> cos_t(static_cast<size_t>(n_pairs));
    std::vector<float> sin_t(static_cast<size_t>(n_pairs));
    for (int64_t t = 0; t < n_tok; ++t) {
        float theta = float(pos[size_t(t)]);
        for (int64_t i = 0; i < n_pairs; ++i) {
            const float th = p.freq_scale * (ff ? theta / ff[i] : theta);
            cos_t[size_t(i)] = std::cos(th);
            sin_t[size_t(i)] = std::sin(th);
            theta *= theta_scale;
        }
        for (int64_t h = 0; h < n_head; ++h) {
            const float* xh = xs.data() + (t * n_head + h) * head_dim;
            float* yh = y.data() + (t * n_head + h) * head_dim;
            for (int64_t i = 0; i < n_pairs; ++i) {
                const int64_t i0 = p.mode == RopeMode::Normal ? 2 * i : i;
                const int64_t i1 = p.mode == RopeMode::Normal ? 2 * i + 1 : i + n_pairs;
                const float c = cos_t[size_t(i)], s = sin_t[size_t(i)];
                yh[i0] = xh[i0] * c - xh[i1] * s;
                yh[i1] = xh[i0] * s + xh[i1] * c;
            }
        }
    }
    return out;
}

Act ReferenceOps::unary(const Act& a, float (*f)(float)) {
    Act out = alloc(a.ne);
    const std::vector<float>& x = buf(a);
    std::vector<float>& y = buf(out);
    for (size_t i = 0; i < x.size(); ++i) y[i] = f(x[i]);
    return out;
}

Act ReferenceOps::binary(const Act& a, const Act& b, float (*f)(float, float)) {
    FERRY_CHECK(same_shape(a, b));
    Act out = alloc(a.ne);
    const std::vector<float>& x = buf(a);
    const std::vector<float>& z = buf(b);
    std::vector<float>& y = buf(out);
    for (size_t i = 0; i < x.size(); ++i) y[i] = f(x[i], z[i]);
    return out;
}

Act ReferenceOps::add(const Act& a, const Act& b) {
    return binary(a, b, [](float x, float y) { return x + y; });
}
Act ReferenceOps::mul(const Act& a, const Act& b) {
    return binary(a, b, [](float x, float y) { return x * y; });
}
Act ReferenceOps::silu(const Act& a) { return unary(a, silu_f); }
Act ReferenceOps::gelu(const Act& a) { return unary(a, gelu_f); }
Act ReferenceOps::sigmoid(const Act& a) { return unary(a, sigmoid_f); }
Act ReferenceOps::swiglu(const Act& gate, const Act& up) {
    return binary(gate, up, [](float g, float u) { return silu_f(g) * u; });
}
Act ReferenceOps::geglu(const Act& gate, const Act& up) {
    return binary(gate, up, [](float g, float u) { return gelu_f(g) * u; });
}

Act ReferenceOps::scale(const Act& a, float s) {
    Act out = alloc(a.ne);
    const std::vector<float>& x = buf(a);
    std::vector<float>& y = buf(out);
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s;
    return out;
}

Act ReferenceOps::softmax(const Act& x, float scale) {
    const int64_t n = x.ne[0];
    Act out = alloc(x.ne);
    const std::vector<float>& xs = buf(x);
    std::vector<float>& y = buf(out);
    for (int64_t r = 0; r < x.n_rows(); ++r) {
        const float* xr = xs.data() + r * n;
        float* yr = y.data() + r * n;
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; ++i) mx = std::max(mx, scale * xr[i]);
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) {
            yr[i] = std::exp(scale * xr[i] - mx);
            sum += yr[i];
        }
        for (int64_t i = 0; i < n; ++i) yr[i] = float(yr[i] / sum);
    }
    return out;
}

Act ReferenceOps::rows(const Act& x, int64_t first, int64_t count) {
    const int64_t n = x.ne[0];
    FERRY_CHECK(first >= 0 && count >= 0 && first + count <= x.n_rows());
    Act out = alloc({n, count, 1, 1});
    const std::vector<float>& xs = buf(x);
    std::copy(xs.begin() + first * n, xs.begin() + (first + count) * n, buf(out).begin());
    return out;
}

Act ReferenceOps::cols(const Act& x, int64_t first, int64_t count) {
    const int64_t n = x.ne[0];
    FERRY_CHECK(first >= 0 && count >= 0 && first + count <= n);
    Act out = alloc({count, x.ne[1], x.ne[2], x.ne[3]});
    const std::vector<float>& xs = buf(x);
    std::vector<float>& y = buf(out);
    for (int64_t r = 0; r < x.n_rows(); ++r)
        std::copy(xs.begin() + r * n + first, xs.begin() + r * n + first + count, y.begin() + r * count);
    return out;
}

Act ReferenceOps::l2_norm(const Act& x, float eps) {
    const int64_t n = x.ne[0];
    Act out = alloc(x.ne);
    const std::vector<float>& xs = buf(x);
    std::vector<float>& y = buf(out);
    for (int64_t r = 0; r < x.n_rows(); ++r) {
        const float* xr = xs.data() + r * n;
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += double(xr[i]) * double(xr[i]);
        const float s = 1.0f / std::max(std::sqrt(float(sum)), eps);
        for (int64_t i = 0; i < n; ++i) y[size_t(r * n + i)] = xr[i] * s;
    }
    return out;
}

StateHandle ReferenceOps::new_state_layer(const StateLayerSpec& spec) { return states_.add(spec); }
void ReferenceOps::state_get(StateHandle s, std::span<float> out) { states_.get(s, out); }
void ReferenceOps::state_set(StateHandle s, std::span<const float> in) { states_.set(s, in); }

Act ReferenceOps::ssm_conv(const Act& x, const Tensor& w, StateHandle s) {
    StateStore::Layer& l = states_.at(s);
    const int64_t ch = l.spec.n_conv_channels, kw = l.spec.conv_kernel, n_tok = x.n_rows();
    FERRY_CHECK(x.ne[0] == ch && w.type == GgmlType::F32 && w.ne[0] == kw && w.ne[1] == ch && w.n_rows() == ch);
    const auto* wd = static_cast<const float*>(w.data);
    // The window: kw - 1 state rows, then the micro-batch's rows.
    std::vector<float> u(l.conv);
    const std::vector<float>& xs = buf(x);
    u.insert(u.end(), xs.begin(), xs.end());
    Act out = alloc({ch, n_tok, 1, 1});
    std::vector<float>& y = buf(out);
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int64_t c = 0; c < ch; ++c) {
            float sum = 0.0f;
            for (int64_t j = 0; j < kw; ++j) sum += wd[c * kw + j] * u[size_t((t + j) * ch + c)];
            y[size_t(t * ch + c)] = silu_f(sum);
        }
    }
    std::copy(u.end() - std::ptrdiff_t(l.conv.size()), u.end(), l.conv.begin());
    return out;
}

Act ReferenceOps::gated_delta_net(const Act& q, const Act& k, const Act& v, const Act& alpha, const Act& beta,
                                  const GdnParams& p) {
    StateStore::Layer& l = states_.at(p.state);
    const int64_t dk = l.spec.head_dim_k, dv = l.spec.head_dim_v, hv = l.spec.n_head_v;
    const int64_t hk = q.ne[1], n_tok = q.ne[2];
    FERRY_CHECK(q.ne[0] == dk && k.ne == q.ne && hk > 0 && hv % hk == 0);
    FERRY_CHECK(v.ne[0] == dv && v.ne[1] == hv && v.ne[2] == n_tok);
    FERRY_CHECK(alpha.ne[0] == hv && alpha.n_rows() == n_tok && beta.ne == alpha.ne);
    const float* a_log = weight_f32(*p.ssm_a, hv);
    const float* dt = weight_f32(*p.dt_bias, hv);
    const std::vector<float>&qs = buf(q), &ks = buf(k), &vs = buf(v), &as = buf(alpha), &bs = buf(beta);
    Act out = alloc({dv, hv, n_tok, 1});
    std::vector<float>& y = buf(out);
    const float q_scale = 1.0f / std::sqrt(float(dk));
    std::vector<double> acc(static_cast<size_t>(dv));
    std::vector<float> d(static_cast<size_t>(dv));
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int64_t h = 0; h < hv; ++h) {
            const float* qh = qs.data() + (t * hk + h % hk) * dk;
            const float* kh = ks.data() + (t * hk + h % hk) * dk;
            const float* vh = vs.data() + (t * hv + h) * dv;
            float* S = l.ssm.data() + h * dk * dv;
            const float decay = std::exp(a_log[h] * softplus_f(as[size_t(t * hv + h)] + dt[h]));
            const float b = sigmoid_f(bs[size_t(t * hv + h)]);
            for (int64_t i = 0; i < dk * dv; ++i) S[i] *= decay;
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int64_t i = 0; i < dk; ++i)
                for (int64_t j = 0; j < dv; ++j) acc[size_t(j)] += double(S[i * dv + j]) * double(kh[i]);
            for (int64_t j = 0; j < dv; ++j) d[size_t(j)] = b * (vh[j] - float(acc[size_t(j)]));
            for (int64_t i = 0; i < dk; ++i)
                for (int64_t j = 0; j < dv; ++j) S[i * dv + j] += kh[i] * d[size_t(j)];
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int64_t i = 0; i < dk; ++i)
                for (int64_t j = 0; j < dv; ++j) acc[size_t(j)] += double(S[i * dv + j]) * double(qh[i] * q_scale);
            float* yh = y.data() + (t * hv + h) * dv;
            for (int64_t j = 0; j < dv; ++j) yh[j] = float(acc[size_t(j)]);
        }
    }
    return out;
}

Act ReferenceOps::concat_rows(std::span<const Act> parts) {
    Act out = alloc(concat_rows_shape(parts));
    auto dst = buf(out).begin();
    for (const Act& p : parts) dst = std::copy(buf(p).begin(), buf(p).end(), dst);
    return out;
}

KvHandle ReferenceOps::new_kv_layer(const KvLayerSpec& spec) {
    const std::string err = kv_layer_error(spec);
    FERRY_CHECK(err.empty());
    const quant::FormatTraits& fk = *quant::find_format(spec.type_k);
    const quant::FormatTraits& fv = *quant::find_format(spec.type_v);
    KvLayer layer{spec, {}, {}};
    layer.k.assign(size_t(spec.n_ctx * spec.n_head_kv * spec.head_dim_k / fk.block_size * fk.type_size), 0);
    layer.v.assign(size_t(spec.n_ctx * spec.n_head_kv * spec.head_dim_v / fv.block_size * fv.type_size), 0);
    kv_.push_back(std::move(layer));
    return KvHandle{int32_t(kv_.size() - 1)};
}

void ReferenceOps::kv_write(KvHandle kv, const Act& k, const Act& v, int64_t pos0) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    KvLayer& layer = kv_[size_t(kv.id)];
    const KvLayerSpec& s = layer.spec;
    const int64_t n_tok = k.ne[2];
    FERRY_CHECK(k.ne[0] == s.head_dim_k && k.ne[1] == s.n_head_kv && k.ne[3] == 1);
    FERRY_CHECK(v.ne[0] == s.head_dim_v && v.ne[1] == s.n_head_kv && v.ne[2] == n_tok && v.ne[3] == 1);
    FERRY_CHECK(pos0 >= 0 && pos0 + n_tok <= s.n_ctx);
    // Rows are whole blocks, so a run of cells quantizes in one call.
    auto store = [&](const std::vector<float>& x, std::vector<uint8_t>& cache, GgmlType type, int64_t head_dim) {
        const quant::FormatTraits& f = *quant::find_format(type);
        const int64_t cell = s.n_head_kv * head_dim, cell_bytes = cell / f.block_size * f.type_size;
        f.quantize_row(x.data(), cache.data() + pos0 * cell_bytes, n_tok * cell);
    };
    store(buf(k), layer.k, s.type_k, s.head_dim_k);
    store(buf(v), layer.v, s.type_v, s.head_dim_v);
}

Act ReferenceOps::attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    const KvLayer& layer = kv_[size_t(kv.id)];
    const KvLayerSpec& s = layer.spec;
    const int64_t dk = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2], dv = s.head_dim_v;
    FERRY_CHECK(dk == s.head_dim_k && q.ne[3] == 1 && int64_t(pos.size()) == n_tok);
    FERRY_CHECK(n_head % s.n_head_kv == 0 && p.n_kv >= 0 && p.n_kv <= s.n_ctx);
    const int64_t group = n_head / s.n_head_kv;
    // The cells [0, n_kv) as f32, then plain attention over them.
    auto load = [&](const std::vector<uint8_t>& cache, GgmlType type, int64_t head_dim) {
        std::vector<float> x(static_cast<size_t>(p.n_kv * s.n_head_kv * head_dim));
        quant::find_format(type)->dequantize_row(cache.data(), x.data(), int64_t(x.size()));
        return x;
    };
    const std::vector<float> ks = load(layer.k, s.type_k, dk);
    const std::vector<float> vs = load(layer.v, s.type_v, dv);

    Act out = alloc({dv, n_head, n_tok, 1});
    const std::vector<float>& qs = buf(q);
    std::vector<float>& y = buf(out);
    std::vector<float> score(static_cast<size_t>(p.n_kv));
    for (int64_t t = 0; t < n_tok; ++t) {
        const int64_t qp = pos[size_t(t)];
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t hk = h / group;
            const float* qh = qs.data() + (t * n_head + h) * dk;
            float mx = -INFINITY;
            for (int64_t j = 0; j < p.n_kv; ++j) {
                const bool visible = j <= qp && (p.n_swa == 0 || qp - j < p.n_swa);
                if (!visible) {
                    score[size_t(j)] = -INFINITY;
                    continue;
                }
                const float* kj = ks.data() + (j * s.n_head_kv + hk) * dk;
                float d = 0.0f;
                for (int64_t i = 0; i < dk; ++i) d += qh[i] * kj[i];
                score[size_t(j)] = d * p.kq_scale;
                mx = std::max(mx, score[size_t(j)]);
            }
            float* yh = y.data() + (t * n_head + h) * dv;
            if (mx == -INFINITY) continue;  // no visible key: output zeros
            double sum = 0;
            for (int64_t j = 0; j < p.n_kv; ++j) {
                score[size_t(j)] = score[size_t(j)] == -INFINITY ? 0.0f : std::exp(score[size_t(j)] - mx);
                sum += score[size_t(j)];
            }
            for (int64_t j = 0; j < p.n_kv; ++j) {
                if (score[size_t(j)] == 0.0f) continue;
                const float w = float(score[size_t(j)] / sum);
                const float* vj = vs.data() + (j * s.n_head_kv + hk) * dv;
                for (int64_t i = 0; i < dv; ++i) yh[i] += w * vj[i];
            }
        }
    }
    return out;
}

std::vector<int32_t> ReferenceOps::top_k(const Act& x, int64_t k) {
    const int64_t n = x.ne[0];
    FERRY_CHECK(k > 0 && k <= n);
    const std::vector<float>& xs = buf(x);
    std::vector<int32_t> out;
    out.reserve(size_t(k * x.n_rows()));
    std::vector<int32_t> idx(static_cast<size_t>(n));
    for (int64_t r = 0; r < x.n_rows(); ++r) {
        const float* xr = xs.data() + r * n;
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return xr[a] > xr[b]; });
        out.insert(out.end(), idx.begin(), idx.begin() + k);
    }
    return out;
}

}  // namespace ferry::backend::reference

namespace ferry::backend::reference {

// Token by token, expert by expert: the definition in ops.h read literally.
Act ReferenceOps::moe_ffn(const Act& x, const MoeWeights& w, const MoeParams& p) {
    check_moe_shapes(x, w, p);
    const int64_t n_embd = x.ne[0], n_tok = x.ne[1], k = p.n_expert_used;
    const float* xs = buf(x).data();
    Act out = alloc({n_embd, n_tok, 1, 1});
    std::vector<float>& y = buf(out);

    std::vector<float> logits(static_cast<size_t>(n_tok * p.n_expert));
    matmul_rows(*w.gate_inp, xs, n_tok, logits.data());
    std::vector<int32_t> experts(static_cast<size_t>(n_tok * k));
    std::vector<float> weights(static_cast<size_t>(n_tok * k));
    moe_route(logits.data(), n_tok, p, experts.data(), weights.data());

    // act(gate x) * up x, then down: one token through one expert (or the shared one).
    auto glu = [&](const Tensor& gate, const Tensor& up, const Tensor& down, const float* xt, float* yt) {
        const int64_t ff = gate.ne[1];
        std::vector<float> g(static_cast<size_t>(ff)), u(static_cast<size_t>(ff));
        matmul_rows(gate, xt, 1, g.data());
        matmul_rows(up, xt, 1, u.data());
        for (int64_t i = 0; i < ff; ++i) g[size_t(i)] = silu_f(g[size_t(i)]) * u[size_t(i)];
        matmul_rows(down, g.data(), 1, yt);
    };
    std::vector<bool> used(static_cast<size_t>(p.n_expert), false);
    std::vector<float> ye(static_cast<size_t>(n_embd));
    for (int64_t t = 0; t < n_tok; ++t) {
        const float* xt = xs + t * n_embd;
        float* yt = y.data() + t * n_embd;
        for (int64_t j = 0; j < k; ++j) {
            const int32_t e = experts[size_t(t * k + j)];
            used[size_t(e)] = true;
            glu(expert_matrix(*w.gate_exps, e), expert_matrix(*w.up_exps, e), expert_matrix(*w.down_exps, e), xt,
                ye.data());
            const float wj = weights[size_t(t * k + j)];
            for (int64_t i = 0; i < n_embd; ++i) yt[i] += wj * ye[size_t(i)];
        }
        if (w.gate_shexp != nullptr) {
            glu(*w.gate_shexp, *w.up_shexp, *w.down_shexp, xt, ye.data());
            float g = 1.0f;
            if (w.gate_inp_shexp != nullptr) {
                matmul_rows(*w.gate_inp_shexp, xt, 1, &g);
                g = 1.0f / (1.0f + std::exp(-g));
            }
            for (int64_t i = 0; i < n_embd; ++i) yt[i] += ye[size_t(i)] * g;
        }
    }

    Traffic& tr = traffic();
    tr.weight_bytes += w.gate_inp->n_bytes();
    for (int64_t e = 0; e < p.n_expert; ++e) {
        if (used[size_t(e)]) {
            const uint64_t b = expert_bytes(*w.gate_exps) + expert_bytes(*w.up_exps) + expert_bytes(*w.down_exps);
            tr.weight_bytes += b;
            tr.expert_bytes += b;
        }
    }
    if (w.gate_shexp != nullptr)
        tr.weight_bytes += w.gate_shexp->n_bytes() + w.up_shexp->n_bytes() + w.down_shexp->n_bytes();
    if (w.gate_inp_shexp != nullptr) tr.weight_bytes += w.gate_inp_shexp->n_bytes();
    return out;
}

}  // namespace ferry::backend::reference
