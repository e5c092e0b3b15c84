// ferry run: complete a prompt and stream the completion to stdout (the prompt is not echoed);
// the load summary and timings go to stderr. Ctrl-C ends generation early.
#include <cstdio>

#include "tools/engine.h"
#include "tools/interrupt.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace {

int fail(const std::string& message) {
    std::fprintf(stderr, "ferry run: %s\n", message.c_str());
    return 1;
}

}  // namespace

int run_run(const Params& params) {
    if (!params.prompt.empty() && !params.prompt_file.empty()) return fail("give the prompt with -p or -f, not both");
    std::string prompt = params.prompt;
    if (!params.prompt_file.empty()) {
        auto text = read_text_file(params.prompt_file);
        if (!text.ok()) return fail(text.error().message);
        prompt = std::move(text).value();
    }
    if (prompt.empty()) return fail("nothing to complete: give -p PROMPT or -f FILE");
    if (const Status st = runtime::validate(params.sampling); !st.ok()) return fail(st.error().message);

    auto engine = load_engine(params, "ferry run");
    if (!engine.ok()) return fail(engine.error().message);
    const auto tokens = engine->vocab->tokenize(prompt, true, true);
    if (!tokens.ok()) return fail(tokens.error().message);
    auto sampler = runtime::Sampler::create(params.sampling, engine->vocab->n_tokens(), engine->session->n_ctx());
    if (!sampler.ok()) return fail(sampler.error().message);

    const GenerateLimits limits{
        .n_predict = params.n_predict, .ignore_eos = params.ignore_eos, .stop = &interrupt_flag()};
    const auto stats = generate(
        *engine, *sampler, *tokens, params, limits,
        [](std::string_view piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        },
        nullptr);
    std::fputs("\n", stdout);
    if (!stats.ok()) return fail(stats.error().message);
    std::fprintf(stderr, "ferry run: %s%s | seed %u\n", format_stats(*stats).c_str(),
                 stats->context_full ? " | stopped: context full"
                 : stats->stopped    ? " | stopped: interrupted"
                                     : "",
                 sampler->seed());
    return 0;
}

}  // namespace ferry::tools
