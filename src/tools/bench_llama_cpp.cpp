// llama.cpp's side of ferry bench: scripts/bench_llama_cpp.py in a child process, spoken to in JSON
// lines over two pipes (the protocol is described in the script). The child ignores SIGINT and has a
// process group of its own, so Ctrl-C reaches only ferry, which then closes the pipe to end it; if ferry
// is killed outright, the kernel ends the helper too (PR_SET_PDEATHSIG).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "tools/bench.h"

namespace ferry::tools::bench {
namespace {

namespace fs = std::filesystem;

std::string find_python() {
    if (const char* env = std::getenv("FERRY_PYTHON"); env && *env) return env;
    std::error_code ec;
    if (fs::exists(".venv/bin/python", ec)) return ".venv/bin/python";
    return "python3";
}

std::string find_script() {
    std::vector<fs::path> candidates;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path() / ".." / ".." / "scripts" / "bench_llama_cpp.py");
    candidates.emplace_back("scripts/bench_llama_cpp.py");
    for (const fs::path& p : candidates) {
        if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
    }
    return {};
}

std::string read_line(std::FILE* f) {
    std::string line;
    int c;
    while ((c = std::fgetc(f)) != EOF && c != '\n') line.push_back(char(c));
    return line;
}

}  // namespace

std::optional<LlamaCpp> LlamaCpp::start(std::string& why) {
    const std::string script = find_script();
    if (script.empty()) {
        why = "scripts/bench_llama_cpp.py was not found next to the ferry build or in the current directory";
        return std::nullopt;
    }
    const std::string python = find_python();
    signal(SIGPIPE, SIG_IGN);  // a helper that died shows up as a failed write, not a dead ferry
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0) {
        why = "cannot create a pipe";
        return std::nullopt;
    }
    if (pipe2(from_child, O_CLOEXEC) != 0) {
        close(to_child[0]);
        close(to_child[1]);
        why = "cannot create a pipe";
        return std::nullopt;
    }
    const pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_IGN);
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // ferry killed: the helper does not finish its test alone
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        execlp(python.c_str(), python.c_str(), script.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    if (pid < 0) {
        close(to_child[1]);
        close(from_child[0]);
        why = "cannot start " + python;
        return std::nullopt;
    }
    LlamaCpp l;
    l.pid_ = pid;
    l.to_ = fdopen(to_child[1], "w");
    l.from_ = fdopen(from_child[0], "r");
    const std::string hello = read_line(l.from_);
    const auto j = nlohmann::json::parse(hello, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        why = python + " " + script + " did not start (is " + python + " a Python 3 interpreter?)";
        return std::nullopt;
    }
    if (j.contains("error")) {
        why = j.value("error", std::string()) + "; install it with `" +
              j.value("install", std::string("pip install llama-cpp-python")) + "` (or set FERRY_PYTHON)";
        return std::nullopt;
    }
    l.version_ = j.value("version", std::string("?"));
    return l;
}

LlamaCpp::LlamaCpp(LlamaCpp&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      to_(std::exchange(o.to_, nullptr)),
      from_(std::exchange(o.from_, nullptr)),
      version_(std::move(o.version_)) {}

LlamaCpp::~LlamaCpp() {
    if (to_) {
        std::fputs("{\"op\":\"quit\"}\n", to_);
        std::fclose(to_);
    }
    if (from_) std::fclose(from_);
    if (pid_ > 0) {
        int status = 0;
        waitpid(pid_, &status, 0);
    }
}

Result<std::string> LlamaCpp::request(const std::string& json_line) {
    if (std::fputs((json_line + "\n").c_str(), to_) < 0 || std::fflush(to_) != 0) {
        return make_error("the llama.cpp helper has exited");
    }
    // A Ctrl-C while waiting interrupts the read (no SA_RESTART); keep waiting for the answer, so the
    // pipe stays in step, unless the helper is gone.
    std::string line;
    while (true) {
        const int c = std::fgetc(from_);
        if (c == EOF) {
            if (std::ferror(from_) && errno == EINTR) {
                std::clearerr(from_);
                continue;
            }
            return make_error("the llama.cpp helper has exited");
        }
        if (c == '\n') break;
        line.push_back(char(c));
    }
    return line;
}

Status LlamaCpp::load(const Instance& inst, int64_t n_ctx) {
    const nlohmann::json req = {{"op", "load"},
                                {"model", inst.model},
                                {"mmap", inst.mmap},
                                {"threads", inst.threads},
                                {"n_batch", inst.n_batch},
                                {"n_ubatch", inst.n_ubatch},
                                {"type_k", int(inst.type_k)},
                                {"type_v", int(inst.type_v)},
                                {"flash_attn", inst.flash_attn},
                                {"n_ctx", n_ctx}};
    FERRY_ASSIGN(const std::string line, request(req.dump()));
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error("the llama.cpp helper answered '" + line + "'");
    if (j.contains("error")) return make_error("llama.cpp: " + j.value("error", std::string()));
    return {};
}

Result<uint64_t> LlamaCpp::run(const Test& test) {
    const nlohmann::json req = {
        {"op", "run"}, {"n_prompt", test.n_prompt}, {"n_gen", test.n_gen}, {"n_depth", test.n_depth}};
    FERRY_ASSIGN(const std::string line, request(req.dump()));
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error("the llama.cpp helper answered '" + line + "'");
    if (j.contains("error")) return make_error("llama.cpp: " + j.value("error", std::string()));
    if (!j.contains("ns") || !j["ns"].is_number_unsigned()) return make_error("llama.cpp: no time in '" + line + "'");
    return j["ns"].get<uint64_t>();
}

}  // namespace ferry::tools::bench
