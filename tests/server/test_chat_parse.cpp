// Tool-call and reasoning parsing (server/chat_parse.h), whole and streamed in every possible split,
// and the constant-time key comparison.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/chat_parse.h"
#include "server/http_server.h"
#include "server/openai.h"

namespace ferry::server {
namespace {

using nlohmann::json;

struct Parsed {
    std::string content, reasoning;
    std::vector<ToolCall> calls;  // assembled from the deltas as an OpenAI client does
    size_t arg_pieces = 0;        // deltas that carried a piece of arguments

    // Adds one delta, checking OpenAI's streaming shape: a call's first piece has its id and name and
    // the next index; later pieces only arguments, for a call already opened.
    void take(const ChatDelta& d) {
        content += d.content;
        reasoning += d.reasoning;
        for (const ToolCallDelta& t : d.tool_calls) {
            if (!t.id.empty()) {
                EXPECT_EQ(t.index, calls.size());
                EXPECT_FALSE(t.name.empty());
                calls.push_back({.id = t.id, .name = t.name, .arguments = {}});
            } else {
                ASSERT_LT(t.index, calls.size());
                EXPECT_TRUE(t.name.empty());
            }
            if (!t.arguments.empty()) ++arg_pieces;
            calls[t.index].arguments += t.arguments;
        }
    }
};

// The parser's own view of the message must equal what its deltas add up to.
void expect_matches_parser(const Parsed& out, const ChatParser& p) {
    EXPECT_EQ(out.content, p.content());
    EXPECT_EQ(out.reasoning, p.reasoning());
    ASSERT_EQ(out.calls.size(), p.tool_calls().size());
    for (size_t i = 0; i < out.calls.size(); ++i) {
        EXPECT_EQ(out.calls[i].id, p.tool_calls()[i].id);
        EXPECT_EQ(out.calls[i].arguments, p.tool_calls()[i].arguments);
    }
}

Parsed whole(std::string_view text, bool tools, bool reasoning = false) {
    ChatParser p(tools, reasoning);
    Parsed out;
    out.take(p.push(text));
    out.take(p.finish());
    expect_matches_parser(out, p);
    return out;
}

// Feeds the text in pieces of `step` bytes; the deltas must add up to the whole parse.
Parsed streamed(std::string_view text, size_t step, bool tools, bool reasoning = false) {
    ChatParser p(tools, reasoning);
    Parsed out;
    for (size_t i = 0; i < text.size(); i += step) out.take(p.push(text.substr(i, step)));
    out.take(p.finish());
    expect_matches_parser(out, p);
    return out;
}

void expect_same_when_streamed(std::string_view text, bool tools, bool reasoning = false) {
    const Parsed w = whole(text, tools, reasoning);
    for (size_t step = 1; step <= text.size(); ++step) {
        const Parsed s = streamed(text, step, tools, reasoning);
        EXPECT_EQ(s.content, w.content) << "step " << step;
        EXPECT_EQ(s.reasoning, w.reasoning) << "step " << step;
        ASSERT_EQ(s.calls.size(), w.calls.size()) << "step " << step;
        for (size_t i = 0; i < w.calls.size(); ++i) {
            EXPECT_EQ(s.calls[i].name, w.calls[i].name);
            EXPECT_EQ(s.calls[i].arguments, w.calls[i].arguments);
        }
    }
}

TEST(ChatParse, HermesJsonCall) {
    const std::string text =
        "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
        "</tool_call>";
    const Parsed p = whole(text, true);
    EXPECT_EQ(p.content, "Let me check.\n");
    ASSERT_EQ(p.calls.size(), 1u);
    EXPECT_EQ(p.calls[0].name, "get_weather");
    EXPECT_EQ(json::parse(p.calls[0].arguments), json::parse(R"({"city": "Paris", "days": 2})"));
    EXPECT_EQ(p.calls[0].id.rfind("call_", 0), 0u);
    expect_same_when_streamed(text, true);
}

TEST(ChatParse, QwenXmlCallWithTypedParameters) {
    const std::string text =
        "<tool_call>\n<function=search>\n<parameter=query>\nferry boats\nin Oslo\n</parameter>\n"
        "<parameter=limit>\n5\n</parameter>\n<parameter=exact>\ntrue\n</parameter>\n</function>\n</tool_call>\n"
        "<tool_call>\n<function=noop>\n</function>\n</tool_call>";
    const Parsed p = whole(text, true);
    ASSERT_EQ(p.calls.size(), 2u);
    EXPECT_EQ(p.calls[0].name, "search");
    EXPECT_EQ(json::parse(p.calls[0].arguments),
              json::parse(R"({"query": "ferry boats\nin Oslo", "limit": 5, "exact": true})"));
    EXPECT_EQ(p.calls[1].name, "noop");
    EXPECT_EQ(p.calls[1].arguments, "{}");
    EXPECT_NE(p.calls[0].id, p.calls[1].id);
    EXPECT_EQ(p.content, "\n");
    expect_same_when_streamed(text, true);
}

TEST(ChatParse, JsonArgumentsStreamAsWritten) {
    const std::string args = R"({"city": "Paris", "when": {"days": [1, 2]}, "note": "a } in \"quotes\" <b>"})";
    const std::string text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": " + args + "}\n</tool_call>";
    ChatParser p(true, false);
    Parsed out;
    // The call opens as soon as its header is settled: the arguments' opening brace shows their shape.
    const size_t header = text.find(args);
    out.take(p.push(text.substr(0, header)));
    EXPECT_TRUE(out.calls.empty());
    out.take(p.push(text.substr(header, 1)));
    ASSERT_EQ(out.calls.size(), 1u);
    EXPECT_EQ(out.calls[0].name, "get_weather");
    EXPECT_EQ(out.calls[0].arguments, "{");
    for (size_t i = header + 1; i < text.size(); i += 3) out.take(p.push(text.substr(i, 3)));
    out.take(p.finish());
    EXPECT_EQ(out.calls[0].arguments, args);  // the object as the model wrote it
    EXPECT_GT(out.arg_pieces, 10u);
    EXPECT_EQ(out.content, "");
    expect_same_when_streamed(text, true);
    // "parameters" is accepted too; arguments given as a string are parsed when the call closes.
    const Parsed q = whole(R"(<tool_call>{"name":"f","parameters":{"a":1}}</tool_call>)", true);
    ASSERT_EQ(q.calls.size(), 1u);
    EXPECT_EQ(q.calls[0].arguments, R"({"a":1})");
    const std::string str = R"(<tool_call>{"name":"f","arguments":"{\"a\": 1}"}</tool_call>)";
    const Parsed r = whole(str, true);
    ASSERT_EQ(r.calls.size(), 1u);
    EXPECT_EQ(r.calls[0].arguments, R"({"a": 1})");
    expect_same_when_streamed(str, true);
    // Keys in another order: parsed whole.
    const std::string swapped = R"(<tool_call>{"arguments":{"a":1},"name":"f"}</tool_call>)";
    EXPECT_EQ(whole(swapped, true).calls.at(0).arguments, R"({"a":1})");
    expect_same_when_streamed(swapped, true);
}

