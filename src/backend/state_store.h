// Host storage of recurrent state layers (StateLayerSpec in ops.h), shared by the host backends: one
// conv state and one SSM state per layer, zero-initialized, addressed by StateHandle.
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "backend/ops.h"

namespace ferry::backend {

class StateStore {
public:
    struct Layer {
        StateLayerSpec spec;
        std::vector<float> conv;  // {n_conv_channels, conv_kernel - 1}
        std::vector<float> ssm;   // {head_dim_v, head_dim_k, n_head_v}
    };

    StateHandle add(const StateLayerSpec& spec) {
        FERRY_CHECK(spec.n_conv_channels > 0 && spec.conv_kernel >= 1 && spec.n_head_v > 0 && spec.head_dim_k > 0 &&
                    spec.head_dim_v > 0);
        layers_.push_back({spec, std::vector<float>(size_t(spec.conv_floats()), 0.0f),
                           std::vector<float>(size_t(spec.ssm_floats()), 0.0f)});
        return StateHandle{int32_t(layers_.size() - 1)};
    }

    Layer& at(StateHandle s) {
        FERRY_CHECK(s.id >= 0 && size_t(s.id) < layers_.size());
        return layers_[size_t(s.id)];
    }

    void get(StateHandle s, std::span<float> out) {
        const Layer& l = at(s);
        FERRY_CHECK(int64_t(out.size()) == l.spec.n_floats());
        std::copy(l.conv.begin(), l.conv.end(), out.begin());
        std::copy(l.ssm.begin(), l.ssm.end(), out.begin() + std::ptrdiff_t(l.conv.size()));
    }

    void set(StateHandle s, std::span<const float> in) {
        Layer& l = at(s);
        FERRY_CHECK(int64_t(in.size()) == l.spec.n_floats());
        std::copy(in.begin(), in.begin() + std::ptrdiff_t(l.conv.size()), l.conv.begin());
        std::copy(in.begin() + std::ptrdiff_t(l.conv.size()), in.end(), l.ssm.begin());
    }

private:
    std::vector<Layer> layers_;
};

}  // namespace ferry::backend
