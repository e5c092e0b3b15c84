// ferry <subcommand> [options]: parse the command line, set up logging, run the subcommand.
#include <cstdio>

#include "cli/options.h"
#include "core/log.h"

int main(int argc, char** argv) {
    const ferry::cli::CommandLine cl{.commands = ferry::cli::subcommands()};
    ferry::cli::ParseOutcome parsed = ferry::cli::parse_args(argc, argv, cl);
    switch (parsed.kind) {
        case ferry::cli::ParseOutcome::Kind::Print: std::fputs(parsed.text.c_str(), stdout); return parsed.exit_code();
        case ferry::cli::ParseOutcome::Kind::Error: std::fputs(parsed.text.c_str(), stderr); return parsed.exit_code();
        case ferry::cli::ParseOutcome::Kind::Run: break;
    }
    ferry::log::set_level(parsed.params.log_level);
    return parsed.command->run(parsed.params);
}
