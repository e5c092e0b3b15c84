#include "cli/options.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace ferry::cli {
namespace {

// Items of ferry bench's comma lists.
Result<int> bench_count(std::string_view v) { return parse_int(v, 0, 1 << 24); }

template <int kMax>
Result<int> positive_int(std::string_view v) {
    return parse_int(v, 1, kMax);
}

// llama-bench spells flash attention 1/0, llama-server on/off/auto; both are accepted.
Result<std::string> parse_flash_attn(std::string_view v) {
    if (v == "1" || v == "on") return std::string("on");
    if (v == "0" || v == "off") return std::string("off");
    if (v == "auto") return std::string("auto");
    return make_error("expected on, off, auto, 1 or 0");
}

// -pg "512,128": one prompt+generation pair (repeat the flag for more).
Status set_prompt_gen(Params& p, std::string_view v) {
    std::vector<int> pair;
    if (Status st = append_list(pair, v, bench_count); !st.ok()) return st;
    if (pair.size() != 2) return make_error("expected two numbers, PP,TG");
    p.bench.prompt_gen.emplace_back(pair[0], pair[1]);
    return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The table. Order matters only for --help: groups appear in the order of their first option.

std::span<const Option> options() {
    static const std::vector<Option> base = {
        {
            .group = "general",
            .names = {"-h", "--help"},
            .help = "print this help and exit",
            .commands = cmd::all,
            .is_help = true,
        },
        {
            .group = "model",
            .names = {"-m", "--model"},
            .hint = "FNAME",
            .help = "path of the GGUF model file (bench: repeatable)",
            .env = "FERRY_ARG_MODEL",
            .commands = cmd::inspect | cmd::tokenize | cmd::chat_template | cmd::run | cmd::chat | cmd::bench |
                        cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.model = std::string(v);
                if (p.subcommand == "bench") p.bench.models.push_back(p.model);
                return {};
            },
        },
        {
            .group = "model",
            .names = {"--no-mmap"},
            .help = "read the model into memory instead of mapping the file",
            .env = "FERRY_ARG_NO_MMAP",
            .commands = cmd::inspect | cmd::tokenize | cmd::chat_template | cmd::run | cmd::chat | cmd::bench |
                        cmd::perplexity | cmd::serve,
            .set_switch = [](Params& p, bool on) { p.no_mmap = on; },
        },
        {
            .group = "output",
            .names = {"--tensors"},
            .help = "list every tensor with its type, shape and size",
            .env = "FERRY_ARG_TENSORS",
            .commands = cmd::inspect,
            .set_switch = [](Params& p, bool on) { p.tensors = on; },
        },
        {
            .group = "output",
            .names = {"--json"},
            .help = "print JSON instead of text",
            .env = "FERRY_ARG_JSON",
            .commands = cmd::inspect,
            .set_switch = [](Params& p, bool on) { p.json = on; },
        },
        {
            .group = "input",
            .names = {"-p", "--prompt"},
            .hint = "TEXT",
            .help = "text to tokenize (tokenize) or prompt to complete (run); bench: prompt lengths to time, a comma "
                    "list (default 512; 0 = none)",
            .env = "FERRY_ARG_PROMPT",
            .commands = cmd::tokenize | cmd::run | cmd::bench,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.n_prompt, v, bench_count);
                p.prompt = std::string(v);
                return {};
            },
        },
        {
            .group = "input",
            .names = {"-f", "--file"},
            .hint = "FNAME",
            .help = "read the text from a file",
            .env = "FERRY_ARG_FILE",
            .commands = cmd::tokenize | cmd::run | cmd::perplexity,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.prompt_file = std::string(v);
                return {};
            },
        },
        {
            .group = "input",
            .names = {"--no-bos"},
            .help = "do not add BOS/EOS tokens even if the vocabulary asks for them",
            .env = "FERRY_ARG_NO_BOS",
            .commands = cmd::tokenize,
            .set_switch = [](Params& p, bool on) { p.no_bos = on; },
        },
        {
            .group = "input",
            .names = {"--parse-special"},
            .help = "turn control-token text such as <|im_start|> into the control token",
            .env = "FERRY_ARG_PARSE_SPECIAL",
            .commands = cmd::tokenize,
            .set_switch = [](Params& p, bool on) { p.parse_special = on; },
        },
        {
            .group = "output",
            .names = {"--ids"},
            .help = "print only the token ids, as a list",
            .env = "FERRY_ARG_IDS",
            .commands = cmd::tokenize,
            .set_switch = [](Params& p, bool on) { p.ids = on; },
        },
        {
            .group = "output",
            .names = {"--pieces"},
            .help = "print each token id with its text, one per line",
            .env = "FERRY_ARG_PIECES",
            .commands = cmd::tokenize,
            .set_switch = [](Params& p, bool on) { p.pieces = on; },
        },
        {
            .group = "output",
            .names = {"--show-count"},
            .help = "print the number of tokens",
            .env = "FERRY_ARG_SHOW_COUNT",
            .commands = cmd::tokenize,
            .set_switch = [](Params& p, bool on) { p.show_count = on; },
        },
        {
            .group = "generation",
            .names = {"-n", "--n-predict"},
            .hint = "N",
            .help = "tokens to generate; -1 = until end of generation or a full context (bench: generation lengths to "
                    "time, a comma list; 0 = none; bench serve: max_tokens of each request)",
            .env = "FERRY_ARG_N_PREDICT",
            .commands = cmd::run | cmd::chat | cmd::bench | cmd::serve | cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.n_gen, v, bench_count);
                FERRY_ASSIGN(p.n_predict, parse_int(v, -1, 1 << 30));
                return {};
            },
            .show_default =
                [](const Params& p) {
                    if (p.subcommand == "bench serve" && p.n_predict < 0) return std::string("256");
                    return p.subcommand == "bench" ? std::string("128") : std::to_string(p.n_predict);
                },
        },
        {
            .group = "context",
            .names = {"-c", "--ctx-size"},
            .hint = "N",
            .help = "context size in tokens; 0 = the model's training context (inspect: for the memory estimate; "
                    "perplexity: 512, the chunk size)",
            .env = "FERRY_ARG_CTX_SIZE",
            .commands = cmd::inspect | cmd::run | cmd::chat | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.ctx_size, parse_int(v, 0, 1 << 24));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.ctx_size); },
        },
        {
            .group = "context",
            .names = {"-b", "--batch-size"},
            .hint = "N",
            .help = "prompt tokens submitted per prefill call (perplexity: N / ctx-size chunks side by side; bench: "
                    "a comma list)",
            .env = "FERRY_ARG_BATCH",
            .commands = cmd::run | cmd::chat | cmd::bench | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.n_batch, v, positive_int<1 << 20>);
                FERRY_ASSIGN(p.n_batch, parse_int(v, 1, 1 << 20));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.n_batch); },
        },
        {
            .group = "context",
            .names = {"-ub", "--ubatch-size"},
            .hint = "N",
            .help = "tokens per forward pass (micro-batch; bench: a comma list)",
            .env = "FERRY_ARG_UBATCH",
            .commands = cmd::run | cmd::chat | cmd::bench | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.n_ubatch, v, positive_int<1 << 16>);
                FERRY_ASSIGN(p.n_ubatch, parse_int(v, 1, 1 << 16));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.n_ubatch); },
        },
        {
            .group = "compute",
            .names = {"-t", "--threads"},
            .hint = "N",
            .help = "CPU threads; -1 = one per physical core (bench: a comma list of counts)",
            .env = "FERRY_ARG_THREADS",
            .commands = cmd::run | cmd::chat | cmd::bench | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.threads, v, positive_int<4096>);
                FERRY_ASSIGN(p.threads, parse_int(v, -1, 4096));
                return {};
            },
            .show_default =
                [](const Params& p) { return p.threads < 0 ? std::string("auto") : std::to_string(p.threads); },
        },
        {
            .group = "context",
            .names = {"-ctk", "--cache-type-k"},
            .hint = "TYPE",
            .help = "KV cache type for K: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl (bench: a comma list)",
            .env = "FERRY_ARG_CACHE_TYPE_K",
            .commands = cmd::inspect | cmd::run | cmd::chat | cmd::bench | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.type_k, v, parse_cache_type);
                FERRY_ASSIGN(p.cache_type_k, parse_cache_type(v));
                return {};
            },
            .show_default = [](const Params& p) { return lowercase_type(p.cache_type_k); },
        },
        {
            .group = "context",
            .names = {"-ctv", "--cache-type-v"},
            .hint = "TYPE",
            .help = "KV cache type for V (a quantized V needs flash attention): same types as -ctk",
            .env = "FERRY_ARG_CACHE_TYPE_V",
            .commands = cmd::inspect | cmd::run | cmd::chat | cmd::bench | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.type_v, v, parse_cache_type);
                FERRY_ASSIGN(p.cache_type_v, parse_cache_type(v));
                return {};
            },
            .show_default = [](const Params& p) { return lowercase_type(p.cache_type_v); },
        },
        {
            .group = "context",
            .names = {"-fa", "--flash-attn"},
            .hint = "on|off|auto",
            .help = "attention computed as llama.cpp's CPU backend does: 'on' its flash-attention kernels, 'off' "
                    "mul_mat + softmax (a quantized V cache needs 'on'), 'auto' = on; 1/0 mean on/off (bench: a "
                    "comma list)",
            .env = "FERRY_ARG_FLASH_ATTN",
            .commands = cmd::run | cmd::chat | cmd::bench | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.flash_attn, v, parse_flash_attn);
                FERRY_ASSIGN(p.flash_attn, parse_flash_attn(v));
                return {};
            },
            .show_default = [](const Params& p) { return p.flash_attn; },
        },
        {
            .group = "bench",
            .names = {"-pg"},
            .hint = "PP,TG",
            .help = "also time a prompt of PP tokens followed by TG generated ones, together (repeatable)",
            .env = "FERRY_ARG_PROMPT_GEN",
            .commands = cmd::bench,
            .set_value = set_prompt_gen,
        },
        {
            .group = "bench",
            .names = {"-d", "--n-depth"},
            .hint = "N",
            .help = "tokens already in the KV cache before each test, a comma list (default 0)",
            .env = "FERRY_ARG_N_DEPTH",
            .commands = cmd::bench,
            .set_value = [](Params& p, std::string_view v) -> Status {
                return append_list(p.bench.n_depth, v, bench_count);
            },
        },
        {
            .group = "bench",
            .names = {"-r", "--repetitions"},
            .hint = "N",
            .help = "times each test is repeated (bench serve: runs per scenario, the first is discarded)",
            .env = "FERRY_ARG_REPETITIONS",
            .commands = cmd::bench | cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.bench.repetitions, parse_int(v, 1, 1000));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.bench.repetitions); },
        },
        {
            .group = "bench",
            .names = {"-o", "--output"},
            .hint = "md|csv|json|jsonl",
            .help = "output format on stdout (llama-bench's column names; bench serve: md or json)",
            .env = "FERRY_ARG_OUTPUT",
            .commands = cmd::bench | cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench serve" && v != "md" && v != "json") return make_error("expected md or json");
                if (v != "md" && v != "csv" && v != "json" && v != "jsonl") {
                    return make_error("expected md, csv, json or jsonl");
                }
                p.bench.output = std::string(v);
                return {};
            },
            .show_default = [](const Params& p) { return p.bench.output; },
        },
        {
            .group = "bench",
            .names = {"--progress"},
            .help = "print a progress line on stderr for each repetition",
            .env = "FERRY_ARG_PROGRESS",
            .commands = cmd::bench,
            .set_switch = [](Params& p, bool on) { p.bench.progress = on; },
        },
        {
            .group = "bench",
            .names = {"--bandwidth"},
            .help = "only measure the machine's memory bandwidth (read-only sum and triad, all threads) and print it",
            .env = "FERRY_ARG_BANDWIDTH",
            .commands = cmd::bench,
            .set_switch = [](Params& p, bool on) { p.bench.bandwidth = on; },
        },
        {
            .group = "bench",
            .names = {"--bandwidth-gbs"},
            .hint = "GB/s",
            .help = "the 100% line of the bandwidth column, instead of measuring it (0 = measure once per run)",
            .env = "FERRY_ARG_BANDWIDTH_GBS",
            .commands = cmd::bench,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(const float gbs, parse_float(v, 0, 1e6));
                p.bench.bandwidth_gbs = gbs;
                return {};
            },
        },
        {
            .group = "bench",
            .names = {"--vs-llama-cpp"},
            .help = "run the same tests through llama-cpp-python (interleaved repetitions) and add the ratio "
                    "ferry/llama.cpp; python from $FERRY_PYTHON, ./.venv/bin/python or python3",
            .env = "FERRY_ARG_VS_LLAMA_CPP",
            .commands = cmd::bench,
            .set_switch = [](Params& p, bool on) { p.bench.vs_llama_cpp = on; },
        },
        {
            .group = "compute",
            .names = {"--backend"},
            .hint = "NAME",
            .help = "cpu (fast kernels) or reference (the scalar oracle, for checking)",
            .env = "FERRY_ARG_BACKEND",
            .commands = cmd::run | cmd::chat | cmd::perplexity | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v != "cpu" && v != "reference") return make_error("expected cpu or reference");
                p.backend = std::string(v);
                return {};
            },
            .show_default = [](const Params& p) { return p.backend; },
        },
        {
            .group = "perplexity",
            .names = {"--chunks"},
            .hint = "N",
            .help = "evaluate at most N chunks; -1 = all",
            .env = "FERRY_ARG_CHUNKS",
            .commands = cmd::perplexity,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.n_chunks, parse_int(v, -1, 1 << 30));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.n_chunks); },
        },
        {
            .group = "perplexity",
            .names = {"--kl-divergence-base", "--save-all-logits"},
            .hint = "FNAME",
            .help = "base file of log-probabilities: written by a PPL run, read with --kl-divergence",
            .env = "FERRY_ARG_KL_DIVERGENCE_BASE",
            .commands = cmd::perplexity,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.kld_base = std::string(v);
                return {};
            },
        },
        {
            .group = "perplexity",
            .names = {"--kl-divergence"},
            .help = "compare the model with the base file's log-probabilities (KLD, Δp, same top)",
            .env = "FERRY_ARG_KL_DIVERGENCE",
            .commands = cmd::perplexity,
            .set_switch = [](Params& p, bool on) { p.kl_divergence = on; },
        },
        {
            .group = "perplexity",
            .names = {"--kld-format"},
            .hint = "llama|compact",
            .help = "layout of the base file written: llama.cpp's, or ferry's top-k (about 0.1% of the size); "
                    "reading detects it",
            .env = "FERRY_ARG_KLD_FORMAT",
            .commands = cmd::perplexity,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v != "llama" && v != "compact") return make_error("expected llama or compact");
                p.kld_format = std::string(v);
                return {};
            },
            .show_default = [](const Params& p) { return p.kld_format; },
        },
        {
            .group = "perplexity",
            .names = {"--kld-top-k"},
            .hint = "N",
            .help = "log-probabilities kept per token by the compact layout (1 ... min(4096, vocabulary))",
            .env = "FERRY_ARG_KLD_TOP_K",
            .commands = cmd::perplexity,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.kld_top_k, parse_int(v, -(1 << 30), 1 << 30));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.kld_top_k); },
        },
        {
            .group = "perplexity",
            .names = {"--compare-model"},
            .hint = "FNAME",
            .help = "base model loaded next to -m: the KL-divergence statistics with no base file",
            .env = "FERRY_ARG_COMPARE_MODEL",
            .commands = cmd::perplexity,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.compare_model = std::string(v);
                return {};
            },
        },
        {
            .group = "sampling",
            .names = {"--temp"},
            .hint = "F",
            .help = "temperature; <= 0 = greedy (argmax)",
            .env = "FERRY_ARG_TEMP",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.temp, parse_float(v, -1e6, 1e6));
                return {};
            },
            .show_default = [](const Params& p) { return format_float(p.sampling.temp); },
        },
        {
            .group = "sampling",
            .names = {"--top-k"},
            .hint = "N",
            .help = "keep the k most likely tokens; 0 = off",
            .env = "FERRY_ARG_TOP_K",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.top_k, parse_int(v, 0, 1 << 30));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.sampling.top_k); },
        },
        {
            .group = "sampling",
            .names = {"--top-p"},
            .hint = "F",
            .help = "nucleus: smallest set with this probability mass; 1 = off",
            .env = "FERRY_ARG_TOP_P",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.top_p, parse_float(v, 0, 1));
                return {};
            },
            .show_default = [](const Params& p) { return format_float(p.sampling.top_p); },
        },
        {
            .group = "sampling",
            .names = {"--min-p"},
            .hint = "F",
            .help = "drop tokens below this fraction of the top probability; 0 = off",
            .env = "FERRY_ARG_MIN_P",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.min_p, parse_float(v, 0, 1));
                return {};
            },
            .show_default = [](const Params& p) { return format_float(p.sampling.min_p); },
        },
        {
            .group = "sampling",
            .names = {"--typical"},
            .hint = "F",
            .help = "locally typical sampling mass; 1 = off",
            .env = "FERRY_ARG_TYPICAL",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.typical_p, parse_float(v, 0, 1));
                return {};
            },
            .show_default = [](const Params& p) { return format_float(p.sampling.typical_p); },
        },
        {
            .group = "sampling",
            .names = {"--repeat-penalty"},
            .hint = "F",
            .help = "penalize repeated tokens; 1 = off",
            .env = "FERRY_ARG_REPEAT_PENALTY",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.repeat_penalty, parse_float(v, 0, 1e6));
                return {};
            },
            .show_default = [](const Params& p) { return format_float(p.sampling.repeat_penalty); },
        },
        {
            .group = "sampling",
            .names = {"--repeat-last-n"},
            .hint = "N",
            .help = "tokens the penalties look back over; 0 = off, -1 = context size",
            .env = "FERRY_ARG_REPEAT_LAST_N",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.repeat_last_n, parse_int(v, -1, 1 << 24));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.sampling.repeat_last_n); },
        },
        {
            .group = "sampling",
            .names = {"--presence-penalty"},
            .hint = "F",
            .help = "subtracted once from each token already present; 0 = off",
            .env = "FERRY_ARG_PRESENCE_PENALTY",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.presence_penalty, parse_float(v, -1e6, 1e6));
                return {};
            },
            .show_default = [](const Params& p) { return format_float(p.sampling.presence_penalty); },
        },
        {
            .group = "sampling",
            .names = {"--frequency-penalty"},
            .hint = "F",
            .help = "subtracted per occurrence of a token; 0 = off",
            .env = "FERRY_ARG_FREQUENCY_PENALTY",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.frequency_penalty, parse_float(v, -1e6, 1e6));
                return {};
            },
            .show_default = [](const Params& p) { return format_float(p.sampling.frequency_penalty); },
        },
        {
            .group = "sampling",
            .names = {"-s", "--seed"},
            .hint = "N",
            .help = "random seed; -1 = pick one (printed at the end)",
            .env = "FERRY_ARG_SEED",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v == "-1") {
                    p.sampling.seed = runtime::kRandomSeed;
                    return {};
                }
                FERRY_ASSIGN(const long long seed, parse_int64(v, 0, 0xFFFFFFFEll));
                p.sampling.seed = uint32_t(seed);
                return {};
            },
            .show_default = [](const Params&) { return std::string("-1"); },
        },
        {
            .group = "sampling",
            .names = {"--samplers"},
            .hint = "LIST",
            .help = "sampler order, ';'-separated: penalties;top_k;typical_p;top_p;min_p;temperature",
            .env = "FERRY_ARG_SAMPLERS",
            .commands = cmd::run | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.sampling.order, runtime::parse_sampler_order(v));
                return {};
            },
        },
        {
            .group = "generation",
            .names = {"--ignore-eos"},
            .help = "keep generating past end-of-generation tokens",
            .env = "FERRY_ARG_IGNORE_EOS",
            .commands = cmd::run | cmd::serve,
            .set_switch = [](Params& p, bool on) { p.ignore_eos = on; },
        },
        {
            .group = "generation",
            .names = {"-sys", "--system-prompt"},
            .hint = "TEXT",
            .help = "system message that opens the conversation",
            .env = "FERRY_ARG_SYSTEM_PROMPT",
            .commands = cmd::chat,
            .set_value = [](Params& p, std::string_view v) -> Status {
                p.system_prompt = std::string(v);
                return {};
            },
        },
        {
            .group = "template",
            .names = {"--chat-template"},
            .hint = "JINJA",
            .help = "chat template source, overriding the model's tokenizer.chat_template",
            .env = "FERRY_ARG_CHAT_TEMPLATE",
            .commands = cmd::chat_template | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                p.chat_template = std::string(v);
                return {};
            },
        },
        {
            .group = "template",
            .names = {"--chat-template-file"},
            .hint = "FNAME",
            .help = "read the chat template from a file, overriding the model's",
            .env = "FERRY_ARG_CHAT_TEMPLATE_FILE",
            .commands = cmd::chat_template | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.chat_template_file = std::string(v);
                return {};
            },
        },
        {
            .group = "template",
            .names = {"--messages"},
            .hint = "FNAME",
            .help = "JSON file holding the messages array (OpenAI chat format)",
            .env = "FERRY_ARG_MESSAGES",
            .commands = cmd::chat_template,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.messages_file = std::string(v);
                return {};
            },
        },
        {
            .group = "template",
            .names = {"--tools"},
            .hint = "FNAME",
            .help = "JSON file holding the tools array",
            .env = "FERRY_ARG_TOOLS",
            .commands = cmd::chat_template,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.tools_file = std::string(v);
                return {};
            },
        },
        {
            .group = "template",
            .names = {"--add-generation-prompt"},
            .help = "end the prompt with the opening of the assistant's turn",
            .env = "FERRY_ARG_ADD_GENERATION_PROMPT",
            .commands = cmd::chat_template,
            .set_switch = [](Params& p, bool on) { p.add_generation_prompt = on; },
        },
        {
            .group = "template",
            .names = {"--chat-template-kwargs"},
            .hint = "JSON",
            .help = "extra template variables as a JSON object, e.g. '{\"enable_thinking\":false}'",
            .env = "FERRY_ARG_CHAT_TEMPLATE_KWARGS",
            .commands = cmd::chat_template | cmd::chat | cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                p.chat_template_kwargs = std::string(v);
                return {};
            },
        },
        {
            .group = "template",
            .names = {"--special-tokens"},
            .hint = "JSON",
            .help = "special-token strings as JSON, e.g. '{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}'; "
                    "without -m these are the only ones the template sees",
            .env = "FERRY_ARG_SPECIAL_TOKENS",
            .commands = cmd::chat_template,
            .set_value = [](Params& p, std::string_view v) -> Status {
                p.special_tokens = std::string(v);
                return {};
            },
        },
        {
            .group = "template",
            .names = {"--template-now"},
            .hint = "TIME",
            .help = "local time that strftime_now() returns, \"YYYY-MM-DD[ HH:MM[:SS]]\" (reproducible prompts)",
            .env = "FERRY_ARG_TEMPLATE_NOW",
            .commands = cmd::chat_template,
            .set_value = [](Params& p, std::string_view v) -> Status {
                p.template_now = std::string(v);
                return {};
            },
        },
        {
            .group = "server",
            .names = {"--host"},
            .hint = "HOST",
            .help = "address to listen on",
            .env = "FERRY_ARG_HOST",
            .commands = cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected an address");
                p.host = std::string(v);
                return {};
            },
            .show_default = [](const Params& p) { return p.host; },
        },
        {
            .group = "server",
            .names = {"--port"},
            .hint = "PORT",
            .help = "port to listen on (0: any free port, printed at start)",
            .env = "FERRY_ARG_PORT",
            .commands = cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.port, parse_int(v, 0, 65535));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.port); },
        },
        {
            .group = "server",
            .names = {"-np", "--parallel"},
            .hint = "N",
            .help = "slots: requests served at once; the context (-c) is split evenly between them (bench: "
                    "generation tests with N sequences decoding side by side, one batched step per token of each, "
                    "t/s their aggregate; a comma list)",
            .env = "FERRY_ARG_N_PARALLEL",
            .commands = cmd::serve | cmd::bench,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (p.subcommand == "bench") return append_list(p.bench.n_parallel, v, positive_int<256>);
                FERRY_ASSIGN(p.n_parallel, parse_int(v, 1, 256));
                return {};
            },
            .show_default =
                [](const Params& p) {
                    return p.subcommand == "bench" ? std::string("1") : std::to_string(p.n_parallel);
                },
        },
        {
            .group = "server",
            .names = {"--max-queue"},
            .hint = "N",
            .help = "requests that may wait for a slot; beyond this the server answers 503 with Retry-After",
            .env = "FERRY_ARG_MAX_QUEUE",
            .commands = cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.max_queue, parse_int(v, 0, 1 << 20));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.max_queue); },
        },
        {
            .group = "server",
            .names = {"--jinja"},
            .help = "format chat requests with the model's Jinja chat template (always on; accepted for "
                    "llama-server compatibility)",
            .env = "FERRY_ARG_JINJA",
            .commands = cmd::serve,
            .set_switch = [](Params&, bool) {},
        },
        {
            .group = "server",
            .names = {"--api-key"},
            .hint = "KEY",
            .help = "API key clients must send (Authorization: Bearer KEY); repeat for several keys (bench serve: "
                    "the key to send)",
            .env = "FERRY_ARG_API_KEY",
            .commands = cmd::serve | cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a non-empty key");
                p.api_keys.emplace_back(v);
                return {};
            },
        },
        {
            .group = "server",
            .names = {"--api-key-file"},
            .hint = "FNAME",
            .help = "file with one API key per line (blank lines and lines starting with # are skipped)",
            .env = "FERRY_ARG_API_KEY_FILE",
            .commands = cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a file name");
                p.api_key_file = std::string(v);
                return {};
            },
        },
        {
            .group = "server",
            .names = {"--exact-batches"},
            .help = "steps of several sequences in ggml's float order, each sequence's logits bit-identical to what "
                    "it gets alone (default: a faster order for Q4_1 and Q8_0 weights, which sums each block's "
                    "integer products before converting; the logits differ by roundings only)",
            .env = "FERRY_ARG_EXACT_BATCHES",
            .commands = cmd::serve,
            .set_switch = [](Params& p, bool on) { p.exact_batches = on; },
        },
        {
            .group = "server",
            .names = {"--metrics"},
            .help = "serve Prometheus metrics at /metrics",
            .env = "FERRY_ARG_METRICS",
            .commands = cmd::serve,
            .set_switch = [](Params& p, bool on) { p.metrics = on; },
        },
        {
            .group = "server",
            .names = {"-a", "--alias"},
            .hint = "NAME",
            .help = "model name reported by /v1/models and in responses (default: the model's path)",
            .env = "FERRY_ARG_ALIAS",
            .commands = cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                p.alias = std::string(v);
                return {};
            },
        },
        {
            .group = "server",
            .names = {"--timeout"},
            .hint = "N",
            .help = "seconds: socket read/write timeout, and the longest a request may take",
            .env = "FERRY_ARG_TIMEOUT",
            .commands = cmd::serve | cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.timeout, parse_int(v, 1, 1 << 24));
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.timeout); },
        },
        {
            .group = "server",
            .names = {"--threads-http"},
            .hint = "N",
            .help = "threads answering HTTP requests; -1 = slots + queue + 4",
            .env = "FERRY_ARG_THREADS_HTTP",
            .commands = cmd::serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                FERRY_ASSIGN(p.threads_http, parse_int(v, -1, 4096));
                if (p.threads_http == 0) return make_error("expected -1 or a positive number");
                return {};
            },
            .show_default = [](const Params& p) { return std::to_string(p.threads_http); },
        },
        {
            .group = "logging",
            .names = {"-v", "--verbose", "--log-verbose"},
            .help = "log everything, including debug messages",
            .env = "FERRY_ARG_VERBOSE",
            .commands = cmd::all,
            .set_switch = [](Params& p, bool on) { p.log_level = on ? log::Level::Debug : log::Level::Info; },
        },
        {
            .group = "logging",
            .names = {"--log-disable"},
            .help = "log nothing",
            .env = "FERRY_ARG_LOG_DISABLE",
            .commands = cmd::all,
            .set_switch = [](Params& p, bool on) { p.log_level = on ? log::Level::Off : log::Level::Info; },
        },
    };
    static const std::vector<Option> table = [] {
        std::vector<Option> all = base;
        for (Option& opt : bench_serve_options()) all.push_back(std::move(opt));
        return all;
    }();
    return table;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

