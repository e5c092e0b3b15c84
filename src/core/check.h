// FERRY_CHECK guards internal invariants — our own bugs, never bad input. It stays on in release
// builds: a wrong answer from an inference engine is worse than a crash with a message.
#pragma once

namespace ferry::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line);
}

#define FERRY_CHECK(cond)                                             \
    do {                                                              \
        if (!(cond)) [[unlikely]]                                     \
            ::ferry::detail::check_failed(#cond, __FILE__, __LINE__); \
    } while (0)
