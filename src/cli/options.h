// The command line: one declarative option table shared by every subcommand.
//
//   ferry <subcommand> [options] [positional...]
//
// Each Option names its flags as llama.cpp spells them ("-m", "--model"), the value it takes ("FNAME";
// empty for a switch), a help line, an environment variable (FERRY_ARG_MODEL), the subcommands that
// accept it and a setter that writes the parsed value into Params. Everything else is derived from
// the table: parsing, `--help` per subcommand, environment fallback, "did you mean" hints.
//
// Rules the parser keeps:
//   - `--name value`, `--name=value`, `-n value` and `-n=value` are the same; switches take no value.
//   - A flag on the command line overrides its environment variable; the environment is read only
//     for options the subcommand accepts, and an empty variable counts as unset.
//   - A later repetition of a flag overrides an earlier one. `--` ends the options.
//   - `-h`/`--help` anywhere before `--` prints the subcommand's help and nothing else happens.
//   - Every usage error is one line naming the offending argument, and exits with code 2.
//
// Names and environment variables are unique across the whole table, so a flag means the same
// thing in every subcommand (validate_table checks this; a unit test runs it on the real table).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "tools/params.h"

namespace ferry::cli {

using tools::Params;

// A set of subcommands, one bit each; an option lists the subcommands that accept it.
using CommandSet = uint32_t;
namespace cmd {
inline constexpr CommandSet inspect = 1u << 0;
inline constexpr CommandSet tokenize = 1u << 1;
inline constexpr CommandSet chat_template = 1u << 2;  // `ferry template`
inline constexpr CommandSet run = 1u << 3;
inline constexpr CommandSet chat = 1u << 4;
inline constexpr CommandSet bench = 1u << 5;
inline constexpr CommandSet perplexity = 1u << 6;
inline constexpr CommandSet serve = 1u << 7;
inline constexpr CommandSet bench_serve = 1u << 8;  // `ferry bench serve`
inline constexpr CommandSet all = ~CommandSet{0};
}  // namespace cmd

// What a subcommand's positional arguments mean.
enum class Positional {
    None,   // none allowed
    Model,  // at most one: the model file, instead of -m (both at once is an error). Optional:
            // without either, Params::model stays empty and the subcommand picks its default.
    Args,   // any number, collected in Params::positional
};

struct Subcommand {
    std::string_view name = {};        // "inspect"
    CommandSet id = 0;                 // exactly one bit
    std::string_view summary = {};     // one line for `ferry --help`
    std::string_view usage_tail = {};  // after "[options]" in the usage line: "[FILE.gguf]"
    Positional positional = Positional::None;
    int (*run)(const Params&) = nullptr;
};

// Setters get the value as typed and return an error that explains what was expected
// ("expected an integer"); the parser adds which flag or variable it came from.
using ValueSetter = Status (*)(Params& params, std::string_view value);
using SwitchSetter = void (*)(Params& params, bool on);
// Renders an option's default from a default-constructed Params, for --help.
using DefaultText = std::string (*)(const Params& defaults);

struct Option {
    std::string_view group = {};               // help section: "model", "logging", ...
    std::vector<std::string_view> names = {};  // short first: {"-m", "--model"}
    std::string_view hint = {};                // value placeholder: "FNAME", "N"; empty for a switch
    std::string_view help = {};
    std::string_view env = {};  // "FERRY_ARG_MODEL"; empty: none
    CommandSet commands = 0;
    // Exactly one of the next three: a value option, a switch, or the help request.
    ValueSetter set_value = nullptr;
    SwitchSetter set_switch = nullptr;
    bool is_help = false;
    DefaultText show_default = nullptr;  // optional
};

// The option table of ferry.
std::span<const Option> options();

// The options only `ferry bench serve` has (options_bench_serve.cpp); options() includes them.
std::vector<Option> bench_serve_options();

// The subcommands of ferry (commands.cpp).
std::span<const Subcommand> subcommands();

// Checks a table against the rules above: unique names and variables, names that start with '-',
// a value hint exactly for value options, commands that exist, one action per option.
Status validate_table(std::span<const Option> table, std::span<const Subcommand> commands);

// Reads an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvLookup process_env();

// Everything the parser needs; tests substitute their own tables and environment.
struct CommandLine {
    std::span<const Subcommand> commands;
    std::span<const Option> options = cli::options();
    EnvLookup env = process_env();
};

struct ParseOutcome {
    enum class Kind {
        Run,    // run `command` with `params`
        Print,  // print `text` on stdout and exit 0 (help, version)
        Error,  // print `text` (one line) on stderr and exit 2
    };
    Kind kind = Kind::Error;
    const Subcommand* command = nullptr;  // Run only
    Params params;                        // Run only
    std::string text;                     // Print/Error, newline-terminated

    int exit_code() const { return kind == Kind::Error ? 2 : 0; }
};

// args excludes the program name.
ParseOutcome parse_args(std::span<const std::string> args, const CommandLine& cl);
ParseOutcome parse_args(int argc, const char* const* argv, const CommandLine& cl);

// `ferry --help`: the list of subcommands.
std::string format_overview(const CommandLine& cl);
// `ferry <subcommand> --help`: usage and every option the subcommand accepts, grouped.
std::string format_help(const Subcommand& command, const CommandLine& cl);

// Value parsers for setters. parse_int accepts a decimal integer in [min, max], nothing else.
Result<int> parse_int(std::string_view text, int min, int max);
// A finite decimal number in [min, max] ("0.8", "1e-3").
Result<float> parse_float(std::string_view text, double min, double max);
Result<long long> parse_int64(std::string_view text, long long min, long long max);
// "%g" of a number, for defaults in --help.
std::string format_float(double v);

// A KV cache type as llama.cpp's -ctk/-ctv spell it ("q8_0", "f16"), and back in lower case.
Result<GgmlType> parse_cache_type(std::string_view text);
std::string lowercase_type(GgmlType type);

// A comma list ("128,512"), each item parsed by `one`; appended to `out`. Empty items are errors.
template <class T, class F>
Status append_list(std::vector<T>& out, std::string_view text, F one) {
    size_t pos = 0, index = 1;
    while (true) {
        const size_t comma = text.find(',', pos);
        const std::string_view item = text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
        if (item.empty()) return make_error("item " + std::to_string(index) + " of the comma list is empty");
        Result<T> v = one(item);
        if (!v.ok()) return make_error("item " + std::to_string(index) + ": " + v.error().message);
        out.push_back(std::move(v).value());
        if (comma == std::string_view::npos) return {};
        pos = comma + 1;
        ++index;
    }
}

// 1/0, true/false, on/off, yes/no, case-insensitive (for switches set from the environment).
Result<bool> parse_bool(std::string_view text);

// Edits (insert, delete, substitute, swap two adjacent characters) that turn a into b, for
// "did you mean" hints. Optimal string alignment: no substring is edited twice.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace ferry::cli
