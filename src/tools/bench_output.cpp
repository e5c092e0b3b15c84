// ferry bench's output formats. Field names are llama-bench's where the two overlap (model_type,
// model_size, model_n_params, n_threads, n_prompt, n_gen, n_depth, avg_ts, stddev_ts, samples_ns, ...);
// ferry's own fields follow them:
//
//   weight_bytes_per_token, kv_bytes_per_token   decode rows: bytes the backend read per token
//   expert_bytes_per_token                       decode rows: the routed experts' part of the weights
//                                                (mixture of experts: only the chosen experts; 0 if dense)
//   achieved_gbs, bandwidth_gbs, bandwidth_pct   (weights + KV) x t/s, the machine's read bandwidth, ratio
//   peak_rss_bytes                               peak resident set since the row's model was loaded
//   llama_cpp_version, llama_cpp_avg_ts, llama_cpp_stddev_ts, llama_cpp_samples_ns, ratio
//                                                --vs-llama-cpp: llama.cpp's figures, ferry / llama.cpp
//
// md is llama-bench's table (columns n_batch, n_ubatch, type_k, type_v, fa, mmap appear only when some
// instance differs from llama-bench's defaults), followed by ferry's columns; json is an array of
// objects, jsonl one object per line, csv a header line then one line per row.
#include <cinttypes>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/ggml_type.h"
#include "tools/bench.h"

