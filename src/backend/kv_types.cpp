// Which types a KV cache may be stored in, the checks a KvLayerSpec must pass, and Ops::attention_seqs'
// default (one attention call per sequence).
#include <string>
#include <vector>

#include "backend/ops.h"
#include "quant/formats.h"

namespace ferry::backend {

bool kv_cache_type_supported(GgmlType type) {
    switch (type) {
        case GgmlType::F32:
        case GgmlType::F16:
        case GgmlType::BF16:
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
        case GgmlType::Q4_1:
        case GgmlType::Q5_0:
        case GgmlType::Q5_1:
        case GgmlType::IQ4_NL: return quant::find_format(type) != nullptr;
        default: return false;
    }
}

std::string kv_layer_error(const KvLayerSpec& spec) {
    if (spec.n_ctx <= 0 || spec.n_head_kv <= 0 || spec.head_dim_k <= 0 || spec.head_dim_v <= 0)
        return "KV cache: sizes must be positive";
    const struct {
        const char* what;
        GgmlType type;
        int64_t head_dim;
    } sides[] = {{"K", spec.type_k, spec.head_dim_k}, {"V", spec.type_v, spec.head_dim_v}};
    for (const auto& side : sides) {
        if (!kv_cache_type_supported(side.type))
            return std::string(side.what) + " cache type " + std::string(type_name(side.type)) +
                   " is not supported (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl)";
        const int64_t block = quant::find_format(side.type)->block_size;
        if (side.head_dim % block != 0)
            return std::string(side.what) + " cache type " + std::string(type_name(side.type)) + " needs a head size " +
                   "that is a multiple of its block size " + std::to_string(block) + ", but the " + side.what +
                   " head size is " + std::to_string(side.head_dim);
    }
    return {};
}

void check_attn_seqs(const Act& q, std::span<const AttnSeq> seqs) {
    FERRY_CHECK(!seqs.empty() && q.ne[3] == 1);
    int64_t next = 0;
    for (const AttnSeq& s : seqs) {
        FERRY_CHECK(s.first == next && !s.pos.empty());
        next += int64_t(s.pos.size());
    }
    FERRY_CHECK(next == q.ne[2]);
}

Act Ops::attention_seqs(const Act& q, std::span<const AttnSeq> seqs) {
    check_attn_seqs(q, seqs);
    if (seqs.size() == 1) return attention(q, seqs[0].kv, seqs[0].pos, seqs[0].p);
    const Act flat = reshape(q, {q.ne[0] * q.ne[1], q.ne[2], 1, 1});
    std::vector<Act> parts;
    parts.reserve(seqs.size());
    for (const AttnSeq& s : seqs) {
        const int64_t n = int64_t(s.pos.size());
        const Act o = attention(reshape(rows(flat, s.first, n), {q.ne[0], q.ne[1], n, 1}), s.kv, s.pos, s.p);
        parts.push_back(reshape(o, {o.ne[0] * o.ne[1], n, 1, 1}));
    }
    const Act out = concat_rows(parts);
    return reshape(out, {out.ne[0] / q.ne[1], q.ne[1], q.ne[2], 1});
}

}  // namespace ferry::backend
