#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace ferry::log {
namespace {

std::atomic<Level> g_level{Level::Info};
std::mutex g_mutex;

const char* prefix(Level level) {
    switch (level) {
        case Level::Debug: return "debug: ";
        case Level::Warn: return "warning: ";
        case Level::Error: return "error: ";
        default: return "";
    }
}

}  // namespace

void set_level(Level l) { g_level.store(l); }
Level level() { return g_level.load(); }

void write(Level l, std::string_view message) {
    if (l < g_level.load()) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fprintf(stderr, "%s%.*s\n", prefix(l), int(message.size()), message.data());
}

}  // namespace ferry::log
