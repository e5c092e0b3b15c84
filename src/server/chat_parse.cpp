#include "server/chat_parse.h"

#include <nlohmann/json.hpp>
#include <random>

namespace ferry::server {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kCallOpen = "<tool_call>";
constexpr std::string_view kCallClose = "</tool_call>";

std::string_view trim(std::string_view s) {
    const auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

// Length of the longest suffix of `text` that is a proper prefix of one of `tags`.
size_t partial_tag_suffix(std::string_view text, std::initializer_list<std::string_view> tags) {
    size_t best = 0;
    for (std::string_view tag : tags) {
        for (size_t n = std::min(text.size(), tag.size() - 1); n > best; --n) {
            if (text.substr(text.size() - n) == tag.substr(0, n)) {
                best = n;
                break;
            }
        }
    }
    return best;
}

bool parse_json_call(std::string_view body, ToolCall& call) {
    const ordered_json j = ordered_json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
    call.name = j["name"].get<std::string>();
    const ordered_json* args = nullptr;
    if (j.contains("arguments"))
        args = &j["arguments"];
    else if (j.contains("parameters"))
        args = &j["parameters"];
    if (args == nullptr || args->is_null()) {
        call.arguments = "{}";
    } else if (args->is_string()) {
        call.arguments = args->get<std::string>();
    } else if (args->is_object()) {
        call.arguments = args->dump();
    } else {
        return false;
    }
    return !call.name.empty();
}

// <function=NAME> (<parameter=P> VALUE </parameter>)* </function>
bool parse_xml_call(std::string_view body, ToolCall& call) {
    constexpr std::string_view kFn = "<function=", kFnEnd = "</function>",
                               kParam = "<parameter=", kParamEnd = "</parameter>";
    if (!body.starts_with(kFn)) return false;
    size_t gt = body.find('>');
    if (gt == std::string_view::npos) return false;
    call.name = std::string(trim(body.substr(kFn.size(), gt - kFn.size())));
    if (call.name.empty()) return false;
    std::string_view rest = body.substr(gt + 1);
    ordered_json args = ordered_json::object();
    while (true) {
        rest = trim(rest);
        if (rest.starts_with(kFnEnd)) {
            if (!trim(rest.substr(kFnEnd.size())).empty()) return false;
            break;
        }
        if (!rest.starts_with(kParam)) return false;
        gt = rest.find('>');
        if (gt == std::string_view::npos) return false;
        const std::string key(trim(rest.substr(kParam.size(), gt - kParam.size())));
        const size_t end = rest.find(kParamEnd, gt + 1);
        if (key.empty() || end == std::string_view::npos) return false;
        std::string_view value = rest.substr(gt + 1, end - gt - 1);
        if (value.starts_with('\n')) value.remove_prefix(1);
        if (value.ends_with('\n')) value.remove_suffix(1);
        ordered_json parsed = ordered_json::parse(value, nullptr, false);
        args[key] = parsed.is_discarded() ? ordered_json(std::string(value)) : std::move(parsed);
        rest = rest.substr(end + kParamEnd.size());
    }
    call.arguments = args.dump();
    return true;
}

std::string random_call_id() {
    static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string id = "call_";
    for (int i = 0; i < 24; ++i) id += kAlnum[rng() % (sizeof kAlnum - 1)];
    return id;
}

}  // namespace

bool parse_tool_call_body(std::string_view body, ToolCall& call) {
    body = trim(body);
    return body.starts_with('{') ? parse_json_call(body, call) : parse_xml_call(body, call);
}

bool prompt_opens_reasoning(std::string_view prompt) { return trim(prompt).ends_with(kThinkOpen); }

ChatParser::ChatParser(bool parse_tools, bool in_reasoning)
    : parse_tools_(parse_tools), mode_(in_reasoning ? Mode::Reasoning : Mode::Content) {}

void ChatParser::emit(ChatDelta& d, std::string_view text) {
    if (text.empty()) return;
    if (mode_ == Mode::Reasoning) {
        d.reasoning += text;
        reasoning_ += text;
    } else {
        d.content += text;
        content_ += text;
    }
}

ChatDelta ChatParser::push(std::string_view text) {
    ChatDelta d;
    pending_ += text;
    while (!pending_.empty()) {
        if (mode_ == Mode::ToolCall) {
            const size_t end = pending_.find(kCallClose);
            if (end == std::string::npos) break;  // the whole call is needed before it can be parsed
            ToolCall call;
            const std::string_view body = std::string_view(pending_).substr(kCallOpen.size(), end - kCallOpen.size());
            if (parse_tool_call_body(body, call)) {
                call.id = random_call_id();
                calls_.push_back(call);
                d.tool_calls.push_back(std::move(call));
            } else {
                mode_ = Mode::Content;
                emit(d, std::string_view(pending_).substr(0, end + kCallClose.size()));
            }
            mode_ = Mode::Content;
            pending_.erase(0, end + kCallClose.size());
            continue;
        }
        // Content or reasoning: look for the next tag that changes the mode.
        const bool reasoning = mode_ == Mode::Reasoning;
        size_t at = std::string::npos;
        std::string_view tag;
        const auto consider = [&](std::string_view t) {
            const size_t p = pending_.find(t);
            if (p < at) at = p, tag = t;
        };
        if (reasoning) {
            consider(kThinkClose);
        } else {
            consider(kThinkOpen);
            if (parse_tools_) consider(kCallOpen);
        }
        if (at == std::string::npos) {
            const size_t hold = reasoning      ? partial_tag_suffix(pending_, {kThinkClose})
                                : parse_tools_ ? partial_tag_suffix(pending_, {kThinkOpen, kCallOpen})
                                               : partial_tag_suffix(pending_, {kThinkOpen});
            emit(d, std::string_view(pending_).substr(0, pending_.size() - hold));
            pending_.erase(0, pending_.size() - hold);
            break;
        }
        emit(d, std::string_view(pending_).substr(0, at));
        if (tag == kCallOpen) {
            mode_ = Mode::ToolCall;
            pending_.erase(0, at);  // keep the opening tag: a call that fails to parse is content again
        } else {
            mode_ = tag == kThinkOpen ? Mode::Reasoning : Mode::Content;
            pending_.erase(0, at + tag.size());
        }
    }
    return d;
}

ChatDelta ChatParser::finish() {
    ChatDelta d;
    if (mode_ == Mode::ToolCall) mode_ = Mode::Content;
    emit(d, pending_);
    pending_.clear();
    return d;
}

}  // namespace ferry::server
