// Errors, sandbox bounds, hostile templates and the transformers render context.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "text/jinja/template.h"

namespace ferry::text {
namespace {

using jinja::ErrorKind;
using nlohmann::ordered_json;

const ordered_json kCtx = ordered_json::parse(R"({"l":[3,1,2],"n":null,"s":"x","d":{"a":1}})");

// Parses and renders; returns the error (kind syntax for parse failures), or nullopt on success.
std::optional<TemplateError> failure(std::string_view source, const RenderOptions& options = {},
                                     const ordered_json& ctx = kCtx) {
    TemplateError err;
    auto t = Template::parse(source, &err);
    if (!t.ok()) return err;
    auto out = t->render(ctx, options, &err);
    if (out.ok()) return std::nullopt;
    return err;
}

std::string render(std::string_view source, const ordered_json& ctx = kCtx) {
    auto t = Template::parse(source);
    EXPECT_TRUE(t.ok()) << t.error().message;
    if (!t.ok()) return "<parse error>";
    auto out = t->render(ctx);
    EXPECT_TRUE(out.ok()) << out.error().message;
    return out.ok() ? *out : "<render error>";
}

struct ErrorCase {
    const char* source;
    ErrorKind kind;
};

// Each of these raises in Python's jinja2 as well (checked against jinja2 3.1.6).
const ErrorCase kErrors[] = {
    {"{{ n + 1 }}", ErrorKind::type},
    {"{{ 'a' + n }}", ErrorKind::type},
    {"{{ 'x' in n }}", ErrorKind::type},
    {"{{ 1 in 'abc' }}", ErrorKind::type},
    {"{{ s|items }}", ErrorKind::type},
    {"{{ l < 's' }}", ErrorKind::type},
    {"{% for x in n %}{% endfor %}", ErrorKind::type},
    {"{{ l.append(1) }}", ErrorKind::security},
    {"{{ l.pop() }}", ErrorKind::security},
    {"{{ d.update({'b': 2}) }}", ErrorKind::security},
    {"{{ nope.attr }}", ErrorKind::undefined},
    {"{{ nope['k'] }}", ErrorKind::undefined},
    {"{{ nope + 1 }}", ErrorKind::undefined},
    {"{{ nope() }}", ErrorKind::undefined},
    {"{{ d.missing.deeper }}", ErrorKind::undefined},
    {"{{ 1 / 0 }}", ErrorKind::value},
    {"{{ 1 // 0 }}", ErrorKind::value},
    {"{% for a, b in [[1, 2], [3]] %}{% endfor %}", ErrorKind::value},
    {"{{ range(1000000)|length }}", ErrorKind::limit},
    {"{% set ns.x = 1 %}", ErrorKind::type},
    {"{{ l|nofilter }}", ErrorKind::syntax},
    {"{{ l is notatest }}", ErrorKind::syntax},
    {"{% include 'other.jinja' %}", ErrorKind::syntax},
    {"{% import 'x' as y %}", ErrorKind::syntax},
    {"{% extends 'base' %}", ErrorKind::syntax},
    {"{% do l.append(1) %}", ErrorKind::syntax},
    {"{% break %}", ErrorKind::syntax},
    {"{% if true %}", ErrorKind::syntax},
    {"{% endif %}", ErrorKind::syntax},
    {"{{ 'unterminated }}", ErrorKind::syntax},
    {"{{ 1 + }}", ErrorKind::syntax},
    {"{{ (1, 2 }}", ErrorKind::syntax},
    {"{# never closed", ErrorKind::syntax},
    {"{% raw %} never closed", ErrorKind::syntax},
    {"{{ x is defined is defined }}", ErrorKind::syntax},
};

TEST(JinjaErrors, RaiseWhereJinjaRaises) {
    for (const ErrorCase& c : kErrors) {
        SCOPED_TRACE(c.source);
        auto err = failure(c.source);
        ASSERT_TRUE(err.has_value()) << "rendered without error";
        EXPECT_EQ(int(err->kind), int(c.kind)) << err->message;
    }
}

TEST(JinjaErrors, RaiseExceptionKeepsMessageAndPosition) {
    auto err = failure("line one\n{% if true %}\n  {{ raise_exception('Roles must alternate') }}{% endif %}");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::raised);
    EXPECT_EQ(err->message, "Roles must alternate");
    EXPECT_EQ(err->line, 3u);
    EXPECT_EQ(err->column, 6u);  // the called name

    auto t = Template::parse("a\nb {{ n + 1 }}");
    ASSERT_TRUE(t.ok());
    auto out = t->render(kCtx);
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.error().message.find("line 2, column 8"), std::string::npos) << out.error().message;
    EXPECT_NE(out.error().message.find("TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'"),
              std::string::npos)
        << out.error().message;

    TemplateError syntax;
    auto bad = Template::parse("ok\n\n   {{ 1 + }}", &syntax);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(syntax.line, 3u);
    EXPECT_EQ(syntax.column, 11u);
}

