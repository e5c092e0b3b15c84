#include "tools/engine.h"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>

#include "backend/backends.h"
#include "core/cpu_features.h"
#include "core/mapped_file.h"
#include "text/utf8.h"
#include "tools/model_path.h"

namespace ferry::tools {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// "llama, 134.52 M params, Q4_1 69% + Q8_0 31%, 92.1 MiB"
std::string describe_weights(const gguf::File& file, const std::string& arch) {
    uint64_t params = 0, bytes = 0;
    std::map<std::string, uint64_t> by_type;
    for (const gguf::TensorInfo& t : file.tensors()) {
        params += uint64_t(t.n_elements());
        bytes += t.size;
        by_type[std::string(type_name(t.type))] += t.size;
    }
    std::string types;
    for (const auto& [type, b] : by_type) {
        const double share = bytes ? 100.0 * double(b) / double(bytes) : 0;
        if (share < 1.0) continue;
        char buf[48];
        std::snprintf(buf, sizeof buf, "%s%s %.0f%%", types.empty() ? "" : " + ", type.c_str(), share);
        types += buf;
    }
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s, %.2f M params, %s, %.1f MiB", arch.c_str(), double(params) / 1e6, types.c_str(),
                  double(bytes) / (1 << 20));
    return buf;
}

}  // namespace

Result<Engine> load_engine(const Params& params, const char* tool, int64_t n_ctx_session) {
    Engine e;
    FERRY_ASSIGN(e.path, resolve_model(params));
    const auto t0 = std::chrono::steady_clock::now();
    const auto mode = params.no_mmap ? FileData::Mode::Read : FileData::Mode::Mmap;
    FERRY_ASSIGN(gguf::File file, gguf::File::open(e.path, mode));
    e.file = std::make_unique<gguf::File>(std::move(file));
    FERRY_ASSIGN(e.model, model::load(*e.file));
    FERRY_ASSIGN(text::Vocab vocab, text::Vocab::from_gguf(*e.file));
    e.vocab = std::make_unique<text::Vocab>(std::move(vocab));
    if (e.vocab->n_tokens() != e.model->info().n_vocab)
        return make_error("the tokenizer has " + std::to_string(e.vocab->n_tokens()) + " tokens but the model's " +
                          "output has " + std::to_string(e.model->info().n_vocab));
    const auto kind = backend::parse_backend(params.backend);
    if (!kind) return make_error("unknown backend '" + params.backend + "' (cpu, reference)");
    e.ops = backend::make_ops(*kind, params.threads);
    const bool quantized_v = type_info(params.cache_type_v).quantized;
    if (params.flash_attn == "off" && quantized_v)
        return make_error("quantized V cache was requested (-ctv " + std::string(type_name(params.cache_type_v)) +
                          "), but this requires flash attention (-fa on or auto)");
    runtime::SessionParams sp;
    sp.n_ctx = n_ctx_session > 0 ? n_ctx_session : params.ctx_size;
    sp.n_ubatch = params.n_ubatch;
    sp.kv_type_k = params.cache_type_k;
    sp.kv_type_v = params.cache_type_v;
    if (n_ctx_session >= 0) {
        FERRY_ASSIGN(runtime::Session session, runtime::Session::create(*e.model, *e.ops, sp));
        e.session = std::make_unique<runtime::Session>(std::move(session));
    }

    const int threads = *kind == backend::BackendKind::Reference ? 1
                        : params.threads > 0                     ? params.threads
                                                                 : physical_cores();
    std::fprintf(stderr, "%s: %s | %s | ctx %" PRId64 ", KV %s/%s | backend %s, %d thread%s | loaded in %.0f ms (%s)\n",
                 tool, e.path.c_str(), describe_weights(*e.file, e.model->info().arch).c_str(),
                 e.session ? e.session->n_ctx() : (params.ctx_size > 0 ? params.ctx_size : e.model->info().n_ctx_train),
                 std::string(type_name(params.cache_type_k)).c_str(),
                 std::string(type_name(params.cache_type_v)).c_str(), backend::backend_name(*kind), threads,
                 threads == 1 ? "" : "s", ms_since(t0), params.no_mmap ? "read into memory" : "mmap");
    return e;
}

Result<GenerateStats> generate(Engine& engine, runtime::Sampler& sampler, std::span<const int32_t> prompt,
                               const Params& params, const GenerateLimits& limits,
                               const std::function<void(std::string_view)>& emit, std::vector<int32_t>* generated) {
    GenerateStats stats;
    runtime::Session& session = *engine.session;
    if (prompt.empty()) return make_error("the prompt is empty (no tokens)");
    if (session.n_past() + int64_t(prompt.size()) >= session.n_ctx())
        return make_error("the prompt (" + std::to_string(prompt.size()) + " tokens) does not fit the context (" +
                          std::to_string(session.n_ctx() - session.n_past()) + " positions left; raise -c)");
    auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits;
    const size_t step = size_t(std::max(1, params.n_batch));
    for (size_t i = 0; i < prompt.size(); i += step) {
        const auto part = prompt.subspan(i, std::min(step, prompt.size() - i));
        FERRY_ASSIGN(logits, session.prefill(part));
        for (int32_t t : part) sampler.accept(t);
        if (limits.stop && limits.stop->load()) {
            stats.stopped = true;
            return stats;
        }
    }
    stats.n_prompt = int(prompt.size());
    stats.prompt_ms = ms_since(t0);

    t0 = std::chrono::steady_clock::now();
    text::StreamDecoder decoder(*engine.vocab, false);
    while (limits.n_predict < 0 || stats.n_generated < limits.n_predict) {
        if (limits.stop && limits.stop->load()) {
            stats.stopped = true;
            break;
        }
        const int32_t token = sampler.sample(logits);
        sampler.accept(token);
        if (engine.vocab->is_eog(token) && !limits.ignore_eos) {
            stats.hit_eog = true;
            break;
        }
        ++stats.n_generated;
        if (generated) generated->push_back(token);
        FERRY_ASSIGN(const std::string piece, decoder.push(token));
        if (!piece.empty()) emit(piece);
        if (session.n_past() + 1 >= session.n_ctx()) {
            stats.context_full = true;
            break;
        }
        FERRY_ASSIGN(logits, session.decode(token));
    }
    const std::string rest = decoder.flush();
    if (!rest.empty()) emit(rest);
    stats.generate_ms = ms_since(t0);
    return stats;
}

Result<std::string> template_source(const Params& params, const gguf::File& file) {
    if (!params.chat_template.empty()) return params.chat_template;
    if (!params.chat_template_file.empty()) return read_text_file(params.chat_template_file);
    const gguf::Value* t = file.find("tokenizer.chat_template");
    if (!t || !t->get_string()) return make_error("the model has no chat template; give --chat-template-file");
    return *t->get_string();
}

std::string format_stats(const GenerateStats& s) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "prompt: %d tokens in %.1f ms (%.1f t/s) | generation: %d tokens in %.1f ms (%.1f t/s)", s.n_prompt,
                  s.prompt_ms, s.prompt_ms > 0 ? 1e3 * s.n_prompt / s.prompt_ms : 0.0, s.n_generated, s.generate_ms,
                  s.generate_ms > 0 ? 1e3 * s.n_generated / s.generate_ms : 0.0);
    return buf;
}

}  // namespace ferry::tools
