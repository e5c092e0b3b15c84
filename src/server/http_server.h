// `ferry serve`'s HTTP side: the OpenAI-compatible routes over cpp-httplib, API keys, the size limit,
// streaming (server-sent events), metrics and the chat page.
//
// The server listens before the model is loaded: /health answers 503 until attach() hands it the
// model, and every other route answers 503 too. Each request is handled on one of the HTTP threads
// (--threads-http): it is validated and tokenized there, submitted to the Scheduler, and answered
// as the task's output arrives. While waiting, the thread watches the client's socket: a client that
// disconnects cancels its task (also during prefill), which frees the slot within one engine step.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "model/model.h"
#include "runtime/sampling.h"
#include "server/scheduler.h"
#include "text/jinja/template.h"
#include "text/tokenizer/vocab.h"

namespace ferry::server {

struct ServerParams {
    std::string host = "127.0.0.1";
    int port = 8080;
    std::vector<std::string> api_keys;  // empty: no authentication
    bool metrics = false;               // serve /metrics
    std::string alias;                  // model id in /v1/models and responses
    int timeout_s = 600;                // socket read/write timeout and per-request deadline
    int threads_http = 0;               // 0: slots + queue + 4
    size_t max_body_bytes = size_t(10) << 20;
    runtime::SamplingParams sampling;  // defaults for requests that do not set a field
    int n_predict = -1;                // default max_tokens
};

// What the server needs once the model is loaded; all of it outlives the server.
struct ServerModel {
    const model::Model* model = nullptr;
    const text::Vocab* vocab = nullptr;
    const text::Template* chat_template = nullptr;
    std::string chat_template_source;
    nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
    Scheduler* scheduler = nullptr;
    std::string model_path;
};

class HttpServer {
public:
    explicit HttpServer(ServerParams params);
    ~HttpServer();

    // Binds host:port and starts answering (503 until attach); error if the port cannot be bound.
    Status start();
    void attach(const ServerModel& m);
    void stop();
    int port() const { return bound_port_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int bound_port_ = 0;
};

// Compares two strings in time that depends only on their lengths (API keys).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace ferry::server
