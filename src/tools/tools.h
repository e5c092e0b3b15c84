// Entry points of the subcommands. Each takes the parsed command line and returns the process exit
// code: 0 on success, 1 when the work failed (bad file, out of memory, ...). Usage errors (exit 2)
// are caught earlier, by the CLI parser.
#pragma once

#include <cstdint>

#include "tools/params.h"

namespace ferry::tools {

// ferry inspect: print a GGUF file's metadata, tensors and sizes.
int run_inspect(const Params& params);

// ferry tokenize: print the token ids of a text.
int run_tokenize(const Params& params);

// ferry template: render a chat template for a conversation.
int run_template(const Params& params);

// ferry run: complete a prompt, streaming the completion.
int run_run(const Params& params);

// ferry chat: an interactive chat with the model's template.
int run_chat(const Params& params);

// ferry bench: llama-bench's speed tests, bytes per token against the machine's bandwidth.
int run_bench(const Params& params);

// llama.cpp's llama_ftype numbers (general.file_type): the quantization mix a file was made with
// ("Q4_K_M"); "unknown" for numbers llama.cpp does not define.
const char* file_type_name(uint64_t id);
// ferry perplexity: llama-perplexity's PPL and KL-divergence measurements.
int run_perplexity(const Params& params);

// ferry bench serve: the seed's chat scenarios against OpenAI-compatible servers (bench_serve.cpp).
int run_bench_serve(const Params& params);

// ferry serve: an OpenAI-compatible HTTP server.
int run_serve(const Params& params);

}  // namespace ferry::tools
