#include "server/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "core/log.h"
#include "server/chat_parse.h"
#include "server/openai.h"
#include "server/web_page.h"

namespace ferry::server {
namespace {

using namespace std::chrono_literals;

constexpr auto kPoll = 20ms;  // how often a waiting request checks its client

int64_t unix_time() { return int64_t(std::time(nullptr)); }

void send_json(httplib::Response& res, int status, const ordered_json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
    if (e.status == 503) res.set_header("Retry-After", "1");
    send_json(res, e.status, error_body(e));
}

std::string sse(const ordered_json& j) {
    return "data: " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

// The connected socket of this request's client, found by its address among the process's
// sockets (cpp-httplib does not hand it to handlers); -1 if not found.
int find_client_socket(const std::string& addr, int port) {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int found = -1;
    while (dirent* e = readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0') continue;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&ss), &len) != 0) continue;
        char host[INET6_ADDRSTRLEN] = {};
        int p = -1;
        if (ss.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            p = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            p = ntohs(a->sin6_port);
        }
        if (p == port && addr == host) {
            found = int(fd);
            break;
        }
    }
    closedir(dir);
    return found;
}

// True once the client has closed its side (recv would return end of stream).
bool client_gone(int fd) {
    if (fd < 0) return false;
    char c;
    const ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

std::string metric(const char* name, const char* type, const char* help, double value) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "# HELP ferry:%s %s\n# TYPE ferry:%s %s\nferry:%s %.17g\n", name, help, name, type,
                  name, value);
    return buf;
}

// The fields every completion object and chunk starts with.
ordered_json envelope(const char* object, const std::string& id, int64_t created, const std::string& model,
                      ordered_json choices) {
    return {{"id", id},
            {"object", object},
            {"created", created},
            {"model", model},
            {"system_fingerprint", "ferry"},
            {"choices", std::move(choices)}};
}

// Writes a batch of server-sent events; ends the stream after the last one, and cancels the task
// when the client is gone. The return value is the content provider's: false aborts the response.
bool send_events(const std::string& out, bool finished, Task& task, int fd, httplib::DataSink& sink) {
    if (!out.empty() && !sink.write(out.data(), out.size())) {
        task.cancel();
        return false;
    }
    if (finished) {
        sink.done();
        return true;
    }
    if (client_gone(fd)) {
        task.cancel();
        return false;
    }
    return true;
}

// Everything a handler produced for one task, waited for on the HTTP thread.
struct Collected {
    std::string text;
    std::vector<TokenLogprob> logprobs;
    Finish finish = Finish::None;
    std::string error;
};

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
    // Every byte of the longer string is visited whatever the contents; lengths may leak, keys do not.
    const size_t n = std::max(a.size(), b.size());
    unsigned diff = unsigned(a.size() != b.size());
    for (size_t i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? (unsigned char)a[i] : 0;
        const unsigned char y = i < b.size() ? (unsigned char)b[i] : 0;
        diff |= unsigned(x ^ y);
    }
    return diff == 0;
}

struct HttpServer::Impl {
    ServerParams p;
    httplib::Server srv;
    std::thread thread;
    std::atomic<bool> ready{false};
    ServerModel m;

    std::string model_id() const { return p.alias.empty() ? m.model_path : p.alias; }

    bool authorized(const httplib::Request& req) const {
        if (p.api_keys.empty()) return true;
        std::string key;
        const std::string auth = req.get_header_value("Authorization");
        if (auth.rfind("Bearer ", 0) == 0)
            key = auth.substr(7);
        else
            key = req.get_header_value("X-Api-Key");
        bool ok = false;
        for (const std::string& k : p.api_keys) ok |= constant_time_equal(key, k);
        return ok;
    }

    std::optional<ApiError> parse_body(const httplib::Request& req, ordered_json& body) const {
        body = ordered_json::parse(req.body, nullptr, false);
        if (body.is_discarded()) return api_error(400, "the request body is not valid JSON");
        if (!body.is_object()) return api_error(400, "the request body must be a JSON object");
        return std::nullopt;
    }

