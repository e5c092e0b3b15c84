// ferry chat: an interactive conversation in the terminal, formatted by the model's chat template.
//
// Each turn renders the whole history through the template and reuses the KV cache for the part of
// the prompt the cache already holds (the longest common token prefix), so a turn costs only its new
// tokens. Commands: /exit (or Ctrl-D) quits, /clear starts over. Ctrl-C stops the current answer.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "text/jinja/template.h"
#include "tools/engine.h"
#include "tools/interrupt.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace {

using nlohmann::ordered_json;

int fail(const std::string& message) {
    std::fprintf(stderr, "ferry chat: %s\n", message.c_str());
    return 1;
}

// The Ops-level state of the conversation: what the KV cache holds.
struct Conversation {
    ordered_json messages = ordered_json::array();
    std::vector<int32_t> cached;  // tokens whose K/V the session holds, in order
};

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
}

}  // namespace

int run_chat(const Params& params) {
    if (const Status st = runtime::validate(params.sampling); !st.ok()) return fail(st.error().message);
    auto engine = load_engine(params, "ferry chat");
    if (!engine.ok()) return fail(engine.error().message);
    const auto source = template_source(params, *engine->file);
    if (!source.ok()) return fail(source.error().message);
    const auto tmpl = text::Template::parse(*source);
    if (!tmpl.ok()) return fail(tmpl.error().message);
    ordered_json kwargs = ordered_json::object();
    if (!params.chat_template_kwargs.empty()) {
        kwargs = ordered_json::parse(params.chat_template_kwargs, nullptr, false);
        if (!kwargs.is_object()) return fail("--chat-template-kwargs: expected a JSON object");
    }
    auto sampler = runtime::Sampler::create(params.sampling, engine->vocab->n_tokens(), engine->session->n_ctx());
    if (!sampler.ok()) return fail(sampler.error().message);
    const text::Vocab& vocab = *engine->vocab;

    Conversation conv;
    if (!params.system_prompt.empty()) conv.messages.push_back({{"role", "system"}, {"content", params.system_prompt}});
    std::atomic<bool>& stop = interrupt_flag();
    std::fprintf(stderr,
                 "ferry chat: type a message; /exit or Ctrl-D quits, /clear starts over, Ctrl-C stops an answer\n");

    while (true) {
        std::fputs("\n> ", stdout);
        std::fflush(stdout);
        stop.store(false);
        std::string line;
        if (!std::getline(std::cin, line)) {
            if (stop.load() && !std::cin.eof()) {  // Ctrl-C at the prompt: keep going
                std::cin.clear();
                std::fputs("\n(/exit or Ctrl-D quits)", stdout);
                continue;
            }
            std::fputs("\n", stdout);
            return 0;
        }
        if (line == "/exit" || line == "/quit") return 0;
        if (line == "/clear") {
            conv = Conversation{};
            if (!params.system_prompt.empty())
                conv.messages.push_back({{"role", "system"}, {"content", params.system_prompt}});
            engine->session->clear();
            sampler->reset();
            std::fputs("(conversation cleared)", stdout);
            continue;
        }
        if (line.empty()) continue;
        conv.messages.push_back({{"role", "user"}, {"content", line}});

        text::ChatTemplateInputs in;
        in.messages = conv.messages;
        in.add_generation_prompt = true;
        in.extra_kwargs = kwargs;
        if (vocab.bos() != text::kNoToken) in.bos_token = vocab.token_to_piece(vocab.bos(), true).value();
        if (vocab.eos() != text::kNoToken) in.eos_token = vocab.token_to_piece(vocab.eos(), true).value();
        const auto prompt = text::apply_chat_template(*tmpl, in);
        if (!prompt.ok()) return fail(prompt.error().message);
        // BOS as the vocab asks, unless the template already wrote it.
        const bool templated_bos = in.bos_token && !in.bos_token->empty() && prompt->starts_with(*in.bos_token);
        auto tokens = vocab.tokenize(*prompt, !templated_bos, true);
        if (!tokens.ok()) return fail(tokens.error().message);

        // Reuse the cached prefix; always recompute at least the last token for fresh logits.
        const size_t keep = std::min(common_prefix(conv.cached, *tokens), tokens->size() - 1);
        if (const Status st = engine->session->truncate(int64_t(keep)); !st.ok()) return fail(st.error().message);
        conv.cached.assign(tokens->begin(), tokens->end());

        std::string answer;
        std::vector<int32_t> generated;
        const GenerateLimits limits{.n_predict = params.n_predict, .stop = &stop};
        const auto stats = generate(
            *engine, *sampler, std::span<const int32_t>(*tokens).subspan(keep), params, limits,
            [&](std::string_view piece) {
                answer += piece;
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            },
            &generated);
        if (!stats.ok()) {
            std::fprintf(stderr, "\nferry chat: %s\n", stats.error().message.c_str());
            conv.messages.erase(conv.messages.end() - 1);
            engine->session->clear();
            conv.cached.clear();
            continue;
        }
        conv.cached.insert(conv.cached.end(), generated.begin(), generated.end());
        conv.cached.resize(size_t(engine->session->n_past()));  // the last token is not decoded when the context fills
        if (stats->stopped) std::fputs(" [stopped]", stdout);
        std::fprintf(stderr, "\n(%s, %d cached)\n", format_stats(*stats).c_str(), int(keep));
        conv.messages.push_back({{"role", "assistant"}, {"content", answer}});
    }
}

}  // namespace ferry::tools
