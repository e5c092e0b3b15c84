// ferry bench serve: how the seed measured llama-server (../shared/SPEC.md section 9), against any
// OpenAI-compatible server (ferry, llama-server, vLLM), over POST /v1/chat/completions.
//
//   short / medium / long   one fixed English prompt each (~14 / ~140 / ~430 words), one request per run
//   multi-turn              five turns: "Tell me about the history of computing. ...", then after each
//                           answer its first 200 characters go back as the assistant turn, followed by
//                           "Continue. Tell me more about what happened next."
//
// Every request: max_tokens 256 (-n), temperature 0.7. A scenario runs -r times (5), the first run is
// discarded (kept when -r is 1). tok/s = completion tokens / wall time of the HTTP request, so it
// includes prompt processing and HTTP (multi-turn: the sum over the turns / the sum of their times).
// Streamed requests (the default) also give the time to the first token (TTFT) and the decode rate
// (tokens after the first / time from the first to the last). --concurrency N sends the scenario from
// N clients at once: tok/s is then all their completion tokens / the run's wall time; a list (1,4) runs
// each level in turn and reports "scaling", the median over runs of tok/s against the first level.
// --vs URL runs a second server after each run of the first (A B A B ...) and prints ratios A/B.
// Runs are interleaved: run k of every level and server comes before run k+1 of any.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr double kTemperature = 0.7;
constexpr int kDefaultMaxTokens = 256;
constexpr int kTurns = 5;
constexpr size_t kKeepChars = 200;

constexpr const char* kShortPrompt =
    "Explain in simple terms how a refrigerator keeps food cold, and why it needs "
    "electricity.";

constexpr const char* kMediumPrompt =
    "I am planning a small vegetable garden in the back yard of a rented house. The yard gets about six hours "
    "of direct sun in summer, the soil is heavy clay that stays wet for days after rain, and I can spend "
    "roughly two hours a week on it. I would like to grow tomatoes, beans, lettuce, carrots and a few herbs "
    "for cooking, and I want to avoid chemical fertilizers and pesticides. The landlord allows raised beds "
    "as long as they can be removed when I move out. My budget is modest, and I have never grown anything "
    "except a basil plant on a windowsill. Please describe how I should prepare the ground or the beds, "
    "which materials to buy, when to plant each crop in a temperate climate, how often to water, how to "
    "deal with slugs and aphids without poison, and which mistakes beginners make most often. Finish with "
    "a simple week by week plan for the first two months.";

constexpr const char* kLongPrompt =
    "Read the following account of a small town's library and answer the questions after it.\n\n"
    "The public library of Eastbrook opened in 1911 in two rooms above the post office. Its first "
    "collection, about nine hundred books, came from the estate of a retired sea captain who had spent "
    "forty years carrying timber and grain between the northern ports. He left the books on the condition "
    "that they be lent free of charge to anyone who lived within a day's walk of the harbor, and that the "
    "reading room stay open on Sunday afternoons, when working people had time to read. For the first "
    "decade the library was run by volunteers, most of them teachers from the grammar school, who kept "
    "the loans in a ledger and repaired damaged spines with glue made from flour and water.\n\n"
    "In 1924 the town council agreed to pay a librarian. The post went to Margaret Hale, a widow who had "
    "worked in a bookshop in the city. She introduced a card catalogue, began buying newspapers from three "
    "other towns, and started a reading hour for children on Saturday mornings. Attendance grew so quickly "
    "that the rooms above the post office became too small; people read standing in the stairwell, and "
    "the postmaster complained that his customers could not reach the counter. After a long argument about "
    "cost, the council bought the old customs house by the harbor in 1932, and volunteers spent a winter "
    "converting it. The fishermen's union paid for new shelves, and the school children raised money for a "
    "globe by selling apples.\n\n"
    "The depression years were hard. The council cut the book budget twice, and for eighteen months the "
    "library bought nothing new at all. Hale responded by organizing exchanges with libraries in "
    "neighboring towns: every three months a cart carried two hundred books along the coast road and "
    "brought two hundred different ones back. The scheme was so popular that it continued long after the "
    "budget recovered, and by 1950 eleven towns took part. During the war the customs house also served as "
    "a place where families could read the casualty lists, which were posted on a board by the door, and "
    "older residents still remember the silence of the reading room on those mornings.\n\n"
    "In the 1970s the building needed a new roof and the council proposed closing the library and moving "
    "the collection into the school. A campaign led by former pupils of Hale's Saturday reading hour "
    "collected four thousand signatures, more than the number of voters in the town, because people from "
    "the surrounding villages signed as well. The council relented, the roof was replaced, and a small "
    "extension was added for records and, later, computers. Today the library lends about sixty thousand "
    "items a year, runs language classes for newcomers, and still opens on Sunday afternoons, as the "
    "captain asked more than a century ago.\n\n"
    "Questions: Why did the library move in 1932, and who paid for what in the new building? How did the "
    "library keep offering new books when its budget was cut, and what became of that idea later? What "
    "role did the building play during the war? Why do you think the campaign in the 1970s succeeded? "
    "Finally, summarize in a few sentences what this history suggests about how small public institutions "
    "survive.";

