#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace ferry::detail {

void check_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "ferry: internal error: FERRY_CHECK(%s) failed at %s:%d\n", expr, file, line);
    std::fflush(stderr);
    std::abort();
}

}  // namespace ferry::detail
