// Splitting a model's generated text into what OpenAI's chat API returns: `content`,
// `reasoning_content` (the text inside <think>...</think>) and `tool_calls`.
//
// The parser is incremental: push() takes text as it is generated and returns only what is settled,
// holding back a tail that could still be the start of a tag ("<too" might become "<tool_call>"), so
// a stream of deltas concatenates to exactly what finish() reports for the whole message.
//
// Tool calls, between <tool_call> and </tool_call>, come in two shapes (the templates of
// tests/data/chat-templates):
//   Hermes / Qwen3 (JSON):  {"name": "get_weather", "arguments": {"city": "Paris"}}
//   Qwen3.5 / Qwen3-Coder (XML):
//       <function=get_weather>
//       <parameter=city>
//       Paris
//       </parameter>
//       </function>
// XML parameter values that parse as JSON (numbers, booleans, objects) keep their type; anything
// else is a string. A call that parses in neither shape stays in `content` as it was written.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ferry::server {

struct ToolCall {
    std::string id;         // "call_..." (unique per call)
    std::string name;       // the function's name
    std::string arguments;  // a JSON object, as text (what OpenAI sends in function.arguments)
};

// What became settled by one push(): text to append to content / reasoning and calls completed.
struct ChatDelta {
    std::string content;
    std::string reasoning;
    std::vector<ToolCall> tool_calls;

    bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

// One parsed tool-call body (the text between the tags); false if it is neither shape.
bool parse_tool_call_body(std::string_view body, ToolCall& call);

class ChatParser {
public:
    // parse_tools: recognize <tool_call> blocks (only when the request offered tools).
    // in_reasoning: the prompt already opened a <think> block (the template ends with "<think>").
    ChatParser(bool parse_tools, bool in_reasoning);

    ChatDelta push(std::string_view text);
    // Everything still held back (an unfinished tag or tool call is returned as it was written).
    ChatDelta finish();

    // The whole message so far.
    const std::string& content() const { return content_; }
    const std::string& reasoning() const { return reasoning_; }
    const std::vector<ToolCall>& tool_calls() const { return calls_; }

private:
    enum class Mode { Content, Reasoning, ToolCall };
    void emit(ChatDelta& d, std::string_view text);

    bool parse_tools_;
    Mode mode_;
    std::string pending_;  // not yet settled
    std::string content_, reasoning_;
    std::vector<ToolCall> calls_;
};

// "<think>" at the end of a rendered prompt (ignoring whitespace): the model starts inside reasoning.
bool prompt_opens_reasoning(std::string_view prompt);

}  // namespace ferry::server
