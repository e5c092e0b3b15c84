// Where ferry finds its default model.
//
// The models directory is $FERRY_MODELS when set, else ./models, else the `models` folder of the
// source tree the binary was built in (build/bin/ferry -> ../../models). scripts/get_model.sh
// places the default model there.
#pragma once

#include <string>

#include "core/result.h"
#include "tools/params.h"

namespace ferry::tools {

inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

// The model a subcommand should load: Params::model when given, else the default model if it
// exists; an error that says where it looked and how to fetch it otherwise.
Result<std::string> resolve_model(const Params& params);

}  // namespace ferry::tools