constexpr const char* kTurnOne = "Tell me about the history of computing. Start from the beginning.";
constexpr const char* kTurnNext = "Continue. Tell me more about what happened next.";

struct Settings {
    std::string api_key;
    int timeout = 600;
    int max_tokens = kDefaultMaxTokens;
    bool stream = true;
};

struct Server {
    std::string label;   // "A", "B"
    std::string url;     // as given
    std::string origin;  // "http://host:port"
    std::string prefix;  // path before /v1 ("" for most servers)
    std::string model;
};

// What one request gave.
struct Reply {
    double wall_ms = 0;
    double ttft_ms = -1;    // streaming only
    double decode_ms = -1;  // first to last token, streaming only
    int completion_tokens = 0;
    int prompt_tokens = 0;
    int cached_tokens = 0;
    std::string content;
};

// What one run of a scenario gave (all its requests, over all its clients).
struct RunResult {
    double tok_s = 0;
    double wall_ms = 0;
    double ttft_ms = -1;       // mean over the requests
    double decode_tok_s = -1;  // mean over the requests
    double prompt_tokens = 0;  // mean per request
    double completion_tokens = 0;
    double cached_tokens = 0;
    int requests = 0;
};

double ms_since(Clock::time_point t0, Clock::time_point t1) {
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

Result<Server> parse_server(std::string label, const std::string& url) {
    const size_t scheme = url.starts_with("http://") ? 7 : url.starts_with("https://") ? 8 : 0;
    if (scheme == 0) return make_error(url + ": expected a URL starting with http:// or https://");
    Server s{.label = std::move(label), .url = url, .origin = {}, .prefix = {}, .model = {}};
    const std::string rest = url.substr(scheme);
    const size_t slash = rest.find('/');
    const std::string host_port = rest.substr(0, slash);
    if (host_port.empty()) return make_error(url + ": no host in the URL");
    s.origin = url.substr(0, scheme) + host_port;
    s.prefix = slash == std::string::npos ? "" : rest.substr(slash);
    while (s.prefix.ends_with('/')) s.prefix.pop_back();
    if (s.prefix.ends_with("/v1")) s.prefix.resize(s.prefix.size() - 3);
    return s;
}

void set_timeouts(httplib::Client& cli, int timeout) {
    cli.set_connection_timeout(std::min(timeout, 10));
    cli.set_read_timeout(timeout);
    cli.set_write_timeout(timeout);
}

// "HTTP 401 from URL: message" with the server's OpenAI-shaped error message when it has one.
std::string http_error(const Server& s, const std::string& path, int status, const std::string& body) {
    std::string msg = "HTTP " + std::to_string(status) + " from " + s.origin + path;
    const json j = json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error")) {
        const json& e = j["error"];
        if (e.is_object() && e.contains("message") && e["message"].is_string()) {
            msg += ": " + e["message"].get<std::string>();
        } else if (e.is_string()) {
            msg += ": " + e.get<std::string>();
        }
    } else if (!body.empty()) {
        msg += ": " + body.substr(0, 200);
    }
    return msg;
}

