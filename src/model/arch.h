// The architecture loaders behind model::load, one per file.
#pragma once

#include <memory>

#include "core/result.h"
#include "gguf/reader.h"
#include "model/model.h"

namespace ferry::model {

Result<std::unique_ptr<Model>> load_llama(const gguf::File& file);
Result<std::unique_ptr<Model>> load_qwen3(const gguf::File& file);
Result<std::unique_ptr<Model>> load_qwen3moe(const gguf::File& file);
Result<std::unique_ptr<Model>> load_gemma3(const gguf::File& file);
Result<std::unique_ptr<Model>> load_qwen35(const gguf::File& file);
Result<std::unique_ptr<Model>> load_qwen35moe(const gguf::File& file);

}  // namespace ferry::model
