// libFuzzer target for the chat-template engine: any bytes as a template, rendered with a small
// conversation, must render or fail with an error — never crash, hang or blow past the limits.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "text/jinja/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view source(reinterpret_cast<const char*>(data), size);
    auto tmpl = ferry::text::Template::parse(source);
    if (!tmpl.ok()) return 0;
    ferry::text::ChatTemplateInputs in;
    in.messages = nlohmann::ordered_json::parse(
        R"([{"role":"system","content":"be brief"},{"role":"user","content":"hi <b>"},)"
        R"({"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":{"a":1}}}]}])");
    in.add_generation_prompt = true;
    in.bos_token = "<s>";
    ferry::text::RenderOptions options;
    options.limits.max_output_bytes = 1 << 20;
    options.limits.max_loop_iterations = 100000;
    (void)ferry::text::apply_chat_template(*tmpl, in, options);
    return 0;
}