    // Tokenizes a prompt and checks it fits a slot.
    std::optional<ApiError> tokenize_prompt(const std::string& text, bool templated, std::vector<int32_t>& out) const {
        const text::Vocab& v = *m.vocab;
        bool add_bos = true;
        if (templated && v.bos() != text::kNoToken) {
            const auto bos = v.token_to_piece(v.bos(), true);
            if (bos.ok() && !bos->empty() && text.starts_with(*bos)) add_bos = false;
        }
        auto tokens = v.tokenize(text, add_bos, true);
        if (!tokens.ok()) return api_error(400, "tokenizing the prompt: " + tokens.error().message);
        if (tokens->empty()) return api_error(400, "the prompt is empty");
        const int64_t n_ctx = m.scheduler->params().n_ctx_slot;
        if (int64_t(tokens->size()) >= n_ctx)
            return api_error(400,
                             "the prompt has " + std::to_string(tokens->size()) +
                                 " tokens, more than the context of a slot (" + std::to_string(n_ctx) +
                                 " positions; raise -c or lower -np)",
                             "invalid_request_error", "context_length_exceeded");
        out = std::move(*tokens);
        return std::nullopt;
    }

    Result<std::string> render_chat(const ChatRequest& chat) const {
        text::ChatTemplateInputs in;
        in.messages = chat.messages;
        in.tools = chat.tools;
        in.add_generation_prompt = true;
        in.extra_kwargs = m.template_kwargs;
        const text::Vocab& v = *m.vocab;
        if (v.bos() != text::kNoToken) in.bos_token = v.token_to_piece(v.bos(), true).value();
        if (v.eos() != text::kNoToken) in.eos_token = v.token_to_piece(v.eos(), true).value();
        return text::apply_chat_template(*m.chat_template, in);
    }

    GenParams gen_params(std::vector<int32_t> prompt, const RequestOptions& o) const {
        GenParams g;
        g.prompt = std::move(prompt);
        g.sampling = o.sampling;
        g.max_tokens = o.max_tokens >= 0 ? o.max_tokens : p.n_predict;
        g.stop = o.stop;
        g.top_logprobs = o.logprobs ? o.top_logprobs : -1;
        g.ignore_eos = o.ignore_eos;
        g.cache_prompt = o.cache_prompt;
        g.stream = o.stream;
        g.deadline = Clock::now() + std::chrono::seconds(p.timeout_s);
        return g;
    }

    std::shared_ptr<Task> submit(GenParams g, httplib::Response& res) const {
        auto task = m.scheduler->submit(std::move(g));
        if (!task)
            send_error(res, api_error(503, "the server is busy: every slot is taken and the queue is full; retry later",
                                      "unavailable_error"));
        return task;
    }

    // Waits for the whole output (non-streaming), cancelling if the client leaves.
    Collected collect(Task& task, const httplib::Request& req) const {
        const int fd = find_client_socket(req.remote_addr, req.remote_port);
        Collected c;
        while (true) {
            TaskOutput out = task.wait(kPoll);
            c.text += out.text;
            for (auto& lp : out.logprobs) c.logprobs.push_back(std::move(lp));
            if (out.done) {
                c.finish = out.finish;
                c.error = out.error;
                return c;
            }
            if (client_gone(fd)) task.cancel();
        }
    }

    // Answers a task that did not end normally; false if it did.
    static bool send_abnormal(httplib::Response& res, const Collected& c) {
        if (c.finish == Finish::Error) {
            send_error(res, api_error(500, c.error, "server_error"));
        } else if (c.finish == Finish::Timeout) {
            send_error(res, api_error(504, c.error, "timeout_error"));
        } else if (c.finish == Finish::Cancelled) {
            send_error(res, api_error(503, c.error.empty() ? "cancelled" : c.error, "unavailable_error"));
        } else {
            return false;
        }
        return true;
    }

