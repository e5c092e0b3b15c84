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
#include <utility>
#include <vector>

#include "core/ggml_type.h"
#include "core/log.h"
#include "runtime/sampling.h"

namespace ferry::tools {

// ferry bench: llama-bench's test parameters. Every list flag (-m -p -n -pg -d -t -b -ub -ctk -ctv -fa)
// accepts comma lists and repetition ("-p 128,512" == "-p 128 -p 512"); an empty list means the
// default below (see bench.h), and every combination of the lists is one test.
struct BenchParams {
    std::vector<std::string> models;              // -m (repeatable); empty: the default model
    std::vector<int> n_prompt;                    // -p, --n-prompt: default 512; 0 = no pp test
    std::vector<int> n_gen;                       // -n, --n-gen: default 128; 0 = no tg test
    std::vector<std::pair<int, int>> prompt_gen;  // -pg pp,tg: prompt then generation, timed together
    std::vector<int> n_depth;                     // -d, --n-depth: default 0; tokens in the KV cache before a test
    std::vector<int> n_parallel;          // -np, --parallel: sequences decoding side by side in tg tests; default 1
    std::vector<int> threads;             // -t: default one per physical core
    std::vector<int> n_batch;             // -b: default 2048
    std::vector<int> n_ubatch;            // -ub: default 512
    std::vector<GgmlType> type_k;         // -ctk: default f16
    std::vector<GgmlType> type_v;         // -ctv: default f16
    std::vector<std::string> flash_attn;  // -fa: on|off|auto (1 = on, 0 = off); default auto
    int repetitions = 5;                  // -r, --repetitions
    std::string output = "md";            // -o, --output: md|csv|json|jsonl
    bool progress = false;                // --progress: a line on stderr per repetition
    bool bandwidth = false;               // --bandwidth: only measure the memory bandwidth
    double bandwidth_gbs = 0;             // --bandwidth-gbs: use this instead of measuring
    bool vs_llama_cpp = false;            // --vs-llama-cpp: the same tests through llama-cpp-python
};

// ferry bench serve: the seed's chat scenarios against OpenAI-compatible servers (bench_serve.h).
// -r/--repetitions, -o/--output, -n/--n-predict, --api-key and --timeout are shared with other subcommands.
struct BenchServeParams {
    std::string url = "http://127.0.0.1:8080";  // --url: the server's base URL (with or without /v1)
    std::string vs;                             // --vs URL: a second server, run alternately with --url
    std::string model_name;                     // --model-name: "model" in the requests; empty: the server's first
    std::vector<std::string> scenarios;         // --scenarios: short,medium,long,multi-turn; empty: all
    std::vector<int> concurrency;               // --concurrency: clients at once, a comma list; empty: 1
    bool stream = true;                         // --no-stream: the seed's non-streaming requests (no TTFT)
};

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

    // -fa, --flash-attn on|off|auto: which of llama.cpp's CPU attention computations ferry reproduces
    // (runtime::SessionParams::flash_attn); "auto" = on, as llama.cpp decides on a CPU; as in llama.cpp,
    // "off" forbids a quantized V cache.
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

    // -f, --file FNAME (tokenize, run, perplexity): read the text from a file instead of -p.
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

    // Everything only `ferry bench` reads; its list flags share names with run's scalar ones.
    BenchParams bench;
    // Everything only `ferry bench serve` reads.
    BenchServeParams bench_serve;
    // --chunks N (perplexity): evaluate at most N chunks of the text; -1 = all of them.
    int n_chunks = -1;

    // --kl-divergence-base FNAME (perplexity): the base file to write (a PPL run) or, with
    // --kl-divergence, to read.
    std::string kld_base;

    // --kl-divergence (perplexity): compare the model with the base file's log-probabilities.
    bool kl_divergence = false;

    // --kld-format llama|compact (perplexity): layout of the base file written (reading detects it).
    std::string kld_format = "llama";

    // --kld-top-k N (perplexity): log-probabilities kept per token by the compact layout.
    int kld_top_k = 64;

    // --compare-model FNAME (perplexity): the base model, loaded next to -m, instead of a base file.
    std::string compare_model;

    // Server (serve): --host, --port, -np/--parallel, --max-queue, --api-key (repeatable),
    // --api-key-file, --exact-batches, --metrics, -a/--alias, --timeout (seconds), --threads-http (-1 = slots +
    // queue + 4).
    std::string host = "127.0.0.1";
    int port = 8080;
    int n_parallel = 4;
    int max_queue = 64;
    std::vector<std::string> api_keys;
    std::string api_key_file;
    bool exact_batches = false;  // runtime::SessionParams::exact_batches
    bool metrics = false;
    std::string alias;
    int timeout = 600;
    int threads_http = -1;

    // -v / --log-disable: the least severe log level printed (Debug = everything, Off = nothing).
    log::Level log_level = log::Level::Info;
};

}  // namespace ferry::tools