std::string unreachable(const Server& s, httplib::Error e) {
    return "cannot reach " + s.url + ": " + httplib::to_string(e);
}

// GET /v1/models: checks that the server answers, and names its first model.
Status discover(Server& s, const Settings& st, const std::string& model_name) {
    httplib::Client cli(s.origin);
    set_timeouts(cli, st.timeout);
    httplib::Headers headers;
    if (!st.api_key.empty()) headers.emplace("Authorization", "Bearer " + st.api_key);
    const std::string path = s.prefix + "/v1/models";
    const httplib::Result res = cli.Get(path, headers);
    if (!res) return make_error(unreachable(s, res.error()));
    if (res->status != 200) return make_error(http_error(s, path, res->status, res->body));
    if (!model_name.empty()) {
        s.model = model_name;
        return {};
    }
    const json j = json::parse(res->body, nullptr, false);
    if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() && j["data"][0].is_object() &&
        j["data"][0].contains("id") && j["data"][0]["id"].is_string()) {
        s.model = j["data"][0]["id"].get<std::string>();
        return {};
    }
    return make_error(s.origin + path + " lists no model; name one with --model-name");
}

// Server-sent events of a streamed chat completion, fed as bytes arrive.
class SseReader {
public:
    explicit SseReader(Clock::time_point t0) : t0_(t0) {}

    void feed(const char* data, size_t n) {
        buf_.append(data, n);
        size_t nl;
        while ((nl = buf_.find('\n')) != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            if (line.ends_with('\r')) line.pop_back();
            if (line.starts_with("data:")) event(line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5));
        }
    }

    // Fills the streaming fields of `r`; an error when the stream carried one or no [DONE].
    Status finish(Reply& r) {
        if (!error_.empty()) return make_error("the stream reported an error: " + error_);
        if (!done_) return make_error("the stream ended without data: [DONE]");
        r.content = content_;
        if (usage_) {
            r.completion_tokens = completion_;
            r.prompt_tokens = prompt_;
            r.cached_tokens = cached_;
        } else {
            r.completion_tokens = chunks_;  // no usage in the stream: one chunk per token, as servers send them
        }
        if (chunks_ > 0) {
            r.ttft_ms = ms_since(t0_, first_);
            r.decode_ms = ms_since(first_, last_);
        }
        return {};
    }

private:
    void event(const std::string& data) {
        if (data == "[DONE]") {
            done_ = true;
            return;
        }
        const json j = json::parse(data, nullptr, false);
        if (!j.is_object()) return;
        if (j.contains("error")) {
            const json& e = j["error"];
            error_ = e.is_object() && e.contains("message") && e["message"].is_string()
                         ? e["message"].get<std::string>()
                         : e.dump();
            return;
        }
        if (j.contains("usage") && j["usage"].is_object()) {
            const json& u = j["usage"];
            usage_ = true;
            completion_ = u.value("completion_tokens", 0);
            prompt_ = u.value("prompt_tokens", 0);
            if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object()) {
                cached_ = u["prompt_tokens_details"].value("cached_tokens", 0);
            }
        }
        if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
        const json& choice = j["choices"][0];
        if (!choice.is_object() || !choice.contains("delta") || !choice["delta"].is_object()) return;
        const json& delta = choice["delta"];
        bool token = false;
        for (const char* key : {"content", "reasoning_content"}) {
            if (delta.contains(key) && delta[key].is_string() && !delta[key].get<std::string>().empty()) {
                token = true;
                if (std::string_view(key) == "content") content_ += delta[key].get<std::string>();
            }
        }
        if (delta.contains("tool_calls") && delta["tool_calls"].is_array() && !delta["tool_calls"].empty())
            token = true;
        if (!token) return;
        const Clock::time_point now = Clock::now();
        if (chunks_++ == 0) first_ = now;
        last_ = now;
    }

    Clock::time_point t0_, first_, last_;
    std::string buf_, content_, error_;
    bool done_ = false, usage_ = false;
    int chunks_ = 0, completion_ = 0, prompt_ = 0, cached_ = 0;
};

