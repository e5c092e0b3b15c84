// Every subcommand of ferry, in the order `ferry --help` lists them.
#include "cli/options.h"
#include "tools/tools.h"

namespace ferry::cli {
namespace {

// Its options are the table entries whose `commands` include its bit (options.cpp).
constexpr Subcommand kSubcommands[] = {
    {
        .name = "inspect",
        .id = cmd::inspect,
        .summary = "print a GGUF file's metadata, tensors and sizes",
        .usage_tail = "[FILE.gguf]",
        .positional = Positional::Model,
        .run = tools::run_inspect,
    },
    {
        .name = "run",
        .id = cmd::run,
        .summary = "complete a prompt, streaming the text as it is generated",
        .usage_tail = "-p PROMPT | -f FILE",
        .positional = Positional::None,
        .run = tools::run_run,
    },
    {
        .name = "chat",
        .id = cmd::chat,
        .summary = "chat with a model in the terminal, using its chat template",
        .usage_tail = "",
        .positional = Positional::None,
        .run = tools::run_chat,
    },
    {
        .name = "bench",
        .id = cmd::bench,
        .summary = "measure prompt and generation speed like llama-bench, against the memory bandwidth",
        .usage_tail = "",
        .positional = Positional::None,
        .run = tools::run_bench,
    },
    {
        .name = "bench serve",
        .id = cmd::bench_serve,
        .summary = "measure an OpenAI-compatible server with the seed's chat scenarios (TTFT, tok/s, --vs)",
        .usage_tail = "[--url URL] [--vs URL]",
        .positional = Positional::None,
        .run = tools::run_bench_serve,
    },
    {
        .name = "serve",
        .id = cmd::serve,
        .summary = "serve the model over an OpenAI-compatible HTTP API (llama-server's flags)",
        .usage_tail = "",
        .positional = Positional::None,
        .run = tools::run_serve,
    },
    {
        .name = "tokenize",
        .id = cmd::tokenize,
        .summary = "print the token ids of a text with a model's tokenizer",
        .usage_tail = "-p TEXT | -f FILE",
        .positional = Positional::None,
        .run = tools::run_tokenize,
    },
    {
        .name = "template",
        .id = cmd::chat_template,
        .summary = "render a chat template for a conversation, exactly as the model will see it",
        .usage_tail = "--messages FILE.json",
        .positional = Positional::None,
        .run = tools::run_template,
    },
    {
        .name = "perplexity",
        .id = cmd::perplexity,
        .summary = "perplexity and KL divergence, as llama-perplexity measures them",
        .usage_tail = "-f TEXT | --kl-divergence --kl-divergence-base FILE",
        .positional = Positional::None,
        .run = tools::run_perplexity,
    },
};

}  // namespace

std::span<const Subcommand> subcommands() { return kSubcommands; }

}  // namespace ferry::cli
