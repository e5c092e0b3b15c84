// ferry template: the exact prompt a chat template makes of a conversation, as transformers'
// apply_chat_template(tokenize=False) would render it. Prints the bytes and nothing else.
#include "text/jinja/template.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "gguf/reader.h"
#include "text/tokenizer/vocab.h"
#include "tools/model_path.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace {

using nlohmann::ordered_json;

int fail(const std::string& message) {
    std::fprintf(stderr, "ferry template: %s\n", message.c_str());
    return 1;
}

Result<ordered_json> parse_json(const std::string& text, const std::string& what) {
    try {
        return ordered_json::parse(text);
    } catch (const ordered_json::exception& e) {
        return make_error(what + ": invalid JSON: " + e.what());
    }
}

Result<ordered_json> json_file(const std::string& path, const std::string& what) {
    FERRY_ASSIGN(std::string text, read_text_file(path));
    return parse_json(text, what + " '" + path + "'");
}

struct ModelTemplate {
    std::string source;
    std::optional<std::string> bos, eos;
};

// The model's chat template and the text of its BOS/EOS tokens.
Result<ModelTemplate> from_model(const Params& params) {
    FERRY_ASSIGN(const std::string path, resolve_model(params));
    FERRY_ASSIGN(const gguf::File file,
                 gguf::File::open(path, params.no_mmap ? FileData::Mode::Read : FileData::Mode::Mmap));
    ModelTemplate out;
    if (const gguf::Value* t = file.find("tokenizer.chat_template"); t && t->get_string())
        out.source = *t->get_string();
    if (file.find("tokenizer.ggml.model")) {
        FERRY_ASSIGN(const text::Vocab vocab, text::Vocab::from_gguf(file));
        if (vocab.bos() != text::kNoToken) {
            FERRY_ASSIGN(out.bos, vocab.token_to_piece(vocab.bos(), true));
        }
        if (vocab.eos() != text::kNoToken) {
            FERRY_ASSIGN(out.eos, vocab.token_to_piece(vocab.eos(), true));
        }
    }
    return out;
}

Result<text::ChatTemplateInputs> inputs(const Params& params) {
    text::ChatTemplateInputs in;
    in.add_generation_prompt = params.add_generation_prompt;
    if (params.messages_file.empty()) return make_error("give the conversation with --messages FILE.json");
    FERRY_ASSIGN(ordered_json messages, json_file(params.messages_file, "--messages"));
    if (messages.is_object() && messages.contains("messages")) {
        if (messages.contains("tools")) in.tools = messages["tools"];
        messages = ordered_json(messages["messages"]);
    }
    if (!messages.is_array()) return make_error("--messages: expected a JSON array of messages");
    in.messages = std::move(messages);
    if (!params.tools_file.empty()) {
        FERRY_ASSIGN(in.tools, json_file(params.tools_file, "--tools"));
        if (!in.tools.is_array() && !in.tools.is_null()) return make_error("--tools: expected a JSON array");
    }
    if (!params.special_tokens.empty()) {
        FERRY_ASSIGN(const ordered_json special, parse_json(params.special_tokens, "--special-tokens"));
        if (!special.is_object()) return make_error("--special-tokens: expected a JSON object");
        for (const auto& [key, value] : special.items()) {
            if (!value.is_string()) return make_error("--special-tokens: '" + key + "' must be a string");
            if (key == "bos_token")
                in.bos_token = value.get<std::string>();
            else if (key == "eos_token")
                in.eos_token = value.get<std::string>();
            else
                in.extra_kwargs[key] = value;
        }
    }
    if (!params.chat_template_kwargs.empty()) {
        FERRY_ASSIGN(const ordered_json kwargs, parse_json(params.chat_template_kwargs, "--chat-template-kwargs"));
        if (!kwargs.is_object()) return make_error("--chat-template-kwargs: expected a JSON object");
        for (const auto& [key, value] : kwargs.items()) in.extra_kwargs[key] = value;
    }
    return in;
}

// "YYYY-MM-DD[ HH:MM[:SS]]" (or with a T) as a local time.
Result<std::tm> parse_time(const std::string& text) {
    std::tm tm{};
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    char sep = ' ';
    const int n =
        std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &year, &month, &day, &sep, &hour, &minute, &second);
    const bool shape = n == 3 || ((n == 6 || n == 7) && (sep == ' ' || sep == 'T'));
    if (!shape || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return make_error("--template-now: expected \"YYYY-MM-DD[ HH:MM[:SS]]\", got '" + text + "'");
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    std::tm normalized = tm;
    std::mktime(&normalized);  // fills in the weekday and day of the year for %a, %j ...
    normalized.tm_isdst = 0;
    return normalized;
}

}  // namespace

int run_template(const Params& params) {
    if (!params.chat_template.empty() && !params.chat_template_file.empty())
        return fail("give --chat-template or --chat-template-file, not both");
    auto in = inputs(params);
    if (!in.ok()) return fail(in.error().message);

    std::string source = params.chat_template;
    if (!params.chat_template_file.empty()) {
        auto text = read_text_file(params.chat_template_file);
        if (!text.ok()) return fail(text.error().message);
        source = std::move(text).value();
    }
    // The model supplies the template unless one is given, and the special tokens whenever it
    // is named (--special-tokens still wins).
    if (source.empty() || !params.model.empty()) {
        auto model = from_model(params);
        if (!model.ok()) return fail(model.error().message);
        if (source.empty()) source = model->source;
        if (source.empty()) return fail("the model has no tokenizer.chat_template; give --chat-template-file");
        if (!in->bos_token) in->bos_token = model->bos;
        if (!in->eos_token) in->eos_token = model->eos;
    }

    const auto tmpl = text::Template::parse(source);
    if (!tmpl.ok()) return fail(tmpl.error().message);
    text::RenderOptions options;
    if (!params.template_now.empty()) {
        const auto now = parse_time(params.template_now);
        if (!now.ok()) return fail(now.error().message);
        options.clock = [tm = *now] { return tm; };
    }
    const auto rendered = text::apply_chat_template(*tmpl, *in, options);
    if (!rendered.ok()) return fail(rendered.error().message);
    std::fwrite(rendered->data(), 1, rendered->size(), stdout);
    return 0;
}

}  // namespace ferry::tools