    void chat_completions(const httplib::Request& req, httplib::Response& res);
    void completions(const httplib::Request& req, httplib::Response& res);
    void stream_chat(const httplib::Request& req, httplib::Response& res, std::shared_ptr<Task> task,
                     const RequestOptions& o, bool parse_tools, bool reasoning, std::string model);
    void stream_completion(const httplib::Request& req, httplib::Response& res, std::shared_ptr<Task> task,
                           const RequestOptions& o, std::string model);
    void routes();
    std::string metrics_text() const;
};

void HttpServer::Impl::chat_completions(const httplib::Request& req, httplib::Response& res) {
    ordered_json body;
    RequestOptions o;
    ChatRequest chat;
    if (auto e = parse_body(req, body)) return send_error(res, *e);
    if (auto e = parse_options(body, true, p.sampling, o)) return send_error(res, *e);
    if (auto e = parse_chat_request(body, chat)) return send_error(res, *e);
    const auto prompt = render_chat(chat);
    if (!prompt.ok()) return send_error(res, api_error(400, "chat template: " + prompt.error().message));
    std::vector<int32_t> tokens;
    if (auto e = tokenize_prompt(*prompt, true, tokens)) return send_error(res, *e);
    const bool reasoning = prompt_opens_reasoning(*prompt);
    auto task = submit(gen_params(std::move(tokens), o), res);
    if (!task) return;
    if (o.stream) return stream_chat(req, res, task, o, chat.parse_tools, reasoning, model_id());

    const Collected c = collect(*task, req);
    if (send_abnormal(res, c)) return;
    ChatParser parser(chat.parse_tools, reasoning);
    parser.push(c.text);
    parser.finish();
    ordered_json msg = {{"role", "assistant"}};
    msg["content"] = parser.content().empty() && !parser.tool_calls().empty() ? ordered_json(nullptr)
                                                                              : ordered_json(parser.content());
    if (!parser.reasoning().empty()) msg["reasoning_content"] = parser.reasoning();
    if (!parser.tool_calls().empty()) {
        msg["tool_calls"] = ordered_json::array();
        for (const ToolCall& tc : parser.tool_calls()) msg["tool_calls"].push_back(tool_call_json(tc));
    }
    const char* reason =
        !parser.tool_calls().empty() && c.finish == Finish::Stop ? "tool_calls" : finish_reason(c.finish);
    const TaskStats st = task->stats();
    ordered_json choice = {{"index", 0}, {"message", msg}, {"logprobs", nullptr}, {"finish_reason", reason}};
    if (o.logprobs) choice["logprobs"] = chat_logprobs_json(c.logprobs);
    ordered_json out = envelope("chat.completion", random_id("chatcmpl-"), unix_time(), model_id(), {choice});
    out["usage"] = usage_json(st);
    out["timings"] = timings_json(st);
    send_json(res, 200, out);
}

void HttpServer::Impl::stream_chat(const httplib::Request& req, httplib::Response& res, std::shared_ptr<Task> task,
                                   const RequestOptions& o, bool parse_tools, bool reasoning, std::string model) {
    struct State {
        std::shared_ptr<Task> task;
        ChatParser parser;
        std::string id = random_id("chatcmpl-");
        int64_t created = unix_time();
        int fd = -1;
        bool started = false, finished = false;
    };
    auto st = std::make_shared<State>(State{.task = task, .parser = ChatParser(parse_tools, reasoning)});
    st->fd = find_client_socket(req.remote_addr, req.remote_port);
    const bool include_usage = o.include_usage, logprobs = o.logprobs;
    auto chunk = [st, model](ordered_json delta, ordered_json reason, ordered_json lps = nullptr) {
        ordered_json choice = {{"index", 0},
                               {"delta", std::move(delta)},
                               {"logprobs", std::move(lps)},
                               {"finish_reason", std::move(reason)}};
        return sse(envelope("chat.completion.chunk", st->id, st->created, model, ordered_json::array({choice})));
    };
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st, chunk, include_usage, logprobs, model](size_t, httplib::DataSink& sink) {
            std::string out;
            TaskOutput t = st->task->wait(kPoll);
            // The opening chunk (the role) goes with the first output, so its arrival is the time to first token.
            if (!st->started && (t.done || !t.text.empty() || !t.logprobs.empty())) {
                out += chunk({{"role", "assistant"}, {"content", ""}}, nullptr);
                st->started = true;
            }
            ChatDelta d = st->parser.push(t.text);
            if (t.done) {
                ChatDelta rest = st->parser.finish();
                d.content += rest.content;
                d.reasoning += rest.reasoning;
                d.tool_calls.insert(d.tool_calls.end(), rest.tool_calls.begin(), rest.tool_calls.end());
            }
            ordered_json lps = logprobs && !t.logprobs.empty() ? chat_logprobs_json(t.logprobs) : ordered_json(nullptr);
            if (!d.reasoning.empty()) out += chunk({{"reasoning_content", d.reasoning}}, nullptr);
            if (!d.content.empty() || !lps.is_null()) out += chunk({{"content", d.content}}, nullptr, lps);
            for (const ToolCallDelta& c : d.tool_calls)
                out += chunk({{"tool_calls", ordered_json::array({tool_call_delta_json(c)})}}, nullptr);
            if (t.done) {
                st->finished = true;
                if (t.finish == Finish::Error || t.finish == Finish::Timeout || t.finish == Finish::Cancelled) {
                    out +=
                        sse(error_body(api_error(t.finish == Finish::Timeout ? 504 : 500,
                                                 t.error.empty() ? finish_reason(t.finish) : t.error, "server_error")));
                } else {
                    const char* reason = !st->parser.tool_calls().empty() && t.finish == Finish::Stop
                                             ? "tool_calls"
                                             : finish_reason(t.finish);
                    const TaskStats s = st->task->stats();
                    out += chunk(ordered_json::object(), reason);
                    ordered_json last =
                        envelope("chat.completion.chunk", st->id, st->created, model, ordered_json::array());
                    last["timings"] = timings_json(s);
                    if (include_usage) last["usage"] = usage_json(s);
                    out += sse(last);
                }
                out += "data: [DONE]\n\n";
            }
            return send_events(out, st->finished, *st->task, st->fd, sink);
        },
        [st](bool) {
            if (!st->finished) st->task->cancel();
        });
}

