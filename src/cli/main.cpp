// ferry <subcommand> [options]: parse the command line, set up logging, run the subcommand.
#include <cstdio>

#include "cli/options.h"
#include "core/log.h"
#include "tools/tools.h"

namespace {

using ferry::cli::Positional;
using ferry::cli::Subcommand;
namespace cmd = ferry::cli::cmd;

// Every subcommand, in the order `ferry --help` lists them. Its options are the table entries
// whose `commands` include its bit (src/cli/options.cpp).
constexpr Subcommand kSubcommands[] = {
    {
        .name = "inspect",
        .id = cmd::inspect,
        .summary = "print a GGUF file's metadata, tensors and sizes",
        .usage_tail = "[FILE.gguf]",
        .positional = Positional::Model,
        .run = ferry::tools::run_inspect,
    },
};

}  // namespace

int main(int argc, char** argv) {
    const ferry::cli::CommandLine cl{.commands = kSubcommands};
    ferry::cli::ParseOutcome parsed = ferry::cli::parse_args(argc, argv, cl);
    switch (parsed.kind) {
        case ferry::cli::ParseOutcome::Kind::Print: std::fputs(parsed.text.c_str(), stdout); return parsed.exit_code();
        case ferry::cli::ParseOutcome::Kind::Error: std::fputs(parsed.text.c_str(), stderr); return parsed.exit_code();
        case ferry::cli::ParseOutcome::Kind::Run: break;
    }
    ferry::log::set_level(parsed.params.log_level);
    return parsed.command->run(parsed.params);
}
