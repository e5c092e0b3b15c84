#include "server/openai.h"

#include <cmath>
#include <random>

namespace ferry::server {
namespace {

ApiError bad(std::string message) { return api_error(400, std::move(message)); }

// A present, non-null field (OpenAI's clients send null for "not set").
const ordered_json* field(const ordered_json& body, const char* key) {
    const auto it = body.find(key);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<ApiError> get_number(const ordered_json& body, const char* key, double min, double max, float& out) {
    const ordered_json* v = field(body, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) return bad(std::string("'") + key + "' must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < min || d > max)
        return bad(std::string("'") + key + "' must be between " + std::to_string(min) + " and " + std::to_string(max));
    out = float(d);
    return std::nullopt;
}

std::optional<ApiError> get_int(const ordered_json& body, const char* key, int64_t min, int64_t max, int64_t& out) {
    const ordered_json* v = field(body, key);
    if (!v) return std::nullopt;
    int64_t i = 0;
    if (v->is_number_integer()) {
        if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))
            return bad(std::string("'") + key + "' is too large");
        i = v->get<int64_t>();
    } else if (v->is_number_float() && std::isfinite(v->get<double>()) &&
               v->get<double>() == std::floor(v->get<double>()) && std::fabs(v->get<double>()) < 9e15) {
        i = int64_t(v->get<double>());
    } else {
        return bad(std::string("'") + key + "' must be an integer");
    }
    if (i < min || i > max)
        return bad(std::string("'") + key + "' must be between " + std::to_string(min) + " and " + std::to_string(max));
    out = i;
    return std::nullopt;
}

std::optional<ApiError> get_bool(const ordered_json& body, const char* key, bool& out) {
    const ordered_json* v = field(body, key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return bad(std::string("'") + key + "' must be a boolean");
    out = v->get<bool>();
    return std::nullopt;
}

// Message content: a string, null, or an array of {"type": "text", "text": ...} parts.
std::optional<ApiError> content_text(const ordered_json& content, size_t index, std::string& out) {
    if (content.is_null()) return std::nullopt;
    if (content.is_string()) {
        out = content.get<std::string>();
        return std::nullopt;
    }
    if (!content.is_array())
        return bad("messages[" + std::to_string(index) + "].content must be a string or an array of parts");
    for (const ordered_json& part : content) {
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
            return bad("messages[" + std::to_string(index) + "].content parts must be objects with a 'type'");
        if (part["type"] != "text")
            return bad("messages[" + std::to_string(index) + "]: content part type '" +
                       part["type"].get<std::string>() + "' is not supported (text only)");
        if (!part.contains("text") || !part["text"].is_string())
            return bad("messages[" + std::to_string(index) + "]: a text part needs a string 'text'");
        out += part["text"].get<std::string>();
    }
    return std::nullopt;
}

}  // namespace

ordered_json error_body(const ApiError& e) {
    ordered_json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}};
    err["code"] = e.code.empty() ? ordered_json(e.status) : ordered_json(e.code);
    return {{"error", err}};
}