Result<Reply> chat(const Server& s, const Settings& st, const json& messages) {
    json body = {
        {"model", s.model}, {"messages", messages}, {"max_tokens", st.max_tokens}, {"temperature", kTemperature}};
    if (st.stream) {
        body["stream"] = true;
        body["stream_options"] = {{"include_usage", true}};
    }
    httplib::Client cli(s.origin);
    set_timeouts(cli, st.timeout);
    httplib::Request req;
    req.method = "POST";
    req.path = s.prefix + "/v1/chat/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    if (!st.api_key.empty()) req.set_header("Authorization", "Bearer " + st.api_key);
    const Clock::time_point t0 = Clock::now();
    SseReader sse(t0);
    std::string raw;
    int status = 0;
    req.response_handler = [&](const httplib::Response& r) {
        status = r.status;
        return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (st.stream && status == 200) {
            sse.feed(data, n);
        } else {
            raw.append(data, n);
        }
        return true;
    };
    const httplib::Result res = cli.send(req);
    Reply r;
    r.wall_ms = ms_since(t0, Clock::now());
    if (!res) return make_error(unreachable(s, res.error()));
    if (res->status != 200) return make_error(http_error(s, req.path, res->status, raw));
    if (st.stream) {
        FERRY_TRY(sse.finish(r));
        return r;
    }
    const json j = json::parse(raw, nullptr, false);
    if (!j.is_object() || !j.contains("usage") || !j["usage"].is_object()) {
        return make_error("the reply from " + s.origin + req.path + " has no usage: " + raw.substr(0, 200));
    }
    const json& u = j["usage"];
    r.completion_tokens = u.value("completion_tokens", 0);
    r.prompt_tokens = u.value("prompt_tokens", 0);
    if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object()) {
        r.cached_tokens = u["prompt_tokens_details"].value("cached_tokens", 0);
    }
    if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
        const json& m = j["choices"][0].value("message", json::object());
        if (m.contains("content") && m["content"].is_string()) r.content = m["content"].get<std::string>();
    }
    return r;
}

json user(const char* text) { return {{"role", "user"}, {"content", text}}; }

// One client's share of a run: a single request, or the five turns of the conversation.
Result<std::vector<Reply>> client_work(const Server& s, const Settings& st, const std::string& scenario) {
    std::vector<Reply> replies;
    if (scenario != "multi-turn") {
        const char* prompt = scenario == "short" ? kShortPrompt : scenario == "medium" ? kMediumPrompt : kLongPrompt;
        FERRY_ASSIGN(Reply r, chat(s, st, json::array({user(prompt)})));
        replies.push_back(std::move(r));
        return replies;
    }
    json messages = json::array({user(kTurnOne)});
    for (int turn = 0; turn < kTurns; ++turn) {
        FERRY_ASSIGN(Reply r, chat(s, st, messages));
        std::string kept = r.content.substr(0, std::min(r.content.size(), kKeepChars));
        while (!kept.empty() && (static_cast<unsigned char>(kept.back()) & 0xC0) == 0x80) kept.pop_back();
        if (!kept.empty() && static_cast<unsigned char>(kept.back()) >= 0xC0) kept.pop_back();  // a cut UTF-8 lead
        messages.push_back({{"role", "assistant"}, {"content", kept}});
        messages.push_back(user(kTurnNext));
        replies.push_back(std::move(r));
    }
    return replies;
}