TEST(ChatParse, XmlStringValuesStreamWhileGenerated) {
    const std::string text =
        "<tool_call>\n<function=write_file>\n<parameter=path>\n/tmp/a \"b\".txt\n</parameter>\n"
        "<parameter=content>\nline one\n\tline two "
        "\xc3\xa9\xe2\x82\xac\n\n</parameter>\n<parameter=mode>\n0644\n</parameter>\n"
        "</function>\n</tool_call>";
    ChatParser p(true, false);
    Parsed out;
    const std::string upto = "<tool_call>\n<function=write_file>\n<parameter=path>\n/tmp/a";
    out.take(p.push(upto));
    ASSERT_EQ(out.calls.size(), 1u);
    EXPECT_EQ(out.calls[0].name, "write_file");
    EXPECT_EQ(out.calls[0].arguments, "{\"path\":\"/tmp/a");  // the value so far, as a JSON string
    out.take(p.push(text.substr(upto.size())));
    out.take(p.finish());
    const json args = json::parse(out.calls[0].arguments);
    EXPECT_EQ(args,
              json::parse(
                  R"({"path": "/tmp/a \"b\".txt", "content": "line one\n\tline two \u00e9\u20ac\n", "mode": "0644"})"));
    EXPECT_EQ(out.content, "");
    expect_same_when_streamed(text, true);
    // No piece of a closing tag leaks into the arguments while a value streams.
    ChatParser q(true, false);
    Parsed o;
    o.take(q.push("<tool_call><function=f><parameter=x>\nabc\n</para"));
    EXPECT_EQ(o.calls.at(0).arguments, "{\"x\":\"abc");
    o.take(q.push("meter></function></tool_call>after"));
    o.take(q.finish());
    EXPECT_EQ(o.calls[0].arguments, "{\"x\":\"abc\"}");
    EXPECT_EQ(o.content, "after");
}

