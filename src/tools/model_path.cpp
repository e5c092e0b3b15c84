#include "tools/model_path.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace ferry::tools {
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> model_dirs() {
    std::vector<fs::path> dirs;
    if (const char* env = std::getenv("FERRY_MODELS"); env && *env) {
        dirs.emplace_back(env);
        return dirs;
    }
    dirs.emplace_back("models");
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) dirs.push_back(exe.parent_path() / ".." / ".." / "models");
    return dirs;
}

}  // namespace

Result<std::string> resolve_model(const Params& params) {
    if (!params.model.empty()) return params.model;
    std::string looked;
    for (const fs::path& dir : model_dirs()) {
        const fs::path candidate = dir / kDefaultModelFile;
        std::error_code ec;
        if (fs::is_regular_file(candidate, ec)) return candidate.lexically_normal().string();
        looked += (looked.empty() ? "" : ", ") + candidate.lexically_normal().string();
    }
    return make_error(std::string("no model given (-m FILE.gguf) and the default model ") + kDefaultModelFile +
                      " is not at " + looked + "; fetch it with scripts/get_model.sh (or set FERRY_MODELS)");
}

}  // namespace ferry::tools