std::optional<ApiError> parse_options(const ordered_json& body, bool chat, const runtime::SamplingParams& defaults,
                                      RequestOptions& out) {
    out.sampling = defaults;
    runtime::SamplingParams& s = out.sampling;
    if (auto e = get_number(body, "temperature", 0, 2, s.temp)) return e;
    if (auto e = get_number(body, "top_p", 0, 1, s.top_p)) return e;
    if (auto e = get_number(body, "min_p", 0, 1, s.min_p)) return e;
    if (auto e = get_number(body, "typical_p", 0, 1, s.typical_p)) return e;
    if (auto e = get_number(body, "presence_penalty", -2, 2, s.presence_penalty)) return e;
    if (auto e = get_number(body, "frequency_penalty", -2, 2, s.frequency_penalty)) return e;
    if (auto e = get_number(body, "repeat_penalty", 0, 10, s.repeat_penalty)) return e;
    if (s.top_p <= 0) s.top_p = 1e-6f;  // OpenAI accepts 0: keep only the most likely token
    if (s.typical_p <= 0) return bad("'typical_p' must be greater than 0");
    if (s.repeat_penalty <= 0) return bad("'repeat_penalty' must be greater than 0");
    int64_t i = 0;
    i = s.top_k;
    if (auto e = get_int(body, "top_k", 0, 1 << 30, i)) return e;
    s.top_k = int32_t(i);
    i = -1;
    if (auto e = get_int(body, "seed", INT64_MIN, INT64_MAX, i)) return e;
    if (field(body, "seed")) s.seed = uint32_t(uint64_t(i));  // -1 = kRandomSeed: a random seed, as in llama.cpp

    const int64_t kMaxTokens = int64_t(1) << 30;
    i = -1;
    if (auto e = get_int(body, "max_tokens", 1, kMaxTokens, i)) return e;
    if (auto e = get_int(body, "max_completion_tokens", 1, kMaxTokens, i)) return e;
    if (auto e = get_int(body, "n_predict", -1, kMaxTokens, i)) return e;  // llama.cpp's name
    if (i == 0) return bad("'n_predict' must be -1 or positive");
    out.max_tokens = int(i);

    i = 1;
    if (auto e = get_int(body, "n", 1, 1 << 30, i)) return e;
    if (i != 1) return bad("'n' must be 1: this server returns one choice per request");

    if (const ordered_json* stop = field(body, "stop")) {
        if (stop->is_string()) {
            out.stop.push_back(stop->get<std::string>());
        } else if (stop->is_array()) {
            if (stop->size() > 16) return bad("'stop' may hold at most 16 strings");
            for (const ordered_json& st : *stop) {
                if (!st.is_string()) return bad("'stop' must be a string or an array of strings");
                out.stop.push_back(st.get<std::string>());
            }
        } else {
            return bad("'stop' must be a string or an array of strings");
        }
        std::erase_if(out.stop, [](const std::string& st) { return st.empty(); });
    }

    if (auto e = get_bool(body, "stream", out.stream)) return e;
    if (const ordered_json* so = field(body, "stream_options")) {
        if (!so->is_object()) return bad("'stream_options' must be an object");
        if (auto e = get_bool(*so, "include_usage", out.include_usage)) return e;
    }
    if (auto e = get_bool(body, "ignore_eos", out.ignore_eos)) return e;
    if (auto e = get_bool(body, "cache_prompt", out.cache_prompt)) return e;

    if (chat) {
        if (auto e = get_bool(body, "logprobs", out.logprobs)) return e;
        i = 0;
        if (auto e = get_int(body, "top_logprobs", 0, 20, i)) return e;
        if (field(body, "top_logprobs") && !out.logprobs) return bad("'top_logprobs' needs 'logprobs': true");
        out.top_logprobs = int(i);
    } else {
        i = -1;
        if (auto e = get_int(body, "logprobs", 0, 5, i)) return e;
        out.logprobs = i >= 0;
        out.top_logprobs = int(std::max<int64_t>(i, 0));
    }
    if (const Status st = runtime::validate(s); !st.ok()) return bad(st.error().message);
    return std::nullopt;
}

std::optional<ApiError> parse_chat_request(const ordered_json& body, ChatRequest& out) {
    const ordered_json* msgs = field(body, "messages");
    if (!msgs) return bad("'messages' is required");
    if (!msgs->is_array() || msgs->empty()) return bad("'messages' must be a non-empty array");
    out.messages = ordered_json::array();
    for (size_t i = 0; i < msgs->size(); ++i) {
        const ordered_json& m = (*msgs)[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) return bad(where + " must be an object");
        if (!m.contains("role") || !m["role"].is_string()) return bad(where + ".role must be a string");
        std::string role = m["role"].get<std::string>();
        if (role == "developer") role = "system";
        if (role != "system" && role != "user" && role != "assistant" && role != "tool")
            return bad(where + ".role '" + role + "' is not one of system, developer, user, assistant, tool");
        ordered_json nm = {{"role", role}};
        std::string text;
        if (auto e = content_text(m.contains("content") ? m["content"] : ordered_json(), i, text)) return e;
        nm["content"] = text;
        if (role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null()) {
            if (!m["tool_calls"].is_array()) return bad(where + ".tool_calls must be an array");
            ordered_json calls = ordered_json::array();
            for (const ordered_json& c : m["tool_calls"]) {
                if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
                    !c["function"].contains("name") || !c["function"]["name"].is_string())
                    return bad(where + ".tool_calls entries need function.name");
                ordered_json fn = {{"name", c["function"]["name"]}};
                // Templates iterate over the arguments (Qwen3.5) or print them (Hermes): pass an object.
                const ordered_json args =
                    c["function"].contains("arguments") ? c["function"]["arguments"] : ordered_json("{}");
                if (args.is_string()) {
                    ordered_json parsed = ordered_json::parse(args.get<std::string>(), nullptr, false);
                    fn["arguments"] = parsed.is_object() ? parsed : args;
                } else if (args.is_object()) {
                    fn["arguments"] = args;
                } else {
                    return bad(where + ".tool_calls[].function.arguments must be a JSON string");
                }
                ordered_json call = {{"type", "function"}, {"function", fn}};
                if (c.contains("id") && c["id"].is_string()) call["id"] = c["id"];
                calls.push_back(call);
            }
            nm["tool_calls"] = calls;
        }
        if (role == "tool") {
            if (m.contains("tool_call_id") && m["tool_call_id"].is_string()) nm["tool_call_id"] = m["tool_call_id"];
            if (m.contains("name") && m["name"].is_string()) nm["name"] = m["name"];
        }
        if (m.contains("reasoning_content") && m["reasoning_content"].is_string())
            nm["reasoning_content"] = m["reasoning_content"];
        out.messages.push_back(std::move(nm));
    }

    out.tools = nullptr;
    if (const ordered_json* tools = field(body, "tools")) {
        if (!tools->is_array()) return bad("'tools' must be an array");
        for (const ordered_json& t : *tools) {
            if (!t.is_object() || !t.contains("function") || !t["function"].is_object() ||
                !t["function"].contains("name") || !t["function"]["name"].is_string())
                return bad("each of 'tools' must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
            if (t.contains("type") && t["type"] != "function") return bad("tools[].type must be \"function\"");
        }
        if (!tools->empty()) out.tools = *tools;
    }
    std::string choice = "auto";
    if (const ordered_json* tc = field(body, "tool_choice")) {
        if (tc->is_string()) {
            choice = tc->get<std::string>();
            if (choice != "auto" && choice != "none" && choice != "required")
                return bad("'tool_choice' must be \"auto\", \"none\", \"required\" or a function object");
        } else if (!tc->is_object()) {
            return bad("'tool_choice' must be a string or an object");
        }
    }
    if (choice == "none") out.tools = nullptr;
    out.parse_tools = !out.tools.is_null();
    return std::nullopt;
}

