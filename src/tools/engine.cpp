#include "tools/engine.h"

#include <unistd.h>

#include <algorithm>
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

std::string mib(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1 << 20));
    return buf;
}

// "llama, 134.52 M params, Q4_1 69% + Q8_0 31%, 92.1 MiB"; a mixture of experts also gets the
// parameters one token uses: "qwen3moe, 30.53 B params (3.35 B active, 8 of 128 experts), ...".
std::string describe_weights(const gguf::File& file, const std::string& arch) {
    const gguf::Value* ne = file.find(arch + ".expert_count");
    const gguf::Value* nu = file.find(arch + ".expert_used_count");
    const uint64_t n_expert = ne && ne->get_uint() ? *ne->get_uint() : 0;
    const uint64_t n_used = nu && nu->get_uint() ? std::min(*nu->get_uint(), n_expert) : 0;
    uint64_t params = 0, bytes = 0, routed = 0;
    std::map<std::string, uint64_t> by_type;
    for (const gguf::TensorInfo& t : file.tensors()) {
        params += uint64_t(t.n_elements());
        bytes += t.size;
        by_type[std::string(type_name(t.type))] += t.size;
        if (n_expert > 1 && t.name.find("_exps") != std::string::npos && uint64_t(t.ne[2]) == n_expert)
            routed += uint64_t(t.n_elements());
    }
    auto count = [](uint64_t n) {
        char buf[32];
        if (n >= 1000000000)
            std::snprintf(buf, sizeof buf, "%.2f B", double(n) / 1e9);
        else
            std::snprintf(buf, sizeof buf, "%.2f M", double(n) / 1e6);
        return std::string(buf);
    };
    std::string what = count(params) + " params";
    if (routed > 0) {
        what += " (" + count(params - routed + routed / n_expert * n_used) + " active, " + std::to_string(n_used) +
                " of " + std::to_string(n_expert) + " experts)";
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
    std::snprintf(buf, sizeof buf, "%s, %s, %s, %.1f MiB", arch.c_str(), what.c_str(), types.c_str(),
                  double(bytes) / (1 << 20));
    return buf;
}

}  // namespace

runtime::SessionParams session_params(const Params& params, int64_t n_ctx) {
    runtime::SessionParams sp;
    sp.n_ctx = n_ctx;
    sp.n_ubatch = params.n_ubatch;
    sp.kv_type_k = params.cache_type_k;
    sp.kv_type_v = params.cache_type_v;
    sp.flash_attn = params.flash_attn != "off";  // auto = on, as llama.cpp decides on a CPU
    return sp;
}

Result<Engine> load_engine(const Params& params, const char* tool, int64_t n_ctx_session) {
    Engine e;
    FERRY_ASSIGN(e.path, resolve_model(params));
    const auto t0 = std::chrono::steady_clock::now();
    const auto mode = params.no_mmap ? FileData::Mode::Read : FileData::Mode::Mmap;
    // Reading a file into memory that takes over a second shows its progress (on one updated line on a
    // terminal, else a line per quarter).
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    int shown = -1;
    const FileData::Progress progress = [&](uint64_t done, uint64_t total) {
        if (ms_since(t0) < 1000.0) return;
        const int pct = int(100 * done / total);
        if (tty ? pct == shown : pct / 25 == shown / 25 && shown >= 0) return;
        shown = pct;
        std::fprintf(stderr,
                     tty ? "\r%s: reading %s: %3d%% (%.0f / %.0f MiB)%s" : "%s: reading %s: %d%% (%.0f / %.0f MiB)%s\n",
                     tool, e.path.c_str(), pct, double(done) / (1 << 20), double(total) / (1 << 20),
                     tty && done == total ? "\n" : "");
    };
    FERRY_ASSIGN(FileData data, FileData::open(e.path, mode, progress));
    FERRY_ASSIGN(gguf::File file, gguf::File::parse(std::move(data)));
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
    const runtime::SessionParams sp = session_params(params, n_ctx_session > 0 ? n_ctx_session : params.ctx_size);
    if (n_ctx_session >= 0) {
        FERRY_ASSIGN(runtime::Session session, runtime::Session::create(*e.model, *e.ops, sp));
        e.session = std::make_unique<runtime::Session>(std::move(session));
    }

    const int threads = *kind == backend::BackendKind::Reference ? 1
                        : params.threads > 0                     ? params.threads
                                                                 : physical_cores();
    // Without a session (serve makes one per slot), the figures are for one sequence of -c tokens.
    const int64_t n_ctx = e.session             ? e.session->n_ctx()
                          : params.ctx_size > 0 ? params.ctx_size
                                                : e.model->info().n_ctx_train;
    const runtime::MemoryUse mem = e.session
                                       ? e.session->memory()
                                       : runtime::memory_use(*e.model, n_ctx, params.cache_type_k, params.cache_type_v);
    std::string memory = "KV " + mib(mem.kv_bytes);
    if (mem.n_state_layers > 0) memory += " + recurrent state " + mib(mem.state_bytes);
    std::fprintf(stderr,
                 "%s: %s | %s | ctx %" PRId64 ", KV %s/%s, %s | backend %s, %d thread%s | loaded in %.0f ms (%s)\n",
                 tool, e.path.c_str(), describe_weights(*e.file, e.model->info().arch).c_str(), n_ctx,
                 std::string(type_name(params.cache_type_k)).c_str(),
                 std::string(type_name(params.cache_type_v)).c_str(), memory.c_str(), backend::backend_name(*kind),
                 threads, threads == 1 ? "" : "s", ms_since(t0), params.no_mmap ? "read into memory" : "mmap");
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
