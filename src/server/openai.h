// OpenAI's request and response shapes, apart from HTTP: validating a request body into the
// settings of a generation, and building the JSON answers (whole and streamed chunks).
//
// Validation follows OpenAI's API: a field the server knows must have the documented type and range
// (a wrong one is a 400 naming the field); unknown fields are ignored, as OpenAI's clients send
// extras. Every message is an ApiError with the HTTP status and OpenAI's error type.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/sampling.h"
#include "server/chat_parse.h"
#include "server/scheduler.h"

namespace ferry::server {

using nlohmann::ordered_json;

struct ApiError {
    int status = 400;
    std::string message;
    std::string type = "invalid_request_error";
    std::string code;  // optional: "context_length_exceeded", "invalid_api_key", ...
};

inline ApiError api_error(int status, std::string message, std::string type = "invalid_request_error",
                          std::string code = {}) {
    ApiError e;
    e.status = status;
    e.message = std::move(message);
    e.type = std::move(type);
    e.code = std::move(code);
    return e;
}

// {"error": {"message", "type", "param": null, "code"}}
ordered_json error_body(const ApiError& e);

// The generation settings shared by /v1/chat/completions and /v1/completions.
struct RequestOptions {
    runtime::SamplingParams sampling;
    int max_tokens = -1;
    std::vector<std::string> stop;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    bool logprobs = false;
    int top_logprobs = 0;
    bool ignore_eos = false;
    bool cache_prompt = true;  // llama.cpp's field: false computes the whole prompt (a cold start)
};

// Reads the common fields (temperature, top_p, top_k, min_p, seed, max_tokens or
// max_completion_tokens, stop, n, stream, stream_options, logprobs, top_logprobs, penalties) on top
// of `defaults`. chat: logprobs is a boolean (chat) rather than a count (completions).
std::optional<ApiError> parse_options(const ordered_json& body, bool chat, const runtime::SamplingParams& defaults,
                                      RequestOptions& out);

struct ChatRequest {
    ordered_json messages;  // normalized for the template: text content, tool-call arguments as objects
    ordered_json tools;     // null when none
    bool parse_tools = false;
};

std::optional<ApiError> parse_chat_request(const ordered_json& body, ChatRequest& out);

// The prompt of /v1/completions: a string, or one string in an array.
std::optional<ApiError> parse_completion_prompt(const ordered_json& body, std::string& prompt);

// usage: prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details.cached_tokens.
ordered_json usage_json(const TaskStats& s);
// llama.cpp's "timings" object (prompt_n, prompt_ms, predicted_n, predicted_ms, per-second rates).
ordered_json timings_json(const TaskStats& s);

// choices[].logprobs for chat ({"content": [...]}) and for completions (tokens, token_logprobs, ...).
ordered_json chat_logprobs_json(const std::vector<TokenLogprob>& lps);
ordered_json completion_logprobs_json(const std::vector<TokenLogprob>& lps);

// An OpenAI tool_calls array entry: {"id","type":"function","function":{"name","arguments"}}.
ordered_json tool_call_json(const ToolCall& c);
// A streamed tool_calls entry: {"index", "id", "type", "function": {"name", "arguments"}} for a call's
// first piece, {"index", "function": {"arguments"}} for the later ones.
ordered_json tool_call_delta_json(const ToolCallDelta& d);

// "chatcmpl-" / "cmpl-" followed by random letters.
std::string random_id(std::string_view prefix);

}  // namespace ferry::server
