// The filters, tests, methods and globals a sandboxed transformers environment offers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "text/jinja/interpreter.h"
#include "text/jinja/value.h"

namespace ferry::text::jinja {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);

Value call_filter(Interpreter& in, const std::string& name, const Value& subject, CallArgs& args);
bool call_test(Interpreter& in, const std::string& name, const Value& subject, CallArgs& args);

// `obj.name(args)` for the str/dict/list methods templates use; nullopt when obj has no such
// method (the caller then treats `obj.name` as an attribute). Mutating methods of list and dict
// raise SecurityError, as in jinja2's ImmutableSandboxedEnvironment.
std::optional<Value> call_method(Interpreter& in, const Value& obj, const std::string& name, CallArgs& args);

// range, namespace, dict, raise_exception, strftime_now, joiner, cycler.
std::unordered_map<std::string, Value> make_globals();

}  // namespace ferry::text::jinja