void HttpServer::Impl::completions(const httplib::Request& req, httplib::Response& res) {
    ordered_json body;
    RequestOptions o;
    std::string prompt;
    if (auto e = parse_body(req, body)) return send_error(res, *e);
    if (auto e = parse_options(body, false, p.sampling, o)) return send_error(res, *e);
    if (auto e = parse_completion_prompt(body, prompt)) return send_error(res, *e);
    std::vector<int32_t> tokens;
    if (auto e = tokenize_prompt(prompt, false, tokens)) return send_error(res, *e);
    auto task = submit(gen_params(std::move(tokens), o), res);
    if (!task) return;
    if (o.stream) return stream_completion(req, res, task, o, model_id());

    const Collected c = collect(*task, req);
    if (send_abnormal(res, c)) return;
    const TaskStats st = task->stats();
    ordered_json choice = {
        {"text", c.text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason(c.finish)}};
    if (o.logprobs) choice["logprobs"] = completion_logprobs_json(c.logprobs);
    ordered_json out = envelope("text_completion", random_id("cmpl-"), unix_time(), model_id(), {choice});
    out["usage"] = usage_json(st);
    out["timings"] = timings_json(st);
    send_json(res, 200, out);
}

void HttpServer::Impl::stream_completion(const httplib::Request& req, httplib::Response& res,
                                         std::shared_ptr<Task> task, const RequestOptions& o, std::string model) {
    struct State {
        std::shared_ptr<Task> task;
        std::string id = random_id("cmpl-");
        int64_t created = unix_time();
        int fd = -1;
        bool finished = false;
    };
    auto st = std::make_shared<State>(State{.task = task});
    st->fd = find_client_socket(req.remote_addr, req.remote_port);
    const bool include_usage = o.include_usage, logprobs = o.logprobs;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st, include_usage, logprobs, model](size_t, httplib::DataSink& sink) {
            auto chunk = [&](const std::string& text, ordered_json reason, ordered_json lps) {
                ordered_json choice = {
                    {"text", text}, {"index", 0}, {"logprobs", std::move(lps)}, {"finish_reason", std::move(reason)}};
                return envelope("text_completion", st->id, st->created, model, ordered_json::array({choice}));
            };
            std::string out;
            TaskOutput t = st->task->wait(kPoll);
            if (!t.text.empty() || !t.logprobs.empty())
                out += sse(
                    chunk(t.text, nullptr, logprobs ? completion_logprobs_json(t.logprobs) : ordered_json(nullptr)));
            if (t.done) {
                st->finished = true;
                if (t.finish == Finish::Error || t.finish == Finish::Timeout || t.finish == Finish::Cancelled) {
                    out += sse(error_body(
                        api_error(500, t.error.empty() ? finish_reason(t.finish) : t.error, "server_error")));
                } else {
                    const TaskStats s = st->task->stats();
                    ordered_json last = chunk("", finish_reason(t.finish), nullptr);
                    last["timings"] = timings_json(s);
                    if (include_usage) last["usage"] = usage_json(s);
                    out += sse(last);
                }
                out += "data: [DONE]\n\n";
            }
            return send_events(out, st->finished, *st->task, st->fd, sink);
        },
        [st](bool) {
            if (!st->finished) st->task->cancel();
        });
}