std::optional<ApiError> parse_completion_prompt(const ordered_json& body, std::string& prompt) {
    const ordered_json* p = field(body, "prompt");
    if (!p) return bad("'prompt' is required");
    if (p->is_string()) {
        prompt = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
        prompt = (*p)[0].get<std::string>();
    } else {
        return bad("'prompt' must be a string (or an array holding one string)");
    }
    return std::nullopt;
}

ordered_json usage_json(const TaskStats& s) {
    return {{"prompt_tokens", s.n_prompt},
            {"completion_tokens", s.n_generated},
            {"total_tokens", s.n_prompt + s.n_generated},
            {"prompt_tokens_details", {{"cached_tokens", s.n_cached}}}};
}

ordered_json timings_json(const TaskStats& s) {
    const int n_computed = s.n_prompt - s.n_cached;
    return {{"cache_n", s.n_cached},
            {"prompt_n", n_computed},
            {"prompt_ms", s.prompt_ms},
            {"prompt_per_second", s.prompt_ms > 0 ? 1e3 * n_computed / s.prompt_ms : 0.0},
            {"predicted_n", s.n_generated},
            {"predicted_ms", s.generate_ms},
            {"predicted_per_second", s.generate_ms > 0 ? 1e3 * s.n_generated / s.generate_ms : 0.0}};
}

namespace {
ordered_json bytes_of(const std::string& s) {
    ordered_json b = ordered_json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
}
}  // namespace

ordered_json chat_logprobs_json(const std::vector<TokenLogprob>& lps) {
    ordered_json content = ordered_json::array();
    for (const TokenLogprob& lp : lps) {
        ordered_json top = ordered_json::array();
        for (const TopLogprob& t : lp.top)
            top.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes_of(t.token)}});
        content.push_back(
            {{"token", lp.token}, {"logprob", lp.logprob}, {"bytes", bytes_of(lp.token)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
}

ordered_json completion_logprobs_json(const std::vector<TokenLogprob>& lps) {
    ordered_json tokens = ordered_json::array(), token_lps = ordered_json::array(), tops = ordered_json::array();
    for (const TokenLogprob& lp : lps) {
        tokens.push_back(lp.token);
        token_lps.push_back(lp.logprob);
        ordered_json top = ordered_json::object();
        for (const TopLogprob& t : lp.top) top[t.token] = t.logprob;
        tops.push_back(top);
    }
    return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}};
}

ordered_json tool_call_json(const ToolCall& c) {
    return {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
}

ordered_json tool_call_delta_json(const ToolCallDelta& d) {
    ordered_json j = {{"index", d.index}};
    if (!d.id.empty()) {
        j["id"] = d.id;
        j["type"] = "function";
        j["function"] = {{"name", d.name}, {"arguments", d.arguments}};
    } else {
        j["function"] = {{"arguments", d.arguments}};
    }
    return j;
}

std::string random_id(std::string_view prefix) {
    static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string id(prefix);
    for (int i = 0; i < 29; ++i) id += kAlnum[rng() % (sizeof kAlnum - 1)];
    return id;
}

}  // namespace ferry::server
