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
//
// Calls stream as OpenAI streams them: once the header is settled (JSON: `{"name": "N", "arguments":`
// followed by `{`; XML: `<function=N>`) the call is committed and its first delta carries the index,
// id and name; later deltas carry pieces of `arguments`, whose concatenation is the final arguments
// text. JSON arguments pass through as written (the object's text, nesting and strings tracked to
// find its end); XML arguments are built as `{"P":VALUE,...}`: a value that cannot start a JSON value
// (its first character is none of { [ " - digit t f n or whitespace) streams as a JSON string while
// it is generated, any other value is sent when its </parameter> arrives. Text after a committed
// call's arguments, up to </tool_call>, is dropped; a call cut off by the end of generation keeps
// the arguments sent so far. A header of another form waits for </tool_call> and is parsed whole.
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

// A piece of a streamed tool call: the first piece of call `index` carries its id and name.
struct ToolCallDelta {
    size_t index = 0;       // position in the message's tool_calls
    std::string id, name;   // set on the call's first delta only
    std::string arguments;  // the next piece of the arguments text
};

// What became settled by one push(): text to append to content / reasoning, and tool-call pieces.
struct ChatDelta {
    std::string content;
    std::string reasoning;
    std::vector<ToolCallDelta> tool_calls;

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

    // The whole message so far (a call's arguments as far as they were streamed).
    const std::string& content() const { return content_; }
    const std::string& reasoning() const { return reasoning_; }
    const std::vector<ToolCall>& tool_calls() const { return calls_; }

private:
    enum class Mode {
        Content,
        Reasoning,
        ToolCall,   // after <tool_call> (kept in pending_), the header not yet settled
        JsonArgs,   // inside a committed JSON call's arguments object
        XmlParams,  // a committed XML call, between its parameters
        XmlValue,   // inside one parameter's value
        CallTail,   // the arguments are complete; waiting for </tool_call>
    };
    void emit(ChatDelta& d, std::string_view text);
    void commit(ChatDelta& d, std::string name);
    void add_arguments(ChatDelta& d, std::string_view text);
    bool step_text(ChatDelta& d);  // false: more text is needed
    bool step_tool_call(ChatDelta& d);
    bool step_json_args(ChatDelta& d);
    bool step_xml_params(ChatDelta& d);
    bool step_xml_value(ChatDelta& d);

    bool parse_tools_;
    Mode mode_;
    std::string pending_;  // not yet settled
    std::string content_, reasoning_;
    std::vector<ToolCall> calls_;
    bool whole_block_ = false;  // the current <tool_call>'s header has no streamable form
    int json_depth_ = 0;
    bool json_in_string_ = false, json_escape_ = false;
    int n_params_ = 0;
    bool value_started_ = false, value_decided_ = false, value_is_string_ = false;
};

// A JSON string's contents for `text` (quotes not included), escaped as nlohmann::json dumps it.
std::string json_escape(std::string_view text);

// "<think>" at the end of a rendered prompt (ignoring whitespace): the model starts inside reasoning.
bool prompt_opens_reasoning(std::string_view prompt);

}  // namespace ferry::server
