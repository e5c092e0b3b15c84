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
    std::vector<ToolCall> calls;
};

Parsed whole(std::string_view text, bool tools, bool reasoning = false) {
    ChatParser p(tools, reasoning);
    Parsed out;
    for (const ChatDelta& d : {p.push(text), p.finish()}) {
        out.content += d.content;
        out.reasoning += d.reasoning;
        out.calls.insert(out.calls.end(), d.tool_calls.begin(), d.tool_calls.end());
    }
    return out;
}

// Feeds the text in pieces of `step` bytes; the deltas must add up to the whole parse.
Parsed streamed(std::string_view text, size_t step, bool tools, bool reasoning = false) {
    ChatParser p(tools, reasoning);
    Parsed out;
    auto take = [&](const ChatDelta& d) {
        out.content += d.content;
        out.reasoning += d.reasoning;
        out.calls.insert(out.calls.end(), d.tool_calls.begin(), d.tool_calls.end());
    };
    for (size_t i = 0; i < text.size(); i += step) take(p.push(text.substr(i, step)));
    take(p.finish());
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
