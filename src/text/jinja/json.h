// Conversion between JSON and template values, and the `tojson` filter transformers installs:
// json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "text/jinja/value.h"

namespace ferry::text::jinja {

// Objects keep their key order. Strings must be valid UTF-8 (checked by the caller).
Value from_json(const nlohmann::ordered_json& j);

struct JsonStyle {
    bool ensure_ascii = false;
    int indent = -1;             // -1: None (one line)
    std::string indent_str;      // used when indent_str is non-empty (indent given as a string)
    std::string item_separator;  // empty: Python's default (", " or "," with indent)
    std::string key_separator;   // empty: ": "
    bool sort_keys = false;
};

// Python json.dumps output; raises TypeError for values JSON cannot hold (undefined, callables).
std::string to_json(const Value& v, const JsonStyle& style, size_t max_bytes);

}  // namespace ferry::text::jinja