Result<int> parse_int(std::string_view text, int min, int max) {
    long long v = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ptr != end || ec == std::errc::invalid_argument) {
        return make_error("expected an integer");
    }
    if (ec == std::errc::result_out_of_range || v < min || v > max) {
        return make_error("expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    return static_cast<int>(v);
}

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

}  // namespace

Result<float> parse_float(std::string_view text, double min, double max) {
    const std::string s(text);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v))
        return make_error("expected a number");
    if (v < min || v > max)
        return make_error("expected a number from " + format_float(min) + " to " + format_float(max));
    return float(v);
}

Result<long long> parse_int64(std::string_view text, long long min, long long max) {
    long long v = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ptr != end || ec == std::errc::invalid_argument) return make_error("expected an integer");
    if (ec == std::errc::result_out_of_range || v < min || v > max)
        return make_error("expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return v;
}

std::string format_float(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

Result<GgmlType> parse_cache_type(std::string_view text) {
    static constexpr GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,
                                          GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                                          GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL};
    const auto t = type_from_name(text);
    for (GgmlType k : kTypes) {
        if (t && *t == k) return k;
    }
    return make_error("expected one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl");
}

std::string lowercase_type(GgmlType type) {
    std::string s(type_name(type));
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Result<bool> parse_bool(std::string_view text) {
    const std::string s = lower(text);
    if (s == "1" || s == "true" || s == "on" || s == "yes") return true;
    if (s == "0" || s == "false" || s == "off" || s == "no") return false;
    return make_error("expected 1/0, true/false, on/off or yes/no");
}

size_t edit_distance(std::string_view a, std::string_view b) {
    // d[i][j] = distance between a[0, i) and b[0, j); names are short, so the full table is fine.
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t substitute = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, substitute});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

