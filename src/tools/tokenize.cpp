// ferry tokenize: a text's token ids under a model's tokenizer (works on vocab-only GGUFs), in
// llama-tokenize's formats: one "id -> 'piece'" line per token with --pieces, else the id list.
#include <chrono>
#include <cstdio>
#include <string>

#include "core/log.h"
#include "gguf/reader.h"
#include "text/tokenizer/vocab.h"
#include "tools/model_path.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace {

// A token's bytes made printable on one line: controls and invalid UTF-8 as \xNN.
std::string printable_piece(std::string_view piece) {
    std::string out;
    for (unsigned char c : piece) {
        if (c == '\\' || c == '\'') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += char(c);
        }
    }
    return out;
}

int fail(const std::string& message) {
    std::fprintf(stderr, "ferry tokenize: %s\n", message.c_str());
    return 1;
}

}  // namespace

int run_tokenize(const Params& params) {
    if (!params.prompt.empty() && !params.prompt_file.empty()) return fail("give the text with -p or -f, not both");
    if (params.prompt.empty() && params.prompt_file.empty())
        return fail("nothing to tokenize: give -p TEXT or -f FILE");
    std::string text = params.prompt;
    if (!params.prompt_file.empty()) {
        auto content = read_text_file(params.prompt_file);
        if (!content.ok()) return fail(content.error().message);
        text = std::move(content).value();
    }
    const auto path = resolve_model(params);
    if (!path.ok()) return fail(path.error().message);
    const auto file = gguf::File::open(*path, params.no_mmap ? FileData::Mode::Read : FileData::Mode::Mmap);
    if (!file.ok()) return fail(file.error().message);
    const auto vocab = text::Vocab::from_gguf(*file);
    if (!vocab.ok()) return fail(vocab.error().message);
    const auto start = std::chrono::steady_clock::now();
    const auto ids = vocab->tokenize(text, !params.no_bos, params.parse_special);
    if (!ids.ok()) return fail(ids.error().message);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    char timing[160];
    std::snprintf(timing, sizeof timing, "tokenize: %zu bytes -> %zu tokens in %.3f ms (%.1f MB/s)", text.size(),
                  ids->size(), ms, ms > 0 ? double(text.size()) / 1e3 / ms : 0.0);
    log::debug(timing);

    if (params.pieces && !params.ids) {
        for (int32_t id : *ids) {
            const auto piece = vocab->token_to_piece(id, true);
            std::printf("%6d -> '%s'\n", id, piece.ok() ? printable_piece(*piece).c_str() : "?");
        }
    } else {
        std::string line = "[";
        for (size_t i = 0; i < ids->size(); ++i) line += (i ? ", " : "") + std::to_string((*ids)[i]);
        std::printf("%s]\n", line.c_str());
    }
    if (params.show_count) std::printf("Total number of tokens: %zu\n", ids->size());
    return 0;
}

}  // namespace ferry::tools
