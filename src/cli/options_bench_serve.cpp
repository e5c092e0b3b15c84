// The options of `ferry bench serve` that no other subcommand has (the table's rules: options.h).
#include "cli/options.h"

namespace ferry::cli {
namespace {

Result<std::string> scenario_name(std::string_view v) {
    if (v == "short" || v == "medium" || v == "long" || v == "multi-turn") return std::string(v);
    return make_error("expected short, medium, long or multi-turn");
}

Status set_url(std::string& out, std::string_view v) {
    if (!v.starts_with("http://") && !v.starts_with("https://")) {
        return make_error("expected a URL starting with http:// or https:// (e.g. http://127.0.0.1:8080)");
    }
    out = std::string(v);
    return {};
}

}  // namespace

std::vector<Option> bench_serve_options() {
    return {
        {
            .group = "bench serve",
            .names = {"--url"},
            .hint = "URL",
            .help = "base URL of the OpenAI-compatible server (ferry, llama-server, vLLM), with or without /v1",
            .env = "FERRY_ARG_URL",
            .commands = cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) { return set_url(p.bench_serve.url, v); },
            .show_default = [](const Params& p) { return p.bench_serve.url; },
        },
        {
            .group = "bench serve",
            .names = {"--vs"},
            .hint = "URL",
            .help = "a second server: each run goes to --url, then to this one (A B A B), and ratios A/B are printed",
            .env = "FERRY_ARG_VS",
            .commands = cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) { return set_url(p.bench_serve.vs, v); },
        },
        {
            .group = "bench serve",
            .names = {"--model-name"},
            .hint = "NAME",
            .help = "the \"model\" sent in each request; default: the first id of the server's /v1/models",
            .env = "FERRY_ARG_MODEL_NAME",
            .commands = cmd::bench_serve,
            .set_value = [](Params& p, std::string_view v) -> Status {
                if (v.empty()) return make_error("expected a model name");
                p.bench_serve.model_name = std::string(v);
                return {};
            },
        },
        {
            .group = "bench serve",
            .names = {"--scenarios"},
            .hint = "LIST",
            .help = "comma list of short, medium, long, multi-turn; default all four",
            .env = "FERRY_ARG_SCENARIOS",
            .commands = cmd::bench_serve,
            .set_value = [](Params& p,
                            std::string_view v) { return append_list(p.bench_serve.scenarios, v, scenario_name); },
        },
        {
            .group = "bench serve",
            .names = {"--concurrency"},
            .hint = "N",
            .help = "clients sending the scenario at the same time (aggregate tok/s); a comma list runs each in turn",
            .env = "FERRY_ARG_CONCURRENCY",
            .commands = cmd::bench_serve,
            .set_value =
                [](Params& p, std::string_view v) {
                    return append_list(p.bench_serve.concurrency, v,
                                       [](std::string_view item) { return parse_int(item, 1, 256); });
                },
            .show_default = [](const Params&) { return std::string("1"); },
        },
        {
            .group = "bench serve",
            .names = {"--no-stream"},
            .help = "send non-streaming requests, exactly as the seed did (no TTFT or decode tok/s)",
            .env = "FERRY_ARG_NO_STREAM",
            .commands = cmd::bench_serve,
            .set_switch = [](Params& p, bool on) { p.bench_serve.stream = !on; },
        },
    };
}

}  // namespace ferry::cli
