#include "server/chat_parse.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

namespace ferry::server {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kCallOpen = "<tool_call>";
constexpr std::string_view kCallClose = "</tool_call>";
constexpr std::string_view kFn = "<function=", kFnEnd = "</function>",
                           kParam = "<parameter=", kParamEnd = "</parameter>", kValueEnd = "\n</parameter>";
constexpr size_t kMaxHeader = 256;  // longest function name / header waited for before giving up on streaming

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

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

// An XML parameter's value as JSON text: itself when it parses as JSON, else a string.
std::string xml_value_json(std::string_view value) {
    const ordered_json parsed = ordered_json::parse(value, nullptr, false);
    if (parsed.is_discarded()) return "\"" + json_escape(value) + "\"";
    return parsed.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// <function=NAME> (<parameter=P> VALUE </parameter>)* </function>
bool parse_xml_call(std::string_view body, ToolCall& call) {
    if (!body.starts_with(kFn)) return false;
    size_t gt = body.find('>');
    if (gt == std::string_view::npos) return false;
    call.name = std::string(trim(body.substr(kFn.size(), gt - kFn.size())));
    if (call.name.empty()) return false;
    std::string_view rest = body.substr(gt + 1);
    std::string args;  // built as the streaming parser builds it
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
        args += (args.empty() ? "{\"" : ",\"") + json_escape(key) + "\":" + xml_value_json(value);
        rest = rest.substr(end + kParamEnd.size());
    }
    call.arguments = args.empty() ? "{}" : args + "}";
    return true;
}

// How much of a <tool_call> body settles its shape.
struct Header {
    enum Kind { NeedMore, NoMatch, Json, Xml } kind = NeedMore;
    std::string name;
    size_t consumed = 0;  // the header's length: the arguments (JSON) or parameters (XML) follow
};

Header match_header(std::string_view s) {
    size_t i = 0;
    const auto skip_ws = [&] {
        while (i < s.size() && is_ws(s[i])) ++i;
    };
    // 1: matched (and consumed), 0: the text ends inside `w`, -1: something else.
    const auto lit = [&](std::string_view w) {
        const size_t n = std::min(w.size(), s.size() - i);
        if (s.substr(i, n) != w.substr(0, n)) return -1;
        if (n < w.size()) return 0;
        i += w.size();
        return 1;
    };
    const Header need{Header::NeedMore, {}, 0}, no{Header::NoMatch, {}, 0};
    if (s.size() > kMaxHeader + 64) return no;
    skip_ws();
    if (i == s.size()) return need;
    if (s[i] == '<') {
        if (const int r = lit(kFn); r <= 0) return r == 0 ? need : no;
        const size_t gt = s.find('>', i);
        if (gt == std::string_view::npos) return s.size() - i > kMaxHeader ? no : need;
        const std::string_view name = trim(s.substr(i, gt - i));
        if (name.empty() || name.find_first_of("<\n") != std::string_view::npos) return no;
        return {Header::Xml, std::string(name), gt + 1};
    }
    const auto step = [&](std::string_view w) {
        skip_ws();
        return lit(w);
    };
    for (std::string_view w : {"{", "\"name\"", ":"}) {
        if (const int r = step(w); r <= 0) return r == 0 ? need : no;
    }
    skip_ws();
    if (i == s.size()) return need;
    if (s[i] != '"') return no;
    size_t j = i + 1;
    for (bool esc = false; j < s.size(); ++j) {
        if (esc) {
            esc = false;
        } else if (s[j] == '\\') {
            esc = true;
        } else if (s[j] == '"') {
            break;
        }
    }
    if (j == s.size()) return need;
    const ordered_json name = ordered_json::parse(s.substr(i, j + 1 - i), nullptr, false);
    if (!name.is_string() || name.get<std::string>().empty()) return no;
    i = j + 1;
    if (const int r = step(","); r <= 0) return r == 0 ? need : no;
    skip_ws();
    int r = lit("\"arguments\"");
    if (r < 0) r = lit("\"parameters\"");
    if (r <= 0) return r == 0 ? need : no;
    if (r = step(":"); r <= 0) return r == 0 ? need : no;
    skip_ws();
    if (i == s.size()) return need;
    if (s[i] != '{') return no;  // a string or null: parsed whole when the call closes
    return {Header::Json, name.get<std::string>(), i};
}

// Bytes at the end of `s` that begin a UTF-8 character not yet complete.
size_t incomplete_utf8_tail(std::string_view s) {
    for (size_t back = 1; back <= std::min<size_t>(3, s.size()); ++back) {
        const auto c = static_cast<unsigned char>(s[s.size() - back]);
        if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
        const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

std::string random_call_id() {
    static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string id = "call_";
    for (int i = 0; i < 24; ++i) id += kAlnum[rng() % (sizeof kAlnum - 1)];
    return id;
}

}  // namespace

std::string json_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out;
}

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

void ChatParser::commit(ChatDelta& d, std::string name) {
    calls_.push_back({.id = random_call_id(), .name = std::move(name), .arguments = {}});
    d.tool_calls.push_back(
        {.index = calls_.size() - 1, .id = calls_.back().id, .name = calls_.back().name, .arguments = {}});
}

void ChatParser::add_arguments(ChatDelta& d, std::string_view text) {
    if (text.empty()) return;
    calls_.back().arguments += text;
    if (d.tool_calls.empty() || d.tool_calls.back().index != calls_.size() - 1) {
        d.tool_calls.push_back({.index = calls_.size() - 1, .id = {}, .name = {}, .arguments = {}});
    }
    d.tool_calls.back().arguments += text;
}

// pending_ starts with <tool_call>: commit the call once its header settles, or parse it whole.
bool ChatParser::step_tool_call(ChatDelta& d) {
    const std::string_view body = std::string_view(pending_).substr(kCallOpen.size());
    if (!whole_block_) {
        Header h = match_header(body);
        if (h.kind == Header::Json || h.kind == Header::Xml) {
            commit(d, std::move(h.name));
            pending_.erase(0, kCallOpen.size() + h.consumed);
            mode_ = h.kind == Header::Json ? Mode::JsonArgs : Mode::XmlParams;
            json_depth_ = 0;
            json_in_string_ = json_escape_ = false;
            n_params_ = 0;
            return true;
        }
        whole_block_ = h.kind == Header::NoMatch;
    }
    const size_t end = pending_.find(kCallClose);
    if (end == std::string::npos) return false;  // the whole call is needed before it can be parsed
    ToolCall call;
    if (parse_tool_call_body(body.substr(0, end - kCallOpen.size()), call)) {
        commit(d, std::move(call.name));
        add_arguments(d, call.arguments);
    } else {
        mode_ = Mode::Content;
        emit(d, std::string_view(pending_).substr(0, end + kCallClose.size()));
    }
    mode_ = Mode::Content;
    whole_block_ = false;
    pending_.erase(0, end + kCallClose.size());
    return true;
}

// The arguments object as written, up to its closing brace (or a </tool_call> outside a string).
bool ChatParser::step_json_args(ChatDelta& d) {
    size_t i = 0;
    bool more = true;
    for (; i < pending_.size(); ++i) {
        const char c = pending_[i];
        if (json_in_string_) {
            if (json_escape_) {
                json_escape_ = false;
            } else if (c == '\\') {
                json_escape_ = true;
            } else if (c == '"') {
                json_in_string_ = false;
            }
        } else if (c == '"') {
            json_in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++json_depth_;
        } else if (c == '}' || c == ']') {
            if (--json_depth_ <= 0) {
                ++i;
                mode_ = Mode::CallTail;
                break;
            }
        } else if (c == '<') {
            const std::string_view rest = std::string_view(pending_).substr(i);
            if (rest.starts_with(kCallClose)) {  // the object never closed
                mode_ = Mode::CallTail;
                break;
            }
            if (kCallClose.starts_with(rest)) {
                more = false;
                break;
            }
        }
    }
    add_arguments(d, std::string_view(pending_).substr(0, i));
    pending_.erase(0, i);
    return more && mode_ != Mode::JsonArgs;
}

bool ChatParser::step_xml_params(ChatDelta& d) {
    size_t ws = 0;
    while (ws < pending_.size() && is_ws(pending_[ws])) ++ws;
    pending_.erase(0, ws);
    const std::string_view p = pending_;
    if (p.empty()) return false;
    if (p.starts_with(kParam)) {
        const size_t gt = p.find('>');
        if (gt == std::string_view::npos) return false;
        const std::string_view key = trim(p.substr(kParam.size(), gt - kParam.size()));
        add_arguments(d, (n_params_++ == 0 ? "{\"" : ",\"") + json_escape(key) + "\":");
        pending_.erase(0, gt + 1);
        mode_ = Mode::XmlValue;
        value_started_ = value_decided_ = value_is_string_ = false;
        return true;
    }
    if (p.starts_with(kFnEnd) || p.starts_with(kCallClose)) {
        add_arguments(d, n_params_ == 0 ? "{}" : "}");
        if (p.starts_with(kFnEnd)) pending_.erase(0, kFnEnd.size());
        mode_ = Mode::CallTail;
        return true;
    }
    for (std::string_view tag : {kParam, kFnEnd, kCallClose}) {
        if (tag.starts_with(p)) return false;  // the start of a tag
    }
    // Anything else between parameters is dropped, up to the next tag.
    const size_t lt = p.find('<', 1);
    pending_.erase(0, lt == std::string_view::npos ? p.size() : lt);
    return true;
}

bool ChatParser::step_xml_value(ChatDelta& d) {
    if (!value_started_) {  // one newline after <parameter=P> belongs to the markup
        if (pending_.empty()) return false;
        if (pending_[0] == '\n') pending_.erase(0, 1);
        value_started_ = true;
    }
    if (!value_decided_) {
        if (pending_.empty()) return false;
        const char c = pending_[0];
        value_is_string_ = std::string_view("{[\"-0123456789tfn").find(c) == std::string_view::npos && !is_ws(c);
        value_decided_ = true;
        if (value_is_string_) add_arguments(d, "\"");
    }
    const size_t end = pending_.find(kParamEnd);
    if (end != std::string::npos) {
        std::string_view value = std::string_view(pending_).substr(0, end);
        if (value.ends_with('\n')) value.remove_suffix(1);
        add_arguments(d, value_is_string_ ? json_escape(value) + "\"" : xml_value_json(value));
        pending_.erase(0, end + kParamEnd.size());
        mode_ = Mode::XmlParams;
        return true;
    }
    if (value_is_string_) {  // stream what cannot be the start of "\n</parameter>" or of a UTF-8 character
        std::string_view ready = pending_;
        ready.remove_suffix(partial_tag_suffix(ready, {kValueEnd, kParamEnd}));
        ready.remove_suffix(incomplete_utf8_tail(ready));
        add_arguments(d, json_escape(ready));
        pending_.erase(0, ready.size());
    }
    return false;
}

ChatDelta ChatParser::push(std::string_view text) {
    ChatDelta d;
    pending_ += text;
    while (!pending_.empty()) {
        bool again = true;
        switch (mode_) {
            case Mode::ToolCall: again = step_tool_call(d); break;
            case Mode::JsonArgs: again = step_json_args(d); break;
            case Mode::XmlParams: again = step_xml_params(d); break;
            case Mode::XmlValue: again = step_xml_value(d); break;
            case Mode::CallTail: {
                const size_t end = pending_.find(kCallClose);
                if (end == std::string::npos) {  // dropped, but for what may begin the closing tag
                    pending_.erase(0, pending_.size() - partial_tag_suffix(pending_, {kCallClose}));
                    again = false;
                } else {
                    pending_.erase(0, end + kCallClose.size());
                    mode_ = Mode::Content;
                }
                break;
            }
            case Mode::Content:
            case Mode::Reasoning: again = step_text(d); break;
        }
        if (!again) break;
    }
    return d;
}

// Content or reasoning: look for the next tag that changes the mode.
bool ChatParser::step_text(ChatDelta& d) {
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
        return false;
    }
    emit(d, std::string_view(pending_).substr(0, at));
    if (tag == kCallOpen) {
        mode_ = Mode::ToolCall;
        pending_.erase(0, at);  // keep the opening tag: a call that fails to parse is content again
    } else {
        mode_ = tag == kThinkOpen ? Mode::Reasoning : Mode::Content;
        pending_.erase(0, at + tag.size());
    }
    return true;
}

ChatDelta ChatParser::finish() {
    ChatDelta d;
    switch (mode_) {
        case Mode::ToolCall:  // never committed: the text as it was written
            mode_ = Mode::Content;
            emit(d, pending_);
            break;
        case Mode::Content:
        case Mode::Reasoning: emit(d, pending_); break;
        case Mode::JsonArgs: add_arguments(d, pending_); break;  // cut off: the arguments as far as they came
        case Mode::XmlValue:
            if (value_decided_ && value_is_string_) add_arguments(d, json_escape(pending_));
            break;
        case Mode::XmlParams:
        case Mode::CallTail: break;
    }
    mode_ = Mode::Content;
    pending_.clear();
    return d;
}

}  // namespace ferry::server