TEST(JinjaSemantics, UndefinedIsLenientNoneIsNot) {
    EXPECT_EQ(render("[{{ nope }}][{{ nope|length }}][{% for x in nope %}x{% endfor %}][{{ nope|default('d') }}]"
                     "[{{ nope is defined }}][{{ n is defined }}][{{ n }}][{{ d.zz }}][{{ nope|items|list }}]"),
              "[][0][][d][False][True][None][][[]]");
    EXPECT_EQ(render("{{ nope ~ 'x' }}|{{ nope == nope }}|{{ 'a' in nope }}|{{ nope|trim }}|{{ n.attr is defined }}"),
              "x|True|False||False");
}

TEST(JinjaSemantics, ClockIsInjectable) {
    RenderOptions options;
    options.clock = [] {
        std::tm t{};
        t.tm_year = 1999 - 1900;
        t.tm_mon = 11;
        t.tm_mday = 31;
        t.tm_hour = 23;
        t.tm_min = 59;
        return t;
    };
    auto t = Template::parse("{{ strftime_now('%Y-%m-%d %H:%M') }}");
    ASSERT_TRUE(t.ok());
    auto out = t->render(ordered_json::object(), options);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(*out, "1999-12-31 23:59");
}

TEST(JinjaChat, ContextIsBuiltLikeTransformers) {
    auto t = Template::parse(
        "{{ tools is defined }}{{ tools is none }}{{ documents is none }}{{ bos_token is defined }}"
        "{{ eos_token }}{{ add_generation_prompt }}{{ messages|length }}{{ custom }}");
    ASSERT_TRUE(t.ok());
    ChatTemplateInputs in;
    in.messages = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
    in.eos_token = "</s>";
    in.add_generation_prompt = true;
    in.extra_kwargs = {{"custom", "C"}};
    auto out = apply_chat_template(*t, in);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(*out, "TrueTrueTrueFalse</s>True1C");

    in.extra_kwargs = {{"eos_token", "override"}, {"add_generation_prompt", false}};  // kwargs win
    out = apply_chat_template(*t, in);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "TrueTrueTrueFalseoverrideFalse1");
}

TEST(JinjaInput, RejectsInvalidUtf8) {
    EXPECT_FALSE(Template::parse("ok \xff\xfe").ok());
    auto t = Template::parse("{{ s }}");
    ASSERT_TRUE(t.ok());
    ordered_json ctx;
    ctx["s"] = std::string("bad \xc3");
    EXPECT_FALSE(t->render(ctx).ok());
}

TEST(JinjaSandbox, LoopIterationsAreBounded) {
    auto err = failure("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::limit);
    EXPECT_NE(err->message.find("loop iteration limit"), std::string::npos) << err->message;

    RenderOptions small;
    small.limits.max_loop_iterations = 10;
    EXPECT_FALSE(failure("{% for i in range(10) %}{% endfor %}", small).has_value());
    err = failure("{% for i in range(11) %}{% endfor %}", small);
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::limit);
}

TEST(JinjaSandbox, RecursionIsBounded) {
    auto err = failure("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::limit);
    EXPECT_NE(err->message.find("recursion depth"), std::string::npos) << err->message;
    EXPECT_EQ(err->line, 1u);

    // Bounded recursion that fits is fine.
    EXPECT_EQ(render("{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }}"),
              "54321");

    // caller() recursion through a call block.
    err = failure(
        "{% macro m() %}{{ caller() }}{% endmacro %}{% macro r() %}{% call m() %}{{ r() }}{% endcall %}{% endmacro "
        "%}{{ r() }}");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::limit);
}

