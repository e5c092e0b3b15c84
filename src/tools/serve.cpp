// ferry serve: loads the model and answers OpenAI-compatible HTTP requests (src/server/).
//
// The server listens first, so /health says 503 while the model loads. The context (-c, or the
// model's trained context) is split evenly between the -np slots, and the split is printed: a slot
// never holds more than its share. Ctrl-C (SIGINT) or SIGTERM stops the server.
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/mapped_file.h"
#include "server/http_server.h"
#include "server/scheduler.h"
#include "text/jinja/template.h"
#include "tools/engine.h"
#include "tools/interrupt.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace {

int fail(const std::string& message) {
    std::fprintf(stderr, "ferry serve: %s\n", message.c_str());
    return 1;
}

std::atomic<bool> g_terminate{false};
extern "C" void on_sigterm(int) { g_terminate.store(true); }

Status read_api_keys(const std::string& path, std::vector<std::string>& keys) {
    FERRY_ASSIGN(const std::string text, read_text_file(path));
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
        if (!line.empty() && line[0] != '#') keys.push_back(line);
        start = end + 1;
    }
    if (keys.empty()) return make_error("--api-key-file " + path + ": no keys in the file");
    return {};
}

}  // namespace

int run_serve(const Params& params) {
    if (const Status st = runtime::validate(params.sampling); !st.ok()) return fail(st.error().message);
    server::ServerParams sp;
    sp.host = params.host;
    sp.port = params.port;
    sp.api_keys = params.api_keys;
    if (!params.api_key_file.empty())
        if (const Status st = read_api_keys(params.api_key_file, sp.api_keys); !st.ok())
            return fail(st.error().message);
    sp.metrics = params.metrics;
    sp.alias = params.alias;
    sp.timeout_s = params.timeout;
    sp.threads_http = params.threads_http > 0 ? params.threads_http : params.n_parallel + params.max_queue + 4;
    sp.sampling = params.sampling;
    sp.n_predict = params.n_predict;
    nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
    if (!params.chat_template_kwargs.empty()) {
        kwargs = nlohmann::ordered_json::parse(params.chat_template_kwargs, nullptr, false);
        if (!kwargs.is_object()) return fail("--chat-template-kwargs: expected a JSON object");
    }

    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGTERM, on_sigterm);
    std::atomic<bool>& interrupted = interrupt_flag();

    server::HttpServer http(sp);
    if (const Status st = http.start(); !st.ok()) return fail(st.error().message);
    std::fprintf(stderr, "ferry serve: listening on http://%s:%d (loading the model)\n", sp.host.c_str(), http.port());

    auto engine = load_engine(params, "ferry serve", -1);
    if (!engine.ok()) return fail(engine.error().message);
    const auto source = template_source(params, *engine->file);
    if (!source.ok()) return fail(source.error().message);
    const auto tmpl = text::Template::parse(*source);
    if (!tmpl.ok()) return fail("chat template: " + tmpl.error().message);

    const int64_t n_ctx = params.ctx_size > 0 ? params.ctx_size : engine->model->info().n_ctx_train;
    if (n_ctx <= 0) return fail("the model gives no context length; set -c");
    const int64_t n_slot = n_ctx / params.n_parallel;
    if (n_slot < 16)
        return fail("-c " + std::to_string(n_ctx) + " split between " + std::to_string(params.n_parallel) +
                    " slots leaves " + std::to_string(n_slot) + " positions each; raise -c or lower -np");
    server::SchedulerParams sched;
    sched.n_parallel = params.n_parallel;
    sched.n_ctx_slot = n_slot;
    sched.n_step = std::max(1, std::min(params.n_batch, params.n_ubatch));
    sched.max_queue = params.max_queue;
    sched.kv_type_k = params.cache_type_k;
    sched.kv_type_v = params.cache_type_v;
    sched.flash_attn = params.flash_attn != "off";
    sched.exact_batches = params.exact_batches;
    auto scheduler = server::Scheduler::create(*engine->model, *engine->vocab, *engine->ops, sched);
    if (!scheduler.ok()) return fail(scheduler.error().message);
    std::fprintf(stderr,
                 "ferry serve: context %lld split between %d slots: %lld positions per slot; up to %lld tokens "
                 "per step; queue of %d\n",
                 (long long)n_ctx, params.n_parallel, (long long)n_slot, (long long)sched.n_step, params.max_queue);

    server::ServerModel sm;
    sm.model = engine->model.get();
    sm.vocab = engine->vocab.get();
    sm.chat_template = &*tmpl;
    sm.chat_template_source = *source;
    sm.template_kwargs = kwargs;
    sm.scheduler = scheduler->get();
    sm.model_path = engine->path;
    http.attach(sm);
    std::fprintf(stderr, "ferry serve: ready on http://%s:%d%s\n", sp.host.c_str(), http.port(),
                 sp.api_keys.empty() ? "" : " (API key required)");

    while (!interrupted.load() && !g_terminate.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::fprintf(stderr, "ferry serve: stopping\n");
    http.stop();
    return 0;
}

}  // namespace ferry::tools