std::string HttpServer::Impl::metrics_text() const {
    const SchedulerMetrics& mt = m.scheduler->metrics();
    int busy = 0;
    for (const SlotInfo& s : m.scheduler->slots()) busy += s.busy;
    std::string out;
    out += metric("prompt_tokens_total", "counter", "Prompt tokens computed (cached tokens excluded).",
                  double(mt.prompt_tokens.load()));
    out += metric("prompt_seconds_total", "counter", "Seconds spent in steps that carried prompt tokens.",
                  double(mt.prompt_us.load()) / 1e6);
    out += metric("tokens_predicted_total", "counter", "Tokens generated.", double(mt.generated_tokens.load()));
    out += metric("tokens_predicted_seconds_total", "counter", "Seconds spent in decode-only steps.",
                  double(mt.generate_us.load()) / 1e6);
    out += metric("prompt_cache_hits_total", "counter", "Requests that reused a slot's cached prefix.",
                  double(mt.cache_hits.load()));
    out += metric("prompt_cache_tokens_total", "counter", "Prompt tokens served from a slot's cache.",
                  double(mt.cached_tokens.load()));
    out += metric("requests_total", "counter", "Requests finished.", double(mt.requests_done.load()));
    out += metric("requests_processing", "gauge", "Requests being processed in a slot.", double(mt.processing.load()));
    out += metric("requests_deferred", "gauge", "Requests waiting in the queue.", double(mt.queued.load()));
    out += metric("slots_busy", "gauge", "Slots serving a request.", double(busy));
    out += metric("slots_total", "gauge", "Slots (--parallel).", double(m.scheduler->params().n_parallel));
    out += metric("kv_cache_tokens", "gauge", "KV cells in use over all slots.", double(mt.kv_cells_used.load()));
    return out;
}