EnvLookup process_env() {
    return [](std::string_view name) -> std::optional<std::string> {
        const char* v = std::getenv(std::string(name).c_str());
        if (v == nullptr) return std::nullopt;
        return std::string(v);
    };
}

namespace {

std::string joined_names(const Option& opt) {
    std::string out;
    for (std::string_view n : opt.names) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

const Option* find_option(std::span<const Option> table, std::string_view name) {
    for (const Option& opt : table) {
        if (std::find(opt.names.begin(), opt.names.end(), name) != opt.names.end()) return &opt;
    }
    return nullptr;
}

const Subcommand* find_command(std::span<const Subcommand> commands, std::string_view name) {
    for (const Subcommand& c : commands) {
        if (c.name == name) return &c;
    }
    return nullptr;
}

// The candidate closest to `word`, if it is close enough to be a likely typo.
std::optional<std::string_view> closest(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::optional<std::string_view> best;
    size_t best_d = 0;
    for (std::string_view c : candidates) {
        const size_t d = edit_distance(word, c);
        if (!best || d < best_d) {
            best = c;
            best_d = d;
        }
    }
    if (best && best_d <= std::max<size_t>(1, word.size() / 3)) return best;
    return std::nullopt;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates) {
    auto c = closest(word, candidates);
    return c ? " (did you mean '" + std::string(*c) + "'?)" : "";
}

std::string commands_named(CommandSet set, std::span<const Subcommand> commands) {
    std::string out;
    for (const Subcommand& c : commands) {
        if ((set & c.id) == 0) continue;
        if (!out.empty()) out += ", ";
        out += c.name;
    }
    return out;
}

}  // namespace

Status validate_table(std::span<const Option> table, std::span<const Subcommand> commands) {
    std::set<std::string_view> names;
    std::set<std::string_view> envs;
    CommandSet known = 0;
    for (const Subcommand& c : commands) {
        if (c.id == 0 || (c.id & (c.id - 1)) != 0) {
            return make_error("subcommand '" + std::string(c.name) + "' must have exactly one id bit");
        }
        if (known & c.id) return make_error("subcommand '" + std::string(c.name) + "' reuses an id bit");
        known |= c.id;
    }
    for (const Option& opt : table) {
        const std::string label = "option " + joined_names(opt);
        if (opt.names.empty()) return make_error("an option has no names");
        for (std::string_view n : opt.names) {
            if (n.size() < 2 || n[0] != '-' || n == "--" || n.find('=') != std::string_view::npos) {
                return make_error(label + ": malformed name '" + std::string(n) + "'");
            }
            if (!names.insert(n).second) return make_error(label + ": name '" + std::string(n) + "' used twice");
        }
        if (!opt.env.empty() && !envs.insert(opt.env).second) {
            return make_error(label + ": environment variable " + std::string(opt.env) + " used twice");
        }
        if (!opt.env.empty() && !opt.env.starts_with("FERRY_ARG_")) {
            return make_error(label + ": environment variable must start with FERRY_ARG_");
        }
        const int actions = int(opt.set_value != nullptr) + int(opt.set_switch != nullptr) + int(opt.is_help);
        if (actions != 1) return make_error(label + ": needs exactly one of set_value, set_switch, is_help");
        if (opt.hint.empty() != (opt.set_value == nullptr)) {
            return make_error(label + ": a value hint is required for, and only for, options with a value");
        }
        if ((opt.commands & known) == 0) return make_error(label + ": accepted by no subcommand");
        if (opt.group.empty() || opt.help.empty()) return make_error(label + ": needs a group and help text");
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// Help

namespace {

constexpr size_t kLineWidth = 100;
constexpr size_t kMaxNameColumn = 32;

// Splits text into lines of at most `width` characters at spaces (a longer word gets its own line).
std::vector<std::string> wrap(std::string_view text, size_t width) {
    std::vector<std::string> lines;
    std::string line;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find(' ', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view word = text.substr(pos, end - pos);
        pos = end + 1;
        if (word.empty()) continue;
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            lines.push_back(std::move(line));
            line.clear();
        }
        if (!line.empty()) line += ' ';
        line += word;
    }
    if (!line.empty()) lines.push_back(std::move(line));
    return lines;
}

std::string usage_line(const Subcommand& c) {
    std::string out = "usage: ferry " + std::string(c.name) + " [options]";
    if (!c.usage_tail.empty()) out += " " + std::string(c.usage_tail);
    return out + "\n";
}

}  // namespace

std::string format_overview(const CommandLine& cl) {
    std::string out = "ferry " FERRY_VERSION ": run large language models from GGUF files\n\n";
    out += "usage: ferry <subcommand> [options]\n\nsubcommands:\n";
    size_t width = 0;
    for (const Subcommand& c : cl.commands) width = std::max(width, c.name.size());
    for (const Subcommand& c : cl.commands) {
        out += "  " + std::string(c.name) + std::string(width + 3 - c.name.size(), ' ') + std::string(c.summary) + "\n";
    }
    out +=
        "\nRun 'ferry help <subcommand>' or 'ferry <subcommand> --help' for its options.\n"
        "Each option can also be set by its FERRY_ARG_* environment variable; a flag overrides it.\n";
    return out;
}

std::string format_help(const Subcommand& command, const CommandLine& cl) {
    Params defaults;
    defaults.subcommand = std::string(command.name);  // an option may show another default per subcommand
    std::vector<const Option*> accepted;
    std::vector<std::string_view> groups;
    for (const Option& opt : cl.options) {
        if ((opt.commands & command.id) == 0) continue;
        accepted.push_back(&opt);
        if (std::find(groups.begin(), groups.end(), opt.group) == groups.end()) groups.push_back(opt.group);
    }
    auto left_of = [](const Option& opt) {
        std::string s = "  " + joined_names(opt);
        if (!opt.hint.empty()) s += " " + std::string(opt.hint);
        return s;
    };
    size_t column = 0;
    for (const Option* opt : accepted) column = std::max(column, left_of(*opt).size() + 2);
    column = std::min(column, kMaxNameColumn);

    std::string out = usage_line(command) + "\n" + std::string(command.summary) + "\n";
    for (std::string_view group : groups) {
        out += "\n" + std::string(group) + ":\n";
        for (const Option* opt : accepted) {
            if (opt->group != group) continue;
            std::string text(opt->help);
            if (opt->show_default) text += " (default: " + opt->show_default(defaults) + ")";
            std::vector<std::string> lines = wrap(text, kLineWidth - column);
            if (!opt->env.empty()) lines.push_back("(env: " + std::string(opt->env) + ")");

            std::string left = left_of(*opt);
            if (left.size() + 2 > column) {
                out += left + "\n";  // too long to share a line with the help text
                left.clear();
            }
            for (const std::string& line : lines) {
                out += left + std::string(column - left.size(), ' ') + line + "\n";
                left.clear();
            }
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing

namespace {

ParseOutcome print(std::string text) {
    ParseOutcome o;
    o.kind = ParseOutcome::Kind::Print;
    o.text = std::move(text);
    return o;
}

// "ferry inspect: <message>; see 'ferry inspect --help'"
ParseOutcome usage_error(std::string_view command, const std::string& message) {
    const std::string prog = command.empty() ? "ferry" : "ferry " + std::string(command);
    ParseOutcome o;
    o.kind = ParseOutcome::Kind::Error;
    o.text = prog + ": " + message + "; see '" + prog + " --help'\n";
    return o;
}

// One flag as it appeared on the command line.
struct Given {
    const Option* opt;
    std::string spelled;  // the name as typed, for messages
    std::string value;    // empty for switches
};

// 'text' for a message, with control characters escaped: an argument may contain anything, and a
// usage error must stay on one line and must not drive the terminal.
std::string quoted(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(1, '\'');
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            out.append("\\x").append(1, kHex[u >> 4]).append(1, kHex[u & 15]);
        } else {
            out.append(1, c);
        }
    }
    out.append(1, '\'');
    return out;
}

bool accepts(const Subcommand& command, const Option& opt) { return (opt.commands & command.id) != 0; }

// Splits args into flags (checked against the table, values attached) and positional arguments.
Status tokenize(const Subcommand& command, std::span<const std::string> args, const CommandLine& cl,
                std::vector<Given>& given, std::vector<std::string>& positional) {
    bool options_ended = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (options_ended || a.size() < 2 || a[0] != '-') {
            positional.push_back(a);
            continue;
        }
        if (a == "--") {
            options_ended = true;
            continue;
        }
        const size_t eq = a.find('=');
        const std::string flag = a.substr(0, eq);
        const Option* opt = find_option(cl.options, flag);
        if (opt == nullptr) {
            std::vector<std::string_view> candidates;
            for (const Option& o : cl.options) {
                if (accepts(command, o)) candidates.insert(candidates.end(), o.names.begin(), o.names.end());
            }
            return make_error("unknown argument " + quoted(flag) + did_you_mean(flag, candidates));
        }
        if (!accepts(command, *opt)) {
            return make_error(quoted(flag) + " is not an option of '" + std::string(command.name) +
                              "' (it is for: " + commands_named(opt->commands, cl.commands) + ")");
        }
        Given g{opt, flag, {}};
        const std::string needs = quoted(flag) + " needs a value (" + std::string(opt->hint) + ")";
        if (opt->set_switch) {
            if (eq != std::string::npos) return make_error(quoted(flag) + " takes no value");
        } else if (eq != std::string::npos) {
            g.value = a.substr(eq + 1);
        } else if (i + 1 >= args.size()) {
            return make_error(needs);
        } else if (find_option(cl.options, args[i + 1]) != nullptr) {
            // Most likely a forgotten value; a file really named "--json" can be passed as -m=--json.
            return make_error(needs + ", not the option " + quoted(args[i + 1]));
        } else {
            g.value = args[++i];
        }
        given.push_back(std::move(g));
    }
    return {};
}

// Sets the options the subcommand accepts from their FERRY_ARG_* variables, except those given as flags.
Status apply_env(const Subcommand& command, const CommandLine& cl, const std::vector<Given>& given, Params& p) {
    for (const Option& opt : cl.options) {
        if (!accepts(command, opt) || opt.env.empty() || !cl.env) continue;
        if (std::any_of(given.begin(), given.end(), [&](const Given& g) { return g.opt == &opt; })) continue;
        const std::optional<std::string> v = cl.env(opt.env);
        if (!v || v->empty()) continue;
        Status st;
        if (opt.set_switch) {
            Result<bool> on = parse_bool(*v);
            if (on.ok()) {
                opt.set_switch(p, *on);
            } else {
                st = on.error();
            }
        } else if (opt.set_value) {
            st = opt.set_value(p, *v);
        }
        if (!st.ok()) {
            return make_error("invalid value " + quoted(*v) + " in " + std::string(opt.env) + " (" +
                              std::string(opt.names.back()) + "): " + st.error().message);
        }
    }
    return {};
}

Status apply_flags(const std::vector<Given>& given, Params& p) {
    for (const Given& g : given) {
        if (g.opt->set_switch) {
            g.opt->set_switch(p, true);
            continue;
        }
        Status st = g.opt->set_value(p, g.value);
        if (!st.ok()) {
            return make_error("invalid value " + quoted(g.value) + " for " + quoted(g.spelled) + ": " +
                              st.error().message);
        }
    }
    return {};
}

Status apply_positional(const Subcommand& command, const CommandLine& cl, const std::vector<Given>& given,
                        std::vector<std::string> positional, Params& p) {
    switch (command.positional) {
        case Positional::None:
            if (!positional.empty()) return make_error("unexpected argument " + quoted(positional[0]));
            return {};
        case Positional::Args: p.positional = std::move(positional); return {};
        case Positional::Model: break;
    }
    if (positional.size() > 1) return make_error("unexpected argument " + quoted(positional[1]));
    const Option* model_opt = find_option(cl.options, "--model");
    const auto model_flag =
        std::find_if(given.begin(), given.end(), [&](const Given& g) { return g.opt == model_opt; });
    if (positional.size() == 1) {
        if (model_flag != given.end()) {
            return make_error("the model is given twice: " + quoted(model_flag->spelled + " " + model_flag->value) +
                              " and " + quoted(positional[0]));
        }
        p.model = positional[0];  // overrides FERRY_ARG_MODEL, like a flag would
    }
    return {};  // no model at all is for the subcommand to settle (it may have a default)
}

ParseOutcome parse_subcommand(const Subcommand& command, std::span<const std::string> args, const CommandLine& cl) {
    // Help wins over everything else, so a half-typed command line can still ask for it.
    for (const std::string& a : args) {
        if (a == "--") break;
        const Option* opt = find_option(cl.options, a);
        if (opt && opt->is_help && accepts(command, *opt)) return print(format_help(command, cl));
    }

    ParseOutcome out;
    out.params.subcommand = std::string(command.name);
    std::vector<Given> given;
    std::vector<std::string> positional;
    // The environment before the flags, so that flags override it.
    Status st = tokenize(command, args, cl, given, positional);
    if (st.ok()) st = apply_env(command, cl, given, out.params);
    if (st.ok()) st = apply_flags(given, out.params);
    if (st.ok()) st = apply_positional(command, cl, given, std::move(positional), out.params);
    if (!st.ok()) return usage_error(command.name, st.error().message);

    out.kind = ParseOutcome::Kind::Run;
    out.command = &command;
    return out;
}

std::vector<std::string_view> command_names(std::span<const Subcommand> commands) {
    std::vector<std::string_view> names;
    for (const Subcommand& c : commands) names.push_back(c.name);
    return names;
}

ParseOutcome unknown_command(std::string_view word, const CommandLine& cl) {
    return usage_error("", "unknown subcommand " + quoted(word) + did_you_mean(word, command_names(cl.commands)));
}

}  // namespace

ParseOutcome parse_args(std::span<const std::string> args, const CommandLine& cl) {
    if (args.empty()) return print(format_overview(cl));
    const std::string& first = args[0];
    if (first == "-h" || first == "--help") return print(format_overview(cl));
    if (first == "--version") return print("ferry " FERRY_VERSION "\n");
    // "bench serve" is a subcommand of two words; `ferry bench` alone stays llama-bench's.
    const auto two_words = [&](size_t at) {
        return args.size() > at + 1 && args[at] == "bench" && args[at + 1] == "serve" &&
               find_command(cl.commands, "bench serve") != nullptr;
    };
    if (first == "help") {
        if (args.size() == 1) return print(format_overview(cl));
        if (two_words(1)) return print(format_help(*find_command(cl.commands, "bench serve"), cl));
        const Subcommand* c = find_command(cl.commands, args[1]);
        if (c == nullptr) return unknown_command(args[1], cl);
        return print(format_help(*c, cl));
    }
    if (first.starts_with("-")) {
        const std::string flag = first.substr(0, first.find('='));
        if (const Option* opt = find_option(cl.options, flag)) {
            return usage_error("", quoted(flag) + " must follow a subcommand (it is for: " +
                                       commands_named(opt->commands, cl.commands) + ")");
        }
        return usage_error("", "unknown argument " + quoted(flag) + did_you_mean(flag, {"--help", "--version"}));
    }
    if (two_words(0)) return parse_subcommand(*find_command(cl.commands, "bench serve"), args.subspan(2), cl);
    const Subcommand* c = find_command(cl.commands, first);
    if (c == nullptr) return unknown_command(first, cl);
    return parse_subcommand(*c, args.subspan(1), cl);
}

ParseOutcome parse_args(int argc, const char* const* argv, const CommandLine& cl) {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
    return parse_args(args, cl);
}

}  // namespace ferry::cli