namespace ferry::tools::bench {
namespace {

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string lower_type(GgmlType t) {
    std::string s(type_name(t));
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string human_bytes(double b) {
    if (b >= double(1ull << 30)) return fmt("%.2f GiB", b / double(1ull << 30));
    if (b >= double(1 << 20) || b == 0) return fmt("%.2f MiB", b / double(1 << 20));
    return fmt("%.2f KiB", b / 1024.0);
}

std::string human_params(double n) {
    if (n >= 1e9) return fmt("%.2f B", n / 1e9);
    return fmt("%.2f M", n / 1e6);
}

double bandwidth_pct(const Row& r, const Context& ctx) {
    return ctx.bandwidth_gbs > 0 ? 100.0 * r.achieved_gbs() / ctx.bandwidth_gbs : 0.0;
}

nlohmann::ordered_json row_json(const Row& r, const Context& ctx) {
    nlohmann::ordered_json j;
    j["cpu_info"] = ctx.cpu_info;
    j["backends"] = "CPU";
    j["model_filename"] = r.inst.model;
    j["model_type"] = r.model.type;
    j["model_size"] = r.model.size;
    j["model_n_params"] = r.model.n_params;
    j["n_batch"] = r.inst.n_batch;
    j["n_ubatch"] = r.inst.n_ubatch;
    j["n_threads"] = r.inst.threads;
    j["type_k"] = lower_type(r.inst.type_k);
    j["type_v"] = lower_type(r.inst.type_v);
    j["flash_attn"] = r.inst.flash_attn;
    j["use_mmap"] = r.inst.mmap;
    j["n_prompt"] = r.test.n_prompt;
    j["n_gen"] = r.test.n_gen;
    j["n_depth"] = r.test.n_depth;
    j["n_parallel"] = r.test.n_parallel;
    j["test_time"] = r.test_time;
    double avg_ns = 0, sd_ns = 0;
    const auto& s = r.ferry.samples_ns;
    for (uint64_t v : s) avg_ns += double(v) / double(s.size());
    for (uint64_t v : s) sd_ns += (double(v) - avg_ns) * (double(v) - avg_ns);
    sd_ns = s.size() > 1 ? std::sqrt(sd_ns / double(s.size() - 1)) : 0.0;
    j["avg_ns"] = uint64_t(std::llround(avg_ns));
    j["stddev_ns"] = uint64_t(std::llround(sd_ns));
    j["avg_ts"] = r.ferry.avg_ts();
    j["stddev_ts"] = r.ferry.stddev_ts();
    j["samples_ns"] = s;
    j["samples_ts"] = r.ferry.samples_ts();
    j["weight_bytes_per_token"] = r.weight_bytes_per_token;
    j["expert_bytes_per_token"] = r.expert_bytes_per_token;
    j["kv_bytes_per_token"] = r.kv_bytes_per_token;
    j["achieved_gbs"] = r.achieved_gbs();
    j["bandwidth_gbs"] = ctx.bandwidth_gbs;
    j["bandwidth_pct"] = bandwidth_pct(r, ctx);
    j["peak_rss_bytes"] = r.peak_rss;
    if (ctx.vs_llama_cpp) {
        j["llama_cpp_version"] = ctx.llama_cpp_version;
        if (r.llama_cpp) {
            j["llama_cpp_avg_ts"] = r.llama_cpp->avg_ts();
            j["llama_cpp_stddev_ts"] = r.llama_cpp->stddev_ts();
            j["llama_cpp_samples_ns"] = r.llama_cpp->samples_ns;
            j["ratio"] = r.llama_cpp->avg_ts() > 0 ? r.ferry.avg_ts() / r.llama_cpp->avg_ts() : 0.0;
        } else {
            j["llama_cpp_avg_ts"] = nullptr;
            j["llama_cpp_stddev_ts"] = nullptr;
            j["llama_cpp_samples_ns"] = nullptr;
            j["ratio"] = nullptr;
        }
    }
    return j;
}

class JsonPrinter final : public Printer {
public:
    JsonPrinter(const Context& ctx, std::FILE* out, bool lines) : ctx_(ctx), out_(out), lines_(lines) {}
    void begin() override {
        if (!lines_) std::fputs("[", out_);
        std::fflush(out_);
    }
    void row(const Row& r) override {
        const std::string text = row_json(r, ctx_).dump(lines_ ? -1 : 2);
        if (lines_) {
            std::fprintf(out_, "%s\n", text.c_str());
        } else {
            std::fprintf(out_, "%s\n%s", n_++ ? "," : "", text.c_str());
        }
        std::fflush(out_);
    }
    void end() override {
        if (!lines_) std::fputs("\n]\n", out_);
        std::fflush(out_);
    }

private:
    const Context& ctx_;
    std::FILE* out_;
    bool lines_;
    int n_ = 0;
};

std::string csv_cell(const nlohmann::ordered_json& v) {
    if (v.is_string()) {
        std::string s = "\"";
        for (char c : v.get<std::string>()) s += c == '"' ? std::string("\"\"") : std::string(1, c);
        return s + "\"";
    }
    if (v.is_array()) {
        std::string s = "\"";
        for (size_t i = 0; i < v.size(); ++i) {
            if (i) s.push_back(' ');
            s.append(v[i].dump());
        }
        return s + "\"";
    }
    if (v.is_null()) return "";
    return v.dump();
}

class CsvPrinter final : public Printer {
public:
    CsvPrinter(const Context& ctx, std::FILE* out) : ctx_(ctx), out_(out) {}
    void begin() override {
        // The header comes from an empty row, so it always names exactly the fields a row has.
        Row empty;
        empty.llama_cpp.emplace();
        const nlohmann::ordered_json j = row_json(empty, ctx_);
        std::string line;
        for (const auto& [key, value] : j.items()) {
            if (!line.empty()) line.push_back(',');
            line.append(key);
        }
        std::fprintf(out_, "%s\n", line.c_str());
        std::fflush(out_);
    }
    void row(const Row& r) override {
        const nlohmann::ordered_json j = row_json(r, ctx_);
        std::string line;
        bool first = true;
        for (const auto& [key, value] : j.items()) {
            if (!first) line.push_back(',');
            line.append(csv_cell(value));
            first = false;
        }
        std::fprintf(out_, "%s\n", line.c_str());
        std::fflush(out_);
    }
    void end() override {}

private:
    const Context& ctx_;
    std::FILE* out_;
};

class MarkdownPrinter final : public Printer {
public:
    MarkdownPrinter(const Context& ctx, std::FILE* out) : ctx_(ctx), out_(out) {}

    void begin() override {
        add("model", 24, false);
        add("size", 10, true);
        add("params", 10, true);
        add("backend", 7, false);
        add("threads", 7, true);
        if (ctx_.show_batch) add("n_batch", 7, true);
        if (ctx_.show_ubatch) add("n_ubatch", 8, true);
        if (ctx_.show_type_k) add("type_k", 6, false);
        if (ctx_.show_type_v) add("type_v", 6, false);
        if (ctx_.show_fa) add("fa", 4, false);
        if (ctx_.show_mmap) add("mmap", 4, true);
        add("test", 16, true);
        add("t/s", 20, true);
        if (ctx_.vs_llama_cpp) {
            add("llama.cpp t/s", 20, true);
            add("ferry/llama.cpp", 15, true);
        }
        add("weights/tok", 11, true);
        if (ctx_.show_experts) add("experts/tok", 11, true);
        add("KV/tok", 10, true);
        add("GB/s", 7, true);
        add("% bw", 6, true);
        add("peak RSS", 10, true);
        std::string head = "|", rule = "|";
        for (const Column& c : cols_) {
            head.append(" ").append(pad(c.name, c)).append(" |");
            rule.append(" ").append(size_t(c.right ? c.width - 1 : c.width), '-').append(c.right ? ": |" : " |");
        }
        std::fprintf(out_, "%s\n%s\n", head.c_str(), rule.c_str());
        std::fflush(out_);
    }

    void row(const Row& r) override {
        std::vector<std::string> v = {r.model.type, human_bytes(double(r.model.size)),
                                      human_params(double(r.model.n_params)), "CPU", std::to_string(r.inst.threads)};
        if (ctx_.show_batch) v.push_back(std::to_string(r.inst.n_batch));
        if (ctx_.show_ubatch) v.push_back(std::to_string(r.inst.n_ubatch));
        if (ctx_.show_type_k) v.push_back(lower_type(r.inst.type_k));
        if (ctx_.show_type_v) v.push_back(lower_type(r.inst.type_v));
        if (ctx_.show_fa) v.push_back(r.inst.flash_attn);
        if (ctx_.show_mmap) v.push_back(r.inst.mmap ? "1" : "0");
        v.push_back(r.test.name());
        v.push_back(fmt("%.2f", r.ferry.avg_ts()) + fmt(" ± %.2f", r.ferry.stddev_ts()));
        if (ctx_.vs_llama_cpp) {
            if (r.llama_cpp) {
                v.push_back(fmt("%.2f", r.llama_cpp->avg_ts()) + fmt(" ± %.2f", r.llama_cpp->stddev_ts()));
                v.push_back(fmt("%.2f", r.llama_cpp->avg_ts() > 0 ? r.ferry.avg_ts() / r.llama_cpp->avg_ts() : 0));
            } else {
                v.insert(v.end(), {"-", "-"});
            }
        }
        if (r.is_decode()) {
            v.push_back(human_bytes(r.weight_bytes_per_token));
            if (ctx_.show_experts) v.push_back(human_bytes(r.expert_bytes_per_token));
            v.push_back(human_bytes(r.kv_bytes_per_token));
            v.push_back(fmt("%.2f", r.achieved_gbs()));
            v.push_back(ctx_.bandwidth_gbs > 0 ? fmt("%.1f", bandwidth_pct(r, ctx_)) : "-");
        } else {
            v.insert(v.end(), {"", "", "", ""});
            if (ctx_.show_experts) v.push_back("");
        }
        v.push_back(human_bytes(double(r.peak_rss)));
        std::string line = "|";
        for (size_t i = 0; i < v.size(); ++i) line.append(" ").append(pad(v[i], cols_[i])).append(" |");
        std::fprintf(out_, "%s\n", line.c_str());
        std::fflush(out_);
    }

    // After the table, as llama-bench ends with its build: what the ratio and % columns are against.
    void end() override {
        std::string note = "\n";
        if (ctx_.bandwidth_gbs > 0) note += fmt("%% bw: of %.2f GB/s", ctx_.bandwidth_gbs);
        if (!ctx_.llama_cpp_version.empty()) {
            note.append(note.size() > 1 ? "; " : "").append("llama.cpp: ").append(ctx_.llama_cpp_version);
        }
        if (note.size() > 1) std::fprintf(out_, "%s\n", note.c_str());
        std::fflush(out_);
    }

private:
    struct Column {
        std::string name;
        int width;
        bool right;
    };
    void add(std::string name, int width, bool right) {
        width = std::max(width, int(name.size()));
        cols_.push_back({std::move(name), width, right});
    }
    // Pads to the column's width in characters (UTF-8 aware for "±").
    static std::string pad(const std::string& s, const Column& c) {
        int chars = 0;
        for (unsigned char ch : s) chars += (ch & 0xC0) != 0x80;
        if (chars >= c.width) return s;
        const std::string fill(size_t(c.width - chars), ' ');
        return c.right ? fill + s : s + fill;
    }

    const Context& ctx_;
    std::FILE* out_;
    std::vector<Column> cols_;
};

}  // namespace

std::unique_ptr<Printer> make_printer(const std::string& format, const Context& ctx, std::FILE* out) {
    if (format == "json") return std::make_unique<JsonPrinter>(ctx, out, false);
    if (format == "jsonl") return std::make_unique<JsonPrinter>(ctx, out, true);
    if (format == "csv") return std::make_unique<CsvPrinter>(ctx, out);
    return std::make_unique<MarkdownPrinter>(ctx, out);
}

}  // namespace ferry::tools::bench