TEST(ChatParse, CallsCutOffKeepWhatWasSent) {
    // A committed call cut off by the end of generation keeps its arguments so far; nothing goes to content.
    const std::string json_cut = R"(ok <tool_call>{"name": "f", "arguments": {"a": "xy)";
    Parsed p = whole(json_cut, true);
    EXPECT_EQ(p.content, "ok ");
    ASSERT_EQ(p.calls.size(), 1u);
    EXPECT_EQ(p.calls[0].arguments, R"({"a": "xy)");
    expect_same_when_streamed(json_cut, true);
    const std::string xml_cut = "<tool_call>\n<function=f>\n<parameter=a>\nhello\n</par";
    p = whole(xml_cut, true);
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.calls.size(), 1u);
    EXPECT_EQ(p.calls[0].arguments, "{\"a\":\"hello\\n</par");
    expect_same_when_streamed(xml_cut, true);
    // </tool_call> before the arguments object closed ends the call; a missing </function> too.
    const std::string unclosed = R"(<tool_call>{"name": "f", "arguments": {"a": 1</tool_call>z)";
    p = whole(unclosed, true);
    EXPECT_EQ(p.calls.at(0).arguments, R"({"a": 1)");
    EXPECT_EQ(p.content, "z");
    expect_same_when_streamed(unclosed, true);
    const std::string no_fn_end = "<tool_call><function=f><parameter=a>1</parameter></tool_call>";
    p = whole(no_fn_end, true);
    EXPECT_EQ(p.calls.at(0).arguments, R"({"a":1})");
    expect_same_when_streamed(no_fn_end, true);
}

TEST(ChatParse, ReasoningSplitOut) {
    const std::string text = "<think>\nThe user wants a number.\n</think>\n\n42";
    const Parsed p = whole(text, false);
    EXPECT_EQ(p.reasoning, "\nThe user wants a number.\n");
    EXPECT_EQ(p.content, "\n\n42");
    expect_same_when_streamed(text, false);
    // The prompt opened the block (the template ended with "<think>\n").
    const Parsed q = whole("plan\n</think>answer", false, true);
    EXPECT_EQ(q.reasoning, "plan\n");
    EXPECT_EQ(q.content, "answer");
    EXPECT_TRUE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"));
    EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n"));
}

TEST(ChatParse, ReasoningThenToolCall) {
    const std::string text = "<think>need weather</think><tool_call>{\"name\":\"w\",\"arguments\":{}}</tool_call>";
    const Parsed p = whole(text, true);
    EXPECT_EQ(p.reasoning, "need weather");
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.calls.size(), 1u);
    expect_same_when_streamed(text, true);
}

