// Ctrl-C as a request, not a kill: the handler only sets a flag that generation loops poll.
#pragma once

#include <atomic>

namespace ferry::tools {

// Installs the SIGINT handler (once) and returns the flag it sets. Blocking reads are interrupted
// (no SA_RESTART), so a prompt waiting for input sees the Ctrl-C too.
std::atomic<bool>& interrupt_flag();

}  // namespace ferry::tools
