// ferry inspect: what is in a GGUF file — architecture, hyperparameters, tokenizer, chat template,
// tensors and their types, parameter counts and bits per weight; for MoE models the parameters a
// token actually uses; for an architecture ferry runs, the memory one sequence needs (KV cache at -c
// with -ctk/-ctv, recurrent state of hybrid models). Text for people, --json for programs (same facts).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "gguf/reader.h"
#include "model/model.h"
#include "runtime/session.h"
#include "tools/model_path.h"
#include "tools/tools.h"

namespace ferry::tools {

const char* file_type_name(uint64_t id) {
    static const std::map<uint64_t, const char*> names = {
        {0, "F32"},     {1, "F16"},     {2, "Q4_0"},       {3, "Q4_1"},    {7, "Q8_0"},     {8, "Q5_0"},
        {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"},    {12, "Q3_K_M"}, {13, "Q3_K_L"},  {14, "Q4_K_S"},
        {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},    {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"},
        {21, "Q2_K_S"}, {22, "IQ3_XS"}, {23, "IQ3_XXS"},   {24, "IQ1_S"},  {25, "IQ4_NL"},  {26, "IQ3_S"},
        {27, "IQ3_M"},  {28, "IQ2_S"},  {29, "IQ2_M"},     {30, "IQ4_XS"}, {31, "IQ1_M"},   {32, "BF16"},
        {36, "TQ1_0"},  {37, "TQ2_0"},  {38, "MXFP4_MOE"},
    };
    const auto it = names.find(id);
    return it == names.end() ? "unknown" : it->second;
}

namespace {

using nlohmann::ordered_json;

struct TypeTotal {
    uint64_t count = 0;
    uint64_t params = 0;
    uint64_t bytes = 0;
};

// The memory one sequence needs, when ferry can load the architecture.
struct SequenceMemory {
    int64_t n_ctx = 0;
    GgmlType type_k = GgmlType::F16, type_v = GgmlType::F16;
    runtime::MemoryUse use;
};

struct Summary {
    std::string architecture;
    std::optional<SequenceMemory> memory;
    std::map<std::string, TypeTotal> by_type;
    uint64_t params = 0;
    uint64_t bytes = 0;
    // MoE: routed-expert tensors hold n_expert experts, of which n_expert_used run per token.
    uint64_t n_expert = 0;
    uint64_t n_expert_used = 0;
    uint64_t routed_params = 0;
    // Blocks past block_count - nextn_predict_layers are MTP (multi-token prediction) heads.
    uint64_t mtp_params = 0;

    uint64_t active_params() const {
        const uint64_t base = params - routed_params - mtp_params;
        if (n_expert == 0) return base + routed_params;
        return base + routed_params / n_expert * n_expert_used;
    }
};

std::string string_key(const gguf::File& f, const std::string& key) {
    const gguf::Value* v = f.find(key);
    return v && v->get_string() ? *v->get_string() : std::string();
}

uint64_t uint_key(const gguf::File& f, const std::string& key) {
    const gguf::Value* v = f.find(key);
    return v && v->get_uint() ? *v->get_uint() : 0;
}

// Layer index of "blk.N.<...>", or -1.
int64_t block_index(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    int64_t n = 0;
    size_t i = 4;
    if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && n < (1 << 24); ++i) n = n * 10 + (name[i] - '0');
    return n;
}

Summary summarize(const gguf::File& f) {
    Summary s;
    s.architecture = string_key(f, "general.architecture");
    const std::string a = s.architecture + ".";
    s.n_expert = uint_key(f, a + "expert_count");
    s.n_expert_used = std::min(uint_key(f, a + "expert_used_count"), s.n_expert);
    const uint64_t n_block = uint_key(f, a + "block_count");
    const uint64_t n_nextn = std::min(uint_key(f, a + "nextn_predict_layers"), n_block);
    for (const gguf::TensorInfo& t : f.tensors()) {
        const uint64_t n = uint64_t(t.n_elements());
        TypeTotal& tt = s.by_type[std::string(type_name(t.type))];
        ++tt.count;
        tt.params += n;
        tt.bytes += t.size;
        s.params += n;
        s.bytes += t.size;
        const int64_t blk = block_index(t.name);
        if (n_nextn > 0 && blk >= 0 && uint64_t(blk) >= n_block - n_nextn) {
            s.mtp_params += n;
        } else if (s.n_expert > 1 && t.name.find("_exps") != std::string::npos && uint64_t(t.ne[2]) == s.n_expert) {
            s.routed_params += n;
        }
    }
    return s;
}

std::string human_bytes(uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / (1ull << 30));
    else if (b >= (1ull << 20))
        std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / (1ull << 20));
    else if (b >= 1024)
        std::snprintf(buf, sizeof buf, "%.2f KiB", double(b) / 1024);
    else
        std::snprintf(buf, sizeof buf, "%" PRIu64 " B", b);
    return buf;
}

std::string human_count(uint64_t n) {
    char buf[32];
    if (n >= 1000000000ull)
        std::snprintf(buf, sizeof buf, "%.2f B", double(n) / 1e9);
    else if (n >= 1000000ull)
        std::snprintf(buf, sizeof buf, "%.2f M", double(n) / 1e6);
    else if (n >= 1000ull)
        std::snprintf(buf, sizeof buf, "%.2f K", double(n) / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%" PRIu64, n);
    return buf;
}

double bits_per_weight(uint64_t bytes, uint64_t params) { return params ? 8.0 * double(bytes) / double(params) : 0; }

std::string shape_text(const gguf::TensorInfo& t) {
    std::string s = "[";
    for (int d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
}

// The token text for an id key such as tokenizer.ggml.bos_token_id, if the vocab has it.
std::string token_text(const gguf::File& f, const std::string& id_key) {
    const gguf::Value* id = f.find(id_key);
    const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
    if (!id || !id->get_uint()) return "";
    std::string out = std::to_string(*id->get_uint());
    if (tokens && tokens->get_strings() && *id->get_uint() < tokens->get_strings()->size())
        out += " " + gguf::Value::string((*tokens->get_strings())[*id->get_uint()]).to_display();
    return out;
}

bool is_bulk_key(const std::string& key) {
    return key.rfind("tokenizer.ggml.", 0) == 0 || key == "tokenizer.chat_template";
}

void print_text(const gguf::File& f, const Summary& s, bool list_tensors) {
    std::printf("file:            %s (%s, GGUF v%u, alignment %" PRIu64 ", %s)\n", f.path().c_str(),
                human_bytes(f.file_size()).c_str(), f.version(), f.alignment(),
                f.mode() == FileData::Mode::Mmap ? "mmap" : "read into memory");
    std::printf("architecture:    %s\n", s.architecture.empty() ? "(none)" : s.architecture.c_str());
    if (const std::string name = string_key(f, "general.name"); !name.empty())
        std::printf("name:            %s\n", name.c_str());
    if (const gguf::Value* ft = f.find("general.file_type"); ft && ft->get_uint())
        std::printf("file type:       %s (general.file_type %" PRIu64 ")\n", file_type_name(*ft->get_uint()),
                    *ft->get_uint());
    std::printf("parameters:      %s (%" PRIu64 "), %s of tensor data, %.2f bits per weight\n",
                human_count(s.params).c_str(), s.params, human_bytes(s.bytes).c_str(),
                bits_per_weight(s.bytes, s.params));
    if (s.n_expert > 0)
        std::printf("experts:         %" PRIu64 " routed, %" PRIu64
                    " used per token; active parameters %s of %s "
                    "(routed experts %s)\n",
                    s.n_expert, s.n_expert_used, human_count(s.active_params()).c_str(),
                    human_count(s.params - s.mtp_params).c_str(), human_count(s.routed_params).c_str());
    if (s.mtp_params > 0)
        std::printf("MTP block:       %s parameters (not used by the main forward pass)\n",
                    human_count(s.mtp_params).c_str());
    if (s.memory) {
        const runtime::MemoryUse& m = s.memory->use;
        std::printf("memory/sequence: %s = KV cache %s (%s per token, %" PRId64 " layers, K %s, V %s, ctx %" PRId64 ")",
                    human_bytes(m.kv_bytes + m.state_bytes).c_str(), human_bytes(m.kv_bytes).c_str(),
                    human_bytes(m.kv_bytes_per_token).c_str(), m.n_kv_layers,
                    std::string(type_name(s.memory->type_k)).c_str(), std::string(type_name(s.memory->type_v)).c_str(),
                    s.memory->n_ctx);
        if (m.n_state_layers > 0)
            std::printf(" + recurrent state %s (%" PRId64 " layers, f32)", human_bytes(m.state_bytes).c_str(),
                        m.n_state_layers);
        std::printf("\n");
    }

    const std::string prefix = s.architecture + ".";
    bool header = false;
    for (const gguf::KeyValue& kv : f.metadata()) {
        if (s.architecture.empty() || kv.key.rfind(prefix, 0) != 0) continue;
        if (!header) std::printf("hyperparameters:\n");
        header = true;
        std::printf("  %-44s %s\n", kv.key.c_str() + prefix.size(), kv.value.to_display().c_str());
    }

    if (const std::string model = string_key(f, "tokenizer.ggml.model"); !model.empty()) {
        const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
        const gguf::Value* merges = f.find("tokenizer.ggml.merges");
        std::printf("tokenizer:       %s", model.c_str());
        if (const std::string pre = string_key(f, "tokenizer.ggml.pre"); !pre.empty())
            std::printf(" (pre-tokenizer %s)", pre.c_str());
        std::printf(", %" PRIu64 " tokens", tokens ? tokens->array_size() : 0);
        if (merges) std::printf(", %" PRIu64 " merges", merges->array_size());
        std::printf("\n");
        for (const char* which : {"bos", "eos", "eot", "unknown", "padding"}) {
            const std::string t = token_text(f, std::string("tokenizer.ggml.") + which + "_token_id");
            if (!t.empty()) std::printf("  %-10s %s\n", which, t.c_str());
        }
        for (const char* flag : {"add_bos_token", "add_eos_token", "add_space_prefix"}) {
            const gguf::Value* v = f.find(std::string("tokenizer.ggml.") + flag);
            if (v && v->get_bool()) std::printf("  %-16s %s\n", flag, *v->get_bool() ? "true" : "false");
        }
    } else {
        std::printf("tokenizer:       (none)\n");
    }
    const std::string tmpl = string_key(f, "tokenizer.chat_template");
    if (tmpl.empty())
        std::printf("chat template:   (none)\n");
    else
        std::printf("chat template:   present (%zu bytes)\n", tmpl.size());

    std::printf("other metadata:\n");
    for (const gguf::KeyValue& kv : f.metadata()) {
        if ((!s.architecture.empty() && kv.key.rfind(prefix, 0) == 0) || is_bulk_key(kv.key)) continue;
        std::printf("  %-44s %s\n", kv.key.c_str(), kv.value.to_display().c_str());
    }

    std::printf("tensors:         %zu, data at offset %" PRIu64 "\n", f.tensors().size(), f.data_offset());
    std::printf("  %-8s %7s %14s %12s %7s %6s\n", "type", "count", "params", "bytes", "share", "bpw");
    for (const auto& [type, t] : s.by_type)
        std::printf("  %-8s %7" PRIu64 " %14" PRIu64 " %12s %6.1f%% %6.2f\n", type.c_str(), t.count, t.params,
                    human_bytes(t.bytes).c_str(), s.bytes ? 100.0 * double(t.bytes) / double(s.bytes) : 0.0,
                    bits_per_weight(t.bytes, t.params));
    if (!list_tensors) {
        std::printf("(--tensors lists every tensor)\n");
        return;
    }
    std::printf("\n  %-48s %-8s %-24s %12s %12s\n", "name", "type", "shape", "bytes", "offset");
    for (const gguf::TensorInfo& t : f.tensors())
        std::printf("  %-48s %-8s %-24s %12" PRIu64 " %12" PRIu64 "\n", t.name.c_str(),
                    std::string(type_name(t.type)).c_str(), shape_text(t).c_str(), t.size, f.data_offset() + t.offset);
}

ordered_json value_json(const gguf::Value& v) {
    using gguf::ValueType;
    if (const std::string* s = v.get_string()) return *s;
    if (!v.is_array()) {
        if (v.type() == ValueType::BOOL) return *v.get_bool();
        if (v.type() == ValueType::F32 || v.type() == ValueType::F64) return *v.get_float();
        if (v.type() == ValueType::U64) return *v.get_uint();
        return *v.get_int();
    }
    ordered_json a = ordered_json::array();
    if (const auto* strings = v.get_strings()) {
        for (const std::string& s : *strings) a.push_back(s);
    } else if (const auto* arrays = v.get_arrays()) {
        for (const gguf::Value& e : *arrays) a.push_back(value_json(e));
    } else {
        for (uint64_t i = 0; i < v.array_size(); ++i) a.push_back(value_json(v.element(i)));
    }
    return a;
}

ordered_json to_json(const gguf::File& f, const Summary& s) {
    ordered_json j;
    j["file"] = f.path();
    j["file_size"] = f.file_size();
    j["gguf_version"] = f.version();
    j["alignment"] = f.alignment();
    j["data_offset"] = f.data_offset();
    j["architecture"] = s.architecture;
    j["name"] = string_key(f, "general.name");
    if (const gguf::Value* ft = f.find("general.file_type"); ft && ft->get_uint())
        j["file_type"] = {{"id", *ft->get_uint()}, {"name", file_type_name(*ft->get_uint())}};
    j["n_params"] = s.params;
    j["n_bytes"] = s.bytes;
    j["bits_per_weight"] = bits_per_weight(s.bytes, s.params);
    if (s.n_expert > 0)
        j["moe"] = {{"n_expert", s.n_expert},
                    {"n_expert_used", s.n_expert_used},
                    {"routed_params", s.routed_params},
                    {"active_params", s.active_params()}};
    if (s.mtp_params > 0) j["mtp_params"] = s.mtp_params;
    if (s.memory) {
        const runtime::MemoryUse& m = s.memory->use;
        j["memory_per_sequence"] = {{"n_ctx", s.memory->n_ctx},
                                    {"cache_type_k", std::string(type_name(s.memory->type_k))},
                                    {"cache_type_v", std::string(type_name(s.memory->type_v))},
                                    {"kv_bytes", m.kv_bytes},
                                    {"kv_bytes_per_token", m.kv_bytes_per_token},
                                    {"kv_layers", m.n_kv_layers},
                                    {"state_bytes", m.state_bytes},
                                    {"state_layers", m.n_state_layers}};
    }
    const std::string tmpl = string_key(f, "tokenizer.chat_template");
    j["chat_template"] = !tmpl.empty();
    j["tokenizer"] = {
        {"model", string_key(f, "tokenizer.ggml.model")},
        {"pre", string_key(f, "tokenizer.ggml.pre")},
        {"n_tokens", f.find("tokenizer.ggml.tokens") ? f.find("tokenizer.ggml.tokens")->array_size() : 0},
        {"n_merges", f.find("tokenizer.ggml.merges") ? f.find("tokenizer.ggml.merges")->array_size() : 0}};
    ordered_json meta = ordered_json::object();
    for (const gguf::KeyValue& kv : f.metadata()) {
        ordered_json e = {{"type", std::string(gguf::value_type_name(kv.value.type()))}};
        if (kv.value.is_array()) {
            e["element_type"] = std::string(gguf::value_type_name(kv.value.array_type()));
            e["count"] = kv.value.array_size();
            if (!is_bulk_key(kv.key)) e["value"] = value_json(kv.value);
        } else {
            e["value"] = value_json(kv.value);
        }
        meta[kv.key] = std::move(e);
    }
    j["n_kv"] = f.metadata().size();
    j["metadata"] = std::move(meta);
    ordered_json types = ordered_json::object();
    for (const auto& [type, t] : s.by_type)
        types[type] = {{"count", t.count}, {"params", t.params}, {"bytes", t.bytes}};
    j["n_tensors"] = f.tensors().size();
    j["types"] = std::move(types);
    ordered_json tensors = ordered_json::array();
    for (const gguf::TensorInfo& t : f.tensors()) {
        ordered_json shape = ordered_json::array();
        for (int d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
        tensors.push_back({{"name", t.name},
                           {"type", std::string(type_name(t.type))},
                           {"shape", std::move(shape)},
                           {"offset", f.data_offset() + t.offset},
                           {"bytes", t.size}});
    }
    j["tensors"] = std::move(tensors);
    return j;
}

}  // namespace

int run_inspect(const Params& params) {
    const auto path = resolve_model(params);
    if (!path.ok()) {
        std::fprintf(stderr, "ferry inspect: %s\n", path.error().message.c_str());
        return 1;
    }
    const auto mode = params.no_mmap ? FileData::Mode::Read : FileData::Mode::Mmap;
    const auto file = gguf::File::open(path.value(), mode);
    if (!file.ok()) {
        std::fprintf(stderr, "ferry inspect: %s\n", file.error().message.c_str());
        return 1;
    }
    Summary summary = summarize(file.value());
    // The memory estimate needs the architecture's loader; files ferry cannot run just lack it.
    if (auto model = model::load(file.value()); model.ok()) {
        const int64_t n_ctx = params.ctx_size > 0 ? params.ctx_size : (*model)->info().n_ctx_train;
        if (n_ctx > 0)
            summary.memory =
                SequenceMemory{n_ctx, params.cache_type_k, params.cache_type_v,
                               runtime::memory_use(**model, n_ctx, params.cache_type_k, params.cache_type_v)};
    }
    if (params.json) {
        // Metadata strings come from the file and may not be UTF-8: replace bad bytes with U+FFFD.
        const std::string text =
            to_json(file.value(), summary).dump(2, ' ', false, ordered_json::error_handler_t::replace);
        std::printf("%s\n", text.c_str());
    } else {
        print_text(file.value(), summary, params.tensors);
    }
    return 0;
}

}  // namespace ferry::tools