TEST(ChatParse, MalformedOrUnfinishedCallsStayContent) {
    const std::string bad = "<tool_call>{not json}</tool_call> done";
    Parsed p = whole(bad, true);
    EXPECT_TRUE(p.calls.empty());
    EXPECT_EQ(p.content, bad);
    expect_same_when_streamed(bad, true);
    const std::string cut = "ok <tool_call>{\"name\": \"x\"";
    p = whole(cut, true);
    EXPECT_TRUE(p.calls.empty());
    EXPECT_EQ(p.content, cut);
    // Without tools in the request the tags are plain text.
    const std::string call = "<tool_call>{\"name\":\"w\",\"arguments\":{}}</tool_call>";
    p = whole(call, false);
    EXPECT_TRUE(p.calls.empty());
    EXPECT_EQ(p.content, call);
    // A '<' that starts no tag is released.
    EXPECT_EQ(whole("a < b <to", true).content, "a < b <to");
}

TEST(ChatParse, BodyShapes) {
    ToolCall c;
    EXPECT_TRUE(parse_tool_call_body(R"({"name": "f", "arguments": "{\"a\": 1}"})", c));
    EXPECT_EQ(c.arguments, "{\"a\": 1}");
    EXPECT_TRUE(parse_tool_call_body(R"({"name": "f", "parameters": {"a": 1}})", c));
    EXPECT_EQ(c.arguments, R"({"a":1})");
    EXPECT_FALSE(parse_tool_call_body(R"({"arguments": {}})", c));
    EXPECT_FALSE(parse_tool_call_body("<function=f>\n<parameter=a>\n1\n</function>", c));
    EXPECT_FALSE(parse_tool_call_body("<function=f>\n</function> trailing", c));
    EXPECT_FALSE(parse_tool_call_body("", c));
}

TEST(ApiKeys, ConstantTimeEqual) {
    EXPECT_TRUE(constant_time_equal("secret-key", "secret-key"));
    EXPECT_FALSE(constant_time_equal("secret-key", "secret-kez"));
    EXPECT_FALSE(constant_time_equal("secret", "secret-key"));
    EXPECT_FALSE(constant_time_equal("", "k"));
    EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(OpenAiOptions, TypesAndRanges) {
    RequestOptions o;
    const runtime::SamplingParams defaults;
    EXPECT_FALSE(parse_options(json::parse(R"({"temperature": 0.5, "max_tokens": 10, "stop": ["x"], "seed": 3})"), true,
                               defaults, o));
    EXPECT_FLOAT_EQ(o.sampling.temp, 0.5f);
    EXPECT_EQ(o.max_tokens, 10);
    EXPECT_EQ(o.sampling.seed, 3u);
    for (const char* bad : {R"({"temperature": "hot"})", R"({"temperature": 7})", R"({"max_tokens": -1})",
                            R"({"max_tokens": 1.5})", R"({"max_tokens": 1e300})", R"({"n": 2})", R"({"stop": 3})",
                            R"({"stream": "yes"})", R"({"top_logprobs": 3})", R"({"top_p": -0.1})"}) {
        const auto e = parse_options(json::parse(bad), true, defaults, o);
        ASSERT_TRUE(e.has_value()) << bad;
        EXPECT_EQ(e->status, 400) << bad;
    }
    ChatRequest chat;
    EXPECT_TRUE(parse_chat_request(json::parse(R"({"messages": []})"), chat));
    EXPECT_TRUE(parse_chat_request(json::parse(R"({"messages": [{"role": "robot", "content": "x"}]})"), chat));
    EXPECT_TRUE(parse_chat_request(json::parse(R"({"messages": [{"role": "user", "content": 5}]})"), chat));
    EXPECT_FALSE(
        parse_chat_request(json::parse(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                     {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type":
                                      "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                                     {"role": "tool", "tool_call_id": "c1", "content": "ok"}],
                        "tools": [{"type": "function", "function": {"name": "f"}}]})"),
                           chat));
    EXPECT_EQ(chat.messages[0]["content"], "hi");
    EXPECT_EQ(chat.messages[1]["tool_calls"][0]["function"]["arguments"]["a"], 1);
    EXPECT_TRUE(chat.parse_tools);
}

}  // namespace
}  // namespace ferry::server
