#include "tools/interrupt.h"

#include <csignal>

namespace ferry::tools {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted.store(true); }

}  // namespace

std::atomic<bool>& interrupt_flag() {
    static const bool installed = [] {
        struct sigaction sa {};
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        return sigaction(SIGINT, &sa, nullptr) == 0;
    }();
    (void)installed;
    return g_interrupted;
}

}  // namespace ferry::tools
