// What `run` and `chat` share: loading a model with its tokenizer, backend and session, and
// generating a stream of tokens from it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "runtime/sampling.h"
#include "runtime/session.h"
#include "text/tokenizer/vocab.h"
#include "tools/params.h"

namespace ferry::tools {

// A model ready to generate. Members are declared in dependency order (the file outlives the
// model, which outlives the session).
struct Engine {
    std::unique_ptr<gguf::File> file;
    std::unique_ptr<model::Model> model;
    std::unique_ptr<text::Vocab> vocab;
    std::unique_ptr<backend::Ops> ops;
    std::unique_ptr<runtime::Session> session;
    std::string path;
};

// Loads the model named by params (or the default one) and prints a one-line summary on stderr.
// n_ctx_session: the session's context (0 = -c, or the model's trained context); -1 = no session
// (the caller makes its own, as `serve` does per slot).
Result<Engine> load_engine(const Params& params, const char* tool, int64_t n_ctx_session = 0);

// A session of n_ctx cells with the command line's -ub, -ctk/-ctv and -fa.
runtime::SessionParams session_params(const Params& params, int64_t n_ctx);

// The chat template: --chat-template, else --chat-template-file, else the model's
// tokenizer.chat_template (an error if there is none).
Result<std::string> template_source(const Params& params, const gguf::File& file);

struct GenerateLimits {
    int n_predict = -1;  // -1: until end of generation or a full context
    bool ignore_eos = false;
    const std::atomic<bool>* stop = nullptr;  // set (e.g. by Ctrl-C) to end early
};

struct GenerateStats {
    int n_prompt = 0;
    int n_generated = 0;
    double prompt_ms = 0;
    double generate_ms = 0;
    bool hit_eog = false;
    bool context_full = false;
    bool stopped = false;
};

// Appends prompt tokens to the session (in -b sized calls), then samples and decodes until a limit;
// each piece of text is passed to `emit` as soon as it is complete UTF-8. Generated tokens are
// appended to `generated` (the end-of-generation token is not).
Result<GenerateStats> generate(Engine& engine, runtime::Sampler& sampler, std::span<const int32_t> prompt,
                               const Params& params, const GenerateLimits& limits,
                               const std::function<void(std::string_view)>& emit, std::vector<int32_t>* generated);

// "prompt: 12 tokens in 30.5 ms (393.4 t/s) | generation: 64 tokens in 812.0 ms (78.8 t/s)"
std::string format_stats(const GenerateStats& stats);

}  // namespace ferry::tools
