// libFuzzer target for the tokenizers: any bytes as text, tokenized with and without special-token
// parsing on a BPE and a SentencePiece vocab (set FERRY_FUZZ_VOCABS to override), then decoded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "gguf/reader.h"
#include "text/tokenizer/vocab.h"

namespace {

std::vector<ferry::text::Vocab> load_vocabs() {
    std::vector<ferry::text::Vocab> vocabs;
    for (const char* path :
         {"tests/data/tokenizer/smollm2-135m.vocab.gguf", "tests/data/tokenizer/golden/ggml-vocab-llama-spm.gguf"}) {
        auto file = ferry::gguf::File::open(path);
        if (!file.ok()) continue;
        auto vocab = ferry::text::Vocab::from_gguf(*file);
        if (vocab.ok()) vocabs.push_back(std::move(vocab).value());
    }
    if (vocabs.empty()) std::abort();  // run from the repository root
    return vocabs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<ferry::text::Vocab> vocabs = load_vocabs();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const auto& vocab : vocabs) {
        for (bool special : {false, true}) {
            auto ids = vocab.tokenize(text, special, special);
            if (!ids.ok()) continue;
            (void)vocab.detokenize(*ids, special);
        }
    }
    return 0;
}
