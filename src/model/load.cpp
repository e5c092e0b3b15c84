#include <string>

#include "model/arch.h"

namespace ferry::model {

Result<std::unique_ptr<Model>> load(const gguf::File& file) {
    const gguf::Value* v = file.find("general.architecture");
    if (v == nullptr) return make_error("gguf key 'general.architecture': missing (required)");
    const std::string* arch = v->get_string();
    if (arch == nullptr) return make_error("gguf key 'general.architecture': expected a string");
    if (*arch == "llama") return load_llama(file);
    if (*arch == "qwen3") return load_qwen3(file);
    if (*arch == "qwen3moe") return load_qwen3moe(file);
    if (*arch == "gemma3") return load_gemma3(file);
    if (*arch == "qwen35") return load_qwen35(file);
    if (*arch == "qwen35moe") return load_qwen35moe(file);
    return make_error("gguf key 'general.architecture': '" + *arch +
                      "' is not supported (llama, qwen3, qwen3moe, gemma3, qwen35, qwen35moe)");
}

}  // namespace ferry::model