Result<RunResult> run_once(const Server& s, const Settings& st, const std::string& scenario, int clients) {
    std::vector<Result<std::vector<Reply>>> out(size_t(clients), std::vector<Reply>{});
    const Clock::time_point t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] { out[size_t(c)] = client_work(s, st, scenario); });
    }
    for (std::thread& t : threads) t.join();
    const double elapsed_ms = ms_since(t0, Clock::now());

    RunResult rr;
    double sum_wall = 0, sum_ttft = 0, sum_decode = 0, tokens = 0;
    int n_ttft = 0, n_decode = 0;
    for (Result<std::vector<Reply>>& o : out) {
        if (!o.ok()) return make_error(o.error().message);
        for (const Reply& r : o.value()) {
            ++rr.requests;
            sum_wall += r.wall_ms;
            tokens += r.completion_tokens;
            rr.prompt_tokens += r.prompt_tokens;
            rr.cached_tokens += r.cached_tokens;
            if (r.ttft_ms >= 0) sum_ttft += r.ttft_ms, ++n_ttft;
            if (r.decode_ms > 0 && r.completion_tokens > 1) {
                sum_decode += (r.completion_tokens - 1) / (r.decode_ms / 1000.0);
                ++n_decode;
            }
        }
    }
    // One client: the seed's figure (tokens / the requests' own time); several: tokens / the run's time.
    rr.wall_ms = clients == 1 ? sum_wall : elapsed_ms;
    rr.tok_s = rr.wall_ms > 0 ? tokens / (rr.wall_ms / 1000.0) : 0;
    rr.completion_tokens = tokens / rr.requests;
    rr.prompt_tokens /= rr.requests;
    rr.cached_tokens /= rr.requests;
    if (n_ttft > 0) rr.ttft_ms = sum_ttft / n_ttft;
    if (n_decode > 0) rr.decode_tok_s = sum_decode / n_decode;
    return rr;
}

struct Stat {
    double mean = 0, sd = 0, median = 0;
    bool valid = false;
};

Stat stat_of(std::vector<double> v) {
    Stat s;
    std::erase_if(v, [](double x) { return x < 0; });
    if (v.empty()) return s;
    s.valid = true;
    for (double x : v) s.mean += x;
    s.mean /= double(v.size());
    for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
    s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0;
    std::sort(v.begin(), v.end());
    s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    return s;
}

// The kept runs of one (server, scenario, concurrency).
struct Row {
    const Server* server = nullptr;
    std::string scenario;
    int clients = 1;
    std::vector<RunResult> runs;

    Stat stat(double RunResult::*field) const {
        std::vector<double> v;
        for (const RunResult& r : runs) v.push_back(r.*field);
        return stat_of(v);
    }
};

// Aggregate tok/s of `r` against `base` (the same server and scenario at the first concurrency
// level): the median of the per-run ratios (runs were interleaved, so each pair saw the same load).
Stat scaling(const Row& r, const Row& base) {
    std::vector<double> v;
    for (size_t k = 0; k < std::min(r.runs.size(), base.runs.size()); ++k) {
        if (base.runs[k].tok_s > 0) v.push_back(r.runs[k].tok_s / base.runs[k].tok_s);
    }
    return stat_of(v);
}

// The row of the same server and scenario at the first concurrency level (rows are in that order).
const Row& base_row(const std::vector<Row>& rows, const Row& r) {
    for (const Row& b : rows) {
        if (b.server == r.server && b.scenario == r.scenario) return b;
    }
    return r;
}

json stat_json(const Stat& s) {
    if (!s.valid) return nullptr;
    return {{"mean", s.mean}, {"sd", s.sd}, {"median", s.median}};
}

std::string stat_md(const Stat& s, const char* f) {
    if (!s.valid) return "-";
    return fmt(f, s.mean) + " ± " + fmt(f, s.sd);
}

std::string ratio_md(const Stat& a, const Stat& b) {
    return a.valid && b.valid && b.mean > 0 ? fmt("%.2f", a.mean / b.mean) : "-";
}

json ratio_json(const Stat& a, const Stat& b) {
    if (!a.valid || !b.valid || b.mean <= 0) return nullptr;
    return a.mean / b.mean;
}

