// What the command line asks a subcommand to do.
//
// The CLI (src/cli/options.cpp) fills one Params from flags, FERRY_ARG_* environment variables and
// positional arguments; each subcommand reads the fields it accepts and ignores the rest. Defaults
// live here, in the member initializers, and `--help` prints them from a default-constructed
// Params, so a default is stated exactly once.
//
// To add a setting: add a field here with its default, then one entry in the option table.
#pragma once

#include <string>
#include <vector>

#include "core/ggml_type.h"
#include "core/log.h"
#include "runtime/sampling.h"

namespace ferry::tools {

struct Params {
    // The subcommand being run ("inspect"); set by the parser, never by a flag.
    std::string subcommand;

    // -m, --model FNAME: path of the GGUF model file. For subcommands whose positional argument is
    // the model (`ferry inspect FILE.gguf`) the parser stores that argument here too.
    std::string model;

    // Positional arguments the subcommand did not map to a field, in command-line order.
    std::vector<std::string> positional;

    // -t, --threads N: CPU threads for generation; -1 = choose from the number of cores.
    int threads = -1;

    // -c, --ctx-size N: context length in tokens; 0 = the model's trained context length.
    int ctx_size = 0;

    // -n, --n-predict N (run, chat): tokens to generate; -1 = until end of generation or a full context.
    int n_predict = -1;

    // -b, --batch-size N: tokens submitted per prefill call; -ub, --ubatch-size N: tokens per forward.
    int n_batch = 2048;
    int n_ubatch = 512;

    // -ctk, --cache-type-k TYPE / -ctv, --cache-type-v TYPE: KV cache storage types (f32, f16, bf16,
    // q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl).
    GgmlType cache_type_k = GgmlType::F16;
    GgmlType cache_type_v = GgmlType::F16;

    // -fa, --flash-attn on|off|auto: ferry's attention is always flash-style (online softmax); as in
    // llama.cpp, "off" forbids a quantized V cache.
    std::string flash_attn = "auto";

    // --backend NAME: "cpu" (default) or "reference" (the scalar oracle, for checking).
    std::string backend = "cpu";

    // Sampling (run, chat): --temp, --top-k, --top-p, --min-p, --typical, --repeat-penalty,
    // --repeat-last-n, --presence-penalty, --frequency-penalty, -s/--seed, --samplers.
    runtime::SamplingParams sampling;

    // --ignore-eos (run): keep generating past end-of-generation tokens.
    bool ignore_eos = false;

    // -sys, --system-prompt TEXT (chat): the system message that opens the conversation.
    std::string system_prompt;

    // --no-mmap: read the model into allocated memory instead of mapping the file.
    bool no_mmap = false;

    // --tensors (inspect): list every tensor, not only the summary.
    bool tensors = false;

    // --json (inspect): print machine-readable JSON instead of text.
    bool json = false;

    // -p, --prompt TEXT (tokenize, run): the text to tokenize or complete.
    std::string prompt;

    // -f, --file FNAME (tokenize, run): read the text from a file instead of -p.
    std::string prompt_file;

    // --ids (tokenize): print only the token ids, as a list.
    bool ids = false;

    // --pieces (tokenize): print each token id with its text.
    bool pieces = false;

    // --show-count (tokenize): print the number of tokens.
    bool show_count = false;

    // --no-bos (tokenize): do not add BOS/EOS even if the vocab asks for them.
    bool no_bos = false;

    // --parse-special (tokenize): control-token text ("<|im_start|>") becomes the control token.
    bool parse_special = false;

    // --chat-template JINJA / --chat-template-file FNAME (template): a template that overrides the
    // model's tokenizer.chat_template.
    std::string chat_template;
    std::string chat_template_file;

    // --messages FNAME (template): JSON file with the OpenAI-style messages array.
    std::string messages_file;

    // --tools FNAME (template): JSON file with the tools array.
    std::string tools_file;

    // --add-generation-prompt (template): end with the assistant turn's opening.
    bool add_generation_prompt = false;

    // --chat-template-kwargs JSON (template): extra template variables, e.g. {"enable_thinking":false}.
    std::string chat_template_kwargs;

    // --special-tokens JSON (template): {"bos_token": "<s>", "eos_token": "</s>"} when no model
    // supplies them; with a model these override the vocab's.
    std::string special_tokens;

    // --template-now "YYYY-MM-DD[ HH:MM[:SS]]" (template): the local time strftime_now() sees, for
    // reproducible prompts; empty = the clock.
    std::string template_now;

    // Server (serve): --host, --port, -np/--parallel, --max-queue, --api-key (repeatable),
    // --api-key-file, --metrics, -a/--alias, --timeout (seconds), --threads-http (-1 = slots + queue + 4).
    std::string host = "127.0.0.1";
    int port = 8080;
    int n_parallel = 4;
    int max_queue = 64;
    std::vector<std::string> api_keys;
    std::string api_key_file;
    bool metrics = false;
    std::string alias;
    int timeout = 600;
    int threads_http = -1;

    // -v / --log-disable: the least severe log level printed (Debug = everything, Off = nothing).
    log::Level log_level = log::Level::Info;
};

}  // namespace ferry::tools
