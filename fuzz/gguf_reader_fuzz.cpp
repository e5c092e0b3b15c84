// libFuzzer target for the GGUF reader: any byte string must parse or be rejected, never crash,
// read out of bounds or allocate from an unchecked count. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>

#include "gguf/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto file = ferry::gguf::File::parse(ferry::FileData::from_bytes(data, size));
    if (file.ok()) {
        // Touch what a loader would: every value's rendering and every tensor's bytes.
        for (const auto& kv : file->metadata()) (void)kv.value.to_display();
        uint64_t sum = 0;
        for (const auto& t : file->tensors()) {
            const uint8_t* p = file->tensor_data(t);
            for (uint64_t i = 0; i < t.size; i += 64) sum += p[i];
        }
        volatile uint64_t sink = sum;
        (void)sink;
    }
    return 0;
}