void print_json(const std::vector<Server>& servers, const std::vector<Row>& rows, const Settings& st, int runs) {
    json out;
    json ss = json::array();
    for (const Server& s : servers) ss.push_back({{"label", s.label}, {"url", s.url}, {"model", s.model}});
    out["settings"] = {{"max_tokens", st.max_tokens},   {"temperature", kTemperature}, {"runs", runs},
                       {"discarded", runs > 1 ? 1 : 0}, {"stream", st.stream},         {"servers", ss}};
    json results = json::array();
    for (const Row& r : rows) {
        json per_run = json::array();
        for (const RunResult& x : r.runs) {
            per_run.push_back({{"tok_s", x.tok_s},
                               {"wall_ms", x.wall_ms},
                               {"ttft_ms", x.ttft_ms >= 0 ? json(x.ttft_ms) : json(nullptr)},
                               {"decode_tok_s", x.decode_tok_s >= 0 ? json(x.decode_tok_s) : json(nullptr)},
                               {"requests", x.requests},
                               {"prompt_tokens", x.prompt_tokens},
                               {"cached_tokens", x.cached_tokens},
                               {"completion_tokens", x.completion_tokens}});
        }
        results.push_back({{"server", r.server->label},
                           {"url", r.server->url},
                           {"scenario", r.scenario},
                           {"concurrency", r.clients},
                           {"tok_s", stat_json(r.stat(&RunResult::tok_s))},
                           {"ttft_ms", stat_json(r.stat(&RunResult::ttft_ms))},
                           {"decode_tok_s", stat_json(r.stat(&RunResult::decode_tok_s))},
                           {"prompt_tokens", r.stat(&RunResult::prompt_tokens).mean},
                           {"completion_tokens", r.stat(&RunResult::completion_tokens).mean},
                           {"scaling", stat_json(scaling(r, base_row(rows, r)))},
                           {"runs", per_run}});
    }
    out["results"] = results;
    if (servers.size() == 2) {
        json ratios = json::array();
        for (size_t i = 0; i + 1 < rows.size(); i += 2) {
            const Row &a = rows[i], &b = rows[i + 1];
            ratios.push_back(
                {{"scenario", a.scenario},
                 {"concurrency", a.clients},
                 {"tok_s", ratio_json(a.stat(&RunResult::tok_s), b.stat(&RunResult::tok_s))},
                 {"ttft_ms", ratio_json(a.stat(&RunResult::ttft_ms), b.stat(&RunResult::ttft_ms))},
                 {"decode_tok_s", ratio_json(a.stat(&RunResult::decode_tok_s), b.stat(&RunResult::decode_tok_s))}});
        }
        out["ratios"] = ratios;
    }
    std::printf("%s\n", out.dump(2).c_str());
}

void print_md(const std::vector<Server>& servers, const std::vector<Row>& rows, const Settings& st, int runs) {
    for (const Server& s : servers)
        std::printf("%s = %s (model %s)\n", s.label.c_str(), s.url.c_str(), s.model.c_str());
    std::printf("max_tokens %d, temperature %.1f, %s, %d runs%s; mean ± sd\n\n", st.max_tokens, kTemperature,
                st.stream ? "streamed" : "not streamed", runs, runs > 1 ? " (the first discarded)" : "");
    const bool levels =
        std::any_of(rows.begin(), rows.end(), [&](const Row& r) { return r.clients != rows[0].clients; });
    std::printf("| server | scenario | clients | tok/s | TTFT ms | decode tok/s | prompt tok | completion tok |%s\n",
                levels ? " scaling |" : "");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|%s\n", levels ? "---:|" : "");
    for (const Row& r : rows) {
        const Stat sc = scaling(r, base_row(rows, r));
        std::printf("| %s | %s | %d | %s | %s | %s | %.0f | %.0f |%s\n", r.server->label.c_str(), r.scenario.c_str(),
                    r.clients, stat_md(r.stat(&RunResult::tok_s), "%.2f").c_str(),
                    stat_md(r.stat(&RunResult::ttft_ms), "%.0f").c_str(),
                    stat_md(r.stat(&RunResult::decode_tok_s), "%.2f").c_str(), r.stat(&RunResult::prompt_tokens).mean,
                    r.stat(&RunResult::completion_tokens).mean,
                    !levels    ? ""
                    : sc.valid ? (" " + fmt("%.2f", sc.median) + "x |").c_str()
                               : " - |");
    }
    if (levels)
        std::printf("\nscaling: aggregate tok/s against the first --concurrency level, median of the per-run ratios\n");
    if (servers.size() != 2) return;
    std::printf("\n| scenario | clients | tok/s A/B | TTFT A/B | decode tok/s A/B |\n|---|---:|---:|---:|---:|\n");
    for (size_t i = 0; i + 1 < rows.size(); i += 2) {
        const Row &a = rows[i], &b = rows[i + 1];
        std::printf("| %s | %d | %s | %s | %s |\n", a.scenario.c_str(), a.clients,
                    ratio_md(a.stat(&RunResult::tok_s), b.stat(&RunResult::tok_s)).c_str(),
                    ratio_md(a.stat(&RunResult::ttft_ms), b.stat(&RunResult::ttft_ms)).c_str(),
                    ratio_md(a.stat(&RunResult::decode_tok_s), b.stat(&RunResult::decode_tok_s)).c_str());
    }
}

}  // namespace