TEST(JinjaSandbox, OutputAndBuiltValuesAreBounded) {
    auto err = failure("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::limit);
    EXPECT_NE(err->message.find("rendered output"), std::string::npos) << err->message;

    err = failure("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::limit);

    EXPECT_EQ(failure("{{ 'x' * 100000000000 }}")->kind, ErrorKind::limit);
    EXPECT_EQ(failure("{{ [1, 2] * 100000000000 }}")->kind, ErrorKind::limit);
    EXPECT_EQ(failure("{{ '%999999999s' % 'x' }}")->kind, ErrorKind::value);

    // Quadratic growth stays within the work bound.
    RenderOptions small;
    small.limits.max_built_bytes = 1 << 20;
    err = failure("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}",
                  small);
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind, ErrorKind::limit);

    RenderOptions tiny;
    tiny.limits.max_output_bytes = 5;
    EXPECT_FALSE(failure("12345", tiny).has_value());
    EXPECT_TRUE(failure("123456", tiny).has_value());
}

TEST(JinjaSandbox, HostileNestingIsASyntaxErrorNotACrash) {
    const size_t n = 100000;
    std::vector<std::string> sources = {
        "{{ " + std::string(n, '(') + "1" + std::string(n, ')') + " }}",
        "{{ " + std::string(n, '[') + std::string(n, ']') + " }}",
        "{{ " + std::string(n, '-') + "1 }}",
    };
    std::string s;
    for (size_t i = 0; i < n; ++i) s += "not ";
    sources.push_back("{{ " + s + "1 }}");
    s.clear();
    for (size_t i = 0; i < n; ++i) s += "{% if 1 %}";
    sources.push_back(s);
    s = "{{ 1";
    for (size_t i = 0; i < n; ++i) s += " + 1";
    sources.push_back(s + " }}");
    s = "{{ 'x'";
    for (size_t i = 0; i < n; ++i) s += "|trim";
    sources.push_back(s + " }}");
    s = "{{ x";
    for (size_t i = 0; i < n; ++i) s += ".a";
    sources.push_back(s + " }}");
    s = "{{ x";
    for (size_t i = 0; i < n; ++i) s += "()";
    sources.push_back(s + " }}");
    s = "{{ ";
    for (size_t i = 0; i < n; ++i) s += "{'a': ";
    sources.push_back(s + "1" + std::string(n, '}') + " }}");
    for (const std::string& src : sources) {
        SCOPED_TRACE(src.substr(0, 40));
        TemplateError err;
        auto t = Template::parse(src, &err);
        ASSERT_FALSE(t.ok());
        EXPECT_EQ(err.kind, ErrorKind::syntax);
        EXPECT_NE(err.message.find("nest"), std::string::npos) << err.message;
    }
    // Just below the parse limit parses; rendering it stays within the evaluator's bound.
    auto t = Template::parse("{{ " + std::string(100, '(') + "1" + std::string(100, ')') + " }}");
    ASSERT_TRUE(t.ok());
    auto out = t->render(ordered_json::object());
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "1");
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Mutated real templates and random token soup must parse or fail cleanly, and render or fail
// cleanly, within small limits. A crash or sanitizer report fails the test.
TEST(JinjaFuzz, MutatedTemplatesNeverCrash) {
    const char* stems[] = {"Qwen3.5-4B",
                           "google-gemma-4-31B-it",
                           "openai-gpt-oss-120b",
                           "meta-llama-Llama-3.1-8B-Instruct",
                           "ibm-granite-granite-4.0",
                           "mistralai-Mistral-Nemo-Instruct-2407"};
    const char* pieces[] = {"{%",
                            "%}",
                            "{{",
                            "}}",
                            "{#",
                            "#}",
                            "-",
                            "+",
                            "(",
                            ")",
                            "[",
                            "]",
                            "{",
                            "}",
                            "|",
                            ".",
                            ",",
                            ":",
                            "'",
                            "\"",
                            "for ",
                            "endfor",
                            "if ",
                            "endif",
                            " in ",
                            "set ",
                            "macro ",
                            "endmacro",
                            "loop.",
                            "not ",
                            " is ",
                            "~",
                            "*",
                            "**",
                            "//",
                            "%",
                            "raw",
                            "endraw",
                            "\n",
                            " ",
                            "0",
                            "1e9",
                            "range(99999)",
                            "caller()",
                            "namespace(",
                            "|tojson",
                            "|items",
                            "[::-1]"};
    ordered_json cases = ordered_json::parse(read_file("tests/data/chat-templates/cases.json"));
    const ordered_json& conv = cases["cases"][6];
    ChatTemplateInputs in;
    in.messages = conv["messages"];
    in.tools = conv["tools"];
    in.add_generation_prompt = true;
    in.bos_token = "<s>";
    RenderOptions options;
    options.limits.max_loop_iterations = 20000;
    options.limits.max_output_bytes = 1 << 20;
    options.limits.max_built_bytes = 64 << 20;
    std::mt19937 rng(12345);
    int parsed = 0, rendered = 0, total = 0;
    for (const char* stem : stems) {
        std::string base = read_file(std::string("tests/data/chat-templates/templates/") + stem + ".jinja");
        ASSERT_FALSE(base.empty());
        for (int iter = 0; iter < 150; ++iter) {
            std::string src = base;
            int edits = 1 + int(rng() % 4);
            for (int e = 0; e < edits; ++e) {
                size_t pos = rng() % (src.size() + 1);
                switch (rng() % 4) {
                    case 0: src.erase(pos, rng() % 16); break;
                    case 1: src.insert(pos, pieces[rng() % std::size(pieces)]); break;
                    case 2: src.insert(pos, src.substr(rng() % src.size(), rng() % 64)); break;
                    default:
                        if (pos < src.size()) src[pos] = char(32 + rng() % 95);
                }
            }
            ++total;
            auto t = Template::parse(src);
            if (!t.ok()) continue;
            ++parsed;
            auto out = apply_chat_template(*t, in, options);
            rendered += out.ok();
        }
    }
    for (int iter = 0; iter < 3000; ++iter) {  // token soup
        std::string src;
        int n = 1 + int(rng() % 40);
        for (int i = 0; i < n; ++i) src += pieces[rng() % std::size(pieces)];
        ++total;
        auto t = Template::parse(src);
        if (!t.ok()) continue;
        ++parsed;
        rendered += apply_chat_template(*t, in, options).ok();
    }
    EXPECT_GT(parsed, 0);
    EXPECT_GT(rendered, 0);
    std::printf("fuzz: %d inputs, %d parsed, %d rendered\n", total, parsed, rendered);
}

}  // namespace
}  // namespace ferry::text
