// Every (template, conversation) pair of tests/data/chat-templates must render byte for byte as
// transformers does (expected/<stem>/<case>.txt), or fail where transformers fails
// (<case>.error.txt); raise_exception messages must match exactly.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "text/jinja/template.h"

namespace ferry::text {
namespace {

using nlohmann::ordered_json;

const std::string kDir = "tests/data/chat-templates/";

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    EXPECT_TRUE(f.good()) << "cannot open " << path;
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::tm pinned_clock() {  // the goldens pin strftime_now to 2026-01-15 00:00:00 local time
    std::tm t{};
    t.tm_year = 2026 - 1900;
    t.tm_mon = 0;
    t.tm_mday = 15;
    t.tm_wday = 4;
    t.tm_yday = 14;
    return t;
}

std::string diff_position(const std::string& got, const std::string& want) {
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    size_t from = i > 40 ? i - 40 : 0;
    std::ostringstream os;
    os << "first difference at byte " << i << " (got " << got.size() << " bytes, want " << want.size() << ")\n"
       << "  got:  ..."
       << ordered_json(got.substr(from, 100)).dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n"
       << "  want: ..."
       << ordered_json(want.substr(from, 100)).dump(-1, ' ', false, ordered_json::error_handler_t::replace);
    return os.str();
}

TEST(JinjaGolden, AllTemplatesAllCases) {
    ordered_json templates = ordered_json::parse(read_file(kDir + "templates.json"));
    ordered_json cases = ordered_json::parse(read_file(kDir + "cases.json"));
    ordered_json index = ordered_json::parse(read_file(kDir + "expected/index.json"));
    RenderOptions options;
    options.clock = pinned_clock;

    int pairs = 0, passed = 0, rendered = 0, errors = 0;
    for (const auto& t : templates["templates"]) {
        std::string stem = t["stem"];
        auto parsed = Template::parse(read_file(kDir + "templates/" + stem + ".jinja"));
        for (const auto& c : cases["cases"]) {
            std::string name = c["name"];
            const ordered_json& want = index["templates"][stem]["cases"][name];
            ++pairs;
            SCOPED_TRACE(stem + " / " + name);
            if (!parsed.ok()) {
                ADD_FAILURE() << "parse failed: " << parsed.error().message;
                continue;
            }
            ChatTemplateInputs in;
            in.messages = c["messages"];
            in.tools = c["tools"];
            in.add_generation_prompt = c["add_generation_prompt"];
            in.extra_kwargs = c["kwargs"].is_object() ? c["kwargs"] : ordered_json::object();
            const ordered_json& tokens = t["special_tokens"];
            if (tokens.contains("bos_token")) in.bos_token = tokens["bos_token"].get<std::string>();
            if (tokens.contains("eos_token")) in.eos_token = tokens["eos_token"].get<std::string>();
            TemplateError err;
            auto out = apply_chat_template(*parsed, in, options, &err);
            if (want["status"] == "ok") {
                ++rendered;
                std::string expected = read_file(kDir + "expected/" + want["file"].get<std::string>());
                if (!out.ok()) {
                    ADD_FAILURE() << "render failed: " << out.error().message;
                } else if (*out != expected) {
                    ADD_FAILURE() << diff_position(*out, expected);
                } else {
                    ++passed;
                }
            } else {
                ++errors;
                if (out.ok()) {
                    ADD_FAILURE() << "rendered, but the reference fails with " << want["error_type"] << ": "
                                  << want["message"];
                } else if (want["error_kind"] == "raise_exception" &&
                           (err.kind != jinja::ErrorKind::raised || err.message != want["message"])) {
                    ADD_FAILURE() << "wrong error: " << out.error().message
                                  << "\nwant raise_exception: " << want["message"];
                } else {
                    ++passed;
                }
            }
        }
    }
    EXPECT_EQ(pairs, 196);
    EXPECT_EQ(rendered, 177);
    EXPECT_EQ(errors, 19);
    EXPECT_EQ(passed, pairs);
    std::printf("golden chat templates: %d/%d pairs pass\n", passed, pairs);
}

}  // namespace
}  // namespace ferry::text