void HttpServer::Impl::routes() {
    srv.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (req.path == "/" || req.path == "/index.html" || req.path == "/health")
            return httplib::Server::HandlerResponse::Unhandled;
        if (!authorized(req)) {
            send_error(res, api_error(401, "invalid or missing API key", "authentication_error", "invalid_api_key"));
            return httplib::Server::HandlerResponse::Handled;
        }
        if (!ready.load()) {
            send_error(res, api_error(503, "loading model", "unavailable_error"));
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    srv.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 413) {
            send_error(res, api_error(413, "the request body is larger than the server accepts"));
        } else if (res.status == 404) {
            send_error(res, api_error(404, "no such endpoint", "not_found_error"));
        } else {
            send_error(res, api_error(res.status, "HTTP error " + std::to_string(res.status)));
        }
    });
    srv.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, api_error(500, what, "server_error"));
    });

    srv.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(std::string(web_page()), "text/html; charset=utf-8");
    });
    srv.Get("/index.html", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(std::string(web_page()), "text/html; charset=utf-8");
    });
    srv.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        if (!ready.load()) return send_error(res, api_error(503, "loading model", "unavailable_error"));
        send_json(res, 200, {{"status", "ok"}});
    });
    const auto models = [this](const httplib::Request&, httplib::Response& res) {
        const model::ModelInfo& info = m.model->info();
        send_json(res, 200,
                  {{"object", "list"},
                   {"data", ordered_json::array({{{"id", model_id()},
                                                  {"object", "model"},
                                                  {"created", unix_time()},
                                                  {"owned_by", "ferry"},
                                                  {"meta",
                                                   {{"arch", info.arch},
                                                    {"n_vocab", info.n_vocab},
                                                    {"n_ctx_train", info.n_ctx_train},
                                                    {"n_embd", info.n_embd}}}}})}});
    };
    srv.Get("/v1/models", models);
    srv.Get("/models", models);
    const auto chat = [this](const httplib::Request& req, httplib::Response& res) { chat_completions(req, res); };
    srv.Post("/v1/chat/completions", chat);
    srv.Post("/chat/completions", chat);
    const auto compl_ = [this](const httplib::Request& req, httplib::Response& res) { completions(req, res); };
    srv.Post("/v1/completions", compl_);
    srv.Post("/completions", compl_);

    srv.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
        ordered_json body;
        if (auto e = parse_body(req, body)) return send_error(res, *e);
        if (!body.contains("content") || !body["content"].is_string())
            return send_error(res, api_error(400, "'content' must be a string"));
        bool add_special = false, with_pieces = false;
        if (body.contains("add_special") && !body["add_special"].is_null()) {
            if (!body["add_special"].is_boolean())
                return send_error(res, api_error(400, "'add_special' must be a boolean"));
            add_special = body["add_special"].get<bool>();
        }
        if (body.contains("with_pieces") && !body["with_pieces"].is_null()) {
            if (!body["with_pieces"].is_boolean())
                return send_error(res, api_error(400, "'with_pieces' must be a boolean"));
            with_pieces = body["with_pieces"].get<bool>();
        }
        auto tokens = m.vocab->tokenize(body["content"].get<std::string>(), add_special, true);
        if (!tokens.ok()) return send_error(res, api_error(400, tokens.error().message));
        ordered_json out = ordered_json::array();
        for (int32_t t : *tokens) {
            if (with_pieces)
                out.push_back({{"id", t}, {"piece", m.vocab->token_to_piece(t, true).value()}});
            else
                out.push_back(t);
        }
        send_json(res, 200, {{"tokens", out}});
    });
    srv.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
        ordered_json body;
        if (auto e = parse_body(req, body)) return send_error(res, *e);
        if (!body.contains("tokens") || !body["tokens"].is_array())
            return send_error(res, api_error(400, "'tokens' must be an array of token ids"));
        std::vector<int32_t> ids;
        for (const ordered_json& t : body["tokens"]) {
            if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= m.vocab->n_tokens())
                return send_error(
                    res, api_error(400, "'tokens' must hold ids in [0, " + std::to_string(m.vocab->n_tokens()) + ")"));
            ids.push_back(int32_t(t.get<int64_t>()));
        }
        auto text = m.vocab->detokenize(ids, true);
        if (!text.ok()) return send_error(res, api_error(400, text.error().message));
        send_json(res, 200, {{"content", *text}});
    });
    srv.Post("/apply-template", [this](const httplib::Request& req, httplib::Response& res) {
        ordered_json body;
        ChatRequest chat;
        if (auto e = parse_body(req, body)) return send_error(res, *e);
        if (auto e = parse_chat_request(body, chat)) return send_error(res, *e);
        const auto prompt = render_chat(chat);
        if (!prompt.ok()) return send_error(res, api_error(400, "chat template: " + prompt.error().message));
        send_json(res, 200, {{"prompt", *prompt}});
    });
    srv.Get("/props", [this](const httplib::Request&, httplib::Response& res) {
        const runtime::SamplingParams& s = p.sampling;
        const SchedulerParams& sp = m.scheduler->params();
        send_json(res, 200,
                  {{"default_generation_settings",
                    {{"n_ctx", sp.n_ctx_slot},
                     {"params",
                      {{"temperature", s.temp},
                       {"top_k", s.top_k},
                       {"top_p", s.top_p},
                       {"min_p", s.min_p},
                       {"n_predict", p.n_predict}}}}},
                   {"total_slots", sp.n_parallel},
                   {"model_alias", model_id()},
                   {"model_path", m.model_path},
                   {"chat_template", m.chat_template_source},
                   {"build_info", "ferry"}});
    });
    srv.Get("/slots", [this](const httplib::Request&, httplib::Response& res) {
        ordered_json out = ordered_json::array();
        for (const SlotInfo& s : m.scheduler->slots())
            out.push_back({{"id", s.id},
                           {"is_processing", s.busy},
                           {"n_ctx", s.n_ctx},
                           {"n_cached", s.n_cached},
                           {"n_prompt", s.n_prompt},
                           {"n_decoded", s.n_generated}});
        send_json(res, 200, out);
    });
    srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        if (!p.metrics)
            return send_error(
                res, api_error(501, "metrics are off; start the server with --metrics", "not_supported_error"));
        res.set_content(metrics_text(), "text/plain; version=0.0.4");
    });
}

HttpServer::HttpServer(ServerParams params) : impl_(std::make_unique<Impl>()) { impl_->p = std::move(params); }

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
    Impl& s = *impl_;
    s.routes();
    s.srv.set_payload_max_length(s.p.max_body_bytes);
    s.srv.set_read_timeout(s.p.timeout_s, 0);
    s.srv.set_write_timeout(s.p.timeout_s, 0);
    const int threads = std::max(2, s.p.threads_http);
    s.srv.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    if (s.p.port == 0) {
        bound_port_ = s.srv.bind_to_any_port(s.p.host);
        if (bound_port_ <= 0) return make_error("cannot listen on " + s.p.host + " (any port)");
    } else {
        if (!s.srv.bind_to_port(s.p.host, s.p.port))
            return make_error("cannot listen on " + s.p.host + ":" + std::to_string(s.p.port) +
                              " (in use, or not an address of this machine)");
        bound_port_ = s.p.port;
    }
    s.thread = std::thread([&s] { s.srv.listen_after_bind(); });
    return {};
}

void HttpServer::attach(const ServerModel& m) {
    impl_->m = m;
    impl_->ready.store(true);
}

void HttpServer::stop() {
    if (!impl_) return;
    impl_->srv.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace ferry::server