int run_bench_serve(const Params& params) {
    const BenchServeParams& bp = params.bench_serve;
    Settings st;
    st.api_key = params.api_keys.empty() ? "" : params.api_keys.back();
    st.timeout = params.timeout;
    st.max_tokens = params.n_predict < 0 ? kDefaultMaxTokens : params.n_predict;
    st.stream = bp.stream;
    if (st.max_tokens == 0) {
        std::fprintf(stderr, "ferry bench serve: -n must be at least 1\n");
        return 2;
    }
    const int runs = params.bench.repetitions;
    const std::vector<std::string> scenarios =
        bp.scenarios.empty() ? std::vector<std::string>{"short", "medium", "long", "multi-turn"} : bp.scenarios;
    const std::vector<int> concurrency = bp.concurrency.empty() ? std::vector<int>{1} : bp.concurrency;

    std::vector<Server> servers;
    for (const auto& [label, url] : {std::pair<std::string, std::string>{"A", bp.url}, {"B", bp.vs}}) {
        if (url.empty()) continue;
        Result<Server> s = parse_server(label, url);
        if (s.ok()) {
            Status st_d = discover(s.value(), st, bp.model_name);
            if (!st_d.ok()) s = make_error(st_d.error().message);
        }
        if (!s.ok()) {
            std::fprintf(stderr, "ferry bench serve: %s\n", s.error().message.c_str());
            return 1;
        }
        servers.push_back(std::move(s).value());
    }

    // Interleaved: each run goes through every concurrency level and server before the next run.
    std::vector<Row> rows;
    for (const std::string& scenario : scenarios) {
        const size_t first = rows.size();
        for (int clients : concurrency) {
            for (const Server& s : servers) {
                rows.push_back({.server = &s, .scenario = scenario, .clients = clients, .runs = {}});
            }
        }
        for (int run = 0; run < runs; ++run) {
            for (size_t c = 0; c < concurrency.size(); ++c) {
                for (size_t i = 0; i < servers.size(); ++i) {
                    const Server& s = servers[i];
                    Result<RunResult> r = run_once(s, st, scenario, concurrency[c]);
                    if (!r.ok()) {
                        std::fprintf(stderr, "ferry bench serve: %s\n", r.error().message.c_str());
                        return 1;
                    }
                    const RunResult& x = r.value();
                    const bool kept = run > 0 || runs == 1;
                    const std::string ttft = x.ttft_ms >= 0 ? ", TTFT " + fmt("%.0f", x.ttft_ms) + " ms" : "";
                    std::fprintf(stderr, "bench serve: %s %s x%d run %d/%d: %.0f tokens in %.2f s, %.2f tok/s%s%s\n",
                                 s.label.c_str(), scenario.c_str(), concurrency[c], run + 1, runs,
                                 x.completion_tokens * x.requests, x.wall_ms / 1000.0, x.tok_s, ttft.c_str(),
                                 kept ? "" : " (discarded)");
                    if (kept) rows[first + c * servers.size() + i].runs.push_back(x);
                }
            }
        }
    }
    if (params.bench.output == "json") {
        print_json(servers, rows, st, runs);
    } else {
        print_md(servers, rows, st, runs);
    }
    return 0;
}

}  // namespace ferry::tools
