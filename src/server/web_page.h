// The chat page served at `/`: src/server/web/index.html, embedded at build time (web_page.cpp.in).
#pragma once

#include <string_view>

namespace ferry::server {

std::string_view web_page();

}  // namespace ferry::server
