// Hostile GGUF files: each is built by hand and must be rejected with a message that says what is
// wrong, without crashing and without a large allocation (the sanitizer build runs this binary
// with ASan's max_allocation_size_mb set, so an allocation sized from a bad count aborts it).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "raw_builder.h"

namespace ferry::gguf {
namespace {

using testing::RawBuilder;

constexpr uint32_t kF32 = 0, kQ4_0 = 2, kU32 = 4, kStr = 8, kArr = 9, kBool = 7, kU8 = 0;

struct Case {
    std::string name;
    std::function<RawBuilder()> build;
    std::string expect;  // a fragment the error message must contain
};

RawBuilder one_f32_tensor_header(uint64_t n_kv = 0) {
    RawBuilder b;
    b.header(1, n_kv);
    return b;
}

// A valid file with one 8-element F32 tensor, for cases that corrupt a single field.
RawBuilder valid_one_tensor(uint64_t offset = 0, std::vector<uint64_t> ne = {8}, uint32_t type = kF32,
                            size_t data_bytes = 32) {
    RawBuilder b = one_f32_tensor_header();
    b.tensor("w", std::move(ne), type, offset).pad_to(32).zeros(data_bytes);
    return b;
}

std::vector<Case> cases() {
    std::vector<Case> c;
    auto add = [&](std::string name, std::function<RawBuilder()> build, std::string expect) {
        c.push_back({std::move(name), std::move(build), std::move(expect)});
    };
    add(
        "empty file", [] { return RawBuilder(); }, "truncated");
    add(
        "three bytes", [] { return RawBuilder().raw("GGU"); }, "truncated");
    add(
        "bad magic", [] { return RawBuilder().raw("GGML").u32(3).u64(0).u64(0); }, "bad magic");
    add(
        "big-endian", [] { return RawBuilder().raw("GGUF").u32(0x03000000).u64(0).u64(0); }, "big-endian");
    add(
        "version 0", [] { return RawBuilder().header(0, 0, 0); }, "unsupported GGUF version 0");
    add(
        "version 1", [] { return RawBuilder().header(0, 0, 1); }, "version 1 is not supported");
    add(
        "version 4", [] { return RawBuilder().header(0, 0, 4); }, "unsupported GGUF version 4");
    add(
        "truncated after version", [] { return RawBuilder().raw("GGUF").u32(3); }, "tensor count");
    add(
        "truncated in n_kv", [] { return RawBuilder().raw("GGUF").u32(3).u64(0).u32(0); }, "metadata count");
    add(
        "huge n_kv", [] { return RawBuilder().header(0, 1ull << 62); }, "metadata count");
    add(
        "huge n_tensors", [] { return RawBuilder().header(~0ull, 0); }, "tensor count");
    add(
        "second kv value missing", [] { return RawBuilder().header(0, 2).kv_u32("a", 1).str("bb").u32(kU32); },
        "truncated");
    add(
        "key length past EOF", [] { return RawBuilder().header(0, 1).u64(1000).raw("abc").zeros(12); }, "exceeds");
    add(
        "key length 2^64-1", [] { return RawBuilder().header(0, 1).u64(~0ull).zeros(16); }, "exceeds");
    add(
        "empty key", [] { return RawBuilder().header(0, 1).str("").u32(kU32).u32(1); }, "empty");
    add(
        "key over 64 KiB", [] { return RawBuilder().header(0, 1).str(std::string(70000, 'k')).u32(kU32).u32(1); },
        "limit");
    add(
        "duplicate key", [] { return RawBuilder().header(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2); }, "duplicate key");
    add(
        "unknown value type", [] { return RawBuilder().header(0, 1).str("k").u32(13).u32(0); }, "unknown value type");
    add(
        "value type 0xffffffff", [] { return RawBuilder().header(0, 1).str("k").u32(~0u).u64(0); },
        "unknown value type");
    add(
        "truncated u32 value", [] { return RawBuilder().header(0, 1).str("key").u32(kU32).u8(1); }, "truncated");
    add(
        "truncated u64 value", [] { return RawBuilder().header(0, 1).str("key").u32(10).u32(1); }, "truncated");
    add(
        "string value past EOF", [] { return RawBuilder().header(0, 1).str("k").u32(kStr).u64(50).raw("xy"); },
        "exceeds");
    add(
        "bool value 2", [] { return RawBuilder().header(0, 1).str("k").u32(kBool).u8(2); }, "neither 0 nor 1");
    add(
        "array of unknown type", [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(77).u64(0); },
        "unknown value type");
    add(
        "array u8 count past EOF", [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(kU8).u64(1000); },
        "needs at least");
    add(
        "array u64 count 2^62", [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(10).u64(1ull << 62); },
        "needs at least");
    add(
        "array of strings count 2^63",
        [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(kStr).u64(1ull << 63).zeros(64); },
        "needs at least");
    add(
        "array string element past EOF",
        [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(kStr).u64(2).str("ok").u64(99).raw("x"); },
        "exceeds");
    add(
        "bool array element 5",
        [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(kBool).u64(3).u8(1).u8(0).u8(5); },
        "neither 0 nor 1");
    add(
        "nested arrays 9 deep",
        [] {
            RawBuilder b;
            b.header(0, 1).str("k").u32(kArr);
            for (int i = 0; i < 9; ++i) b.u32(kArr).u64(1);
            return b.u32(kU32).u64(0);
        },
        "nested deeper");
    add(
        "nested array bomb: inner count huge",
        [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(kArr).u64(1).u32(kU32).u64(1ull << 60); },
        "needs at least");
    add(
        "nested array bomb: outer count huge",
        [] { return RawBuilder().header(0, 1).str("k").u32(kArr).u32(kArr).u64(1ull << 40).zeros(48); },
        "needs at least");
    add(
        "alignment 0", [] { return RawBuilder().header(0, 1).kv_u32("general.alignment", 0); }, "general.alignment");
    add(
        "alignment 48", [] { return RawBuilder().header(0, 1).kv_u32("general.alignment", 48); }, "power of two");
    add(
        "alignment 2^31", [] { return RawBuilder().header(0, 1).kv_u32("general.alignment", 1u << 31); },
        "general.alignment");
    add(
        "alignment as string", [] { return RawBuilder().header(0, 1).kv_str("general.alignment", "32"); },
        "general.alignment");
    add(
        "truncated in tensor name", [] { return RawBuilder().header(1, 0).u64(5000).raw("ab").zeros(40); }, "exceeds");
    add(
        "empty tensor name", [] { return RawBuilder().header(1, 0).tensor("", {8}, kF32, 0).zeros(64); }, "empty name");
    add(
        "tensor name 300 bytes",
        [] { return RawBuilder().header(1, 0).tensor(std::string(300, 'n'), {8}, kF32, 0).zeros(64); }, "limit");
    add(
        "duplicate tensor name",
        [] {
            RawBuilder b;
            b.header(2, 0).tensor("w", {8}, kF32, 0).tensor("w", {8}, kF32, 32).pad_to(32).zeros(64);
            return b;
        },
        "duplicate tensor");
    add(
        "n_dims 0", [] { return RawBuilder().header(1, 0).str("w").u32(0).u32(kF32).u64(0).zeros(64); }, "n_dims 0");
    add(
        "n_dims 5",
        [] {
            return valid_one_tensor(0, {1, 1, 1, 1, 8});
        },
        "n_dims 5");
    add(
        "n_dims 2^32-1", [] { return RawBuilder().header(1, 0).str("w").u32(~0u).zeros(64); }, "n_dims");
    add(
        "dims overflow 2^32 x 2^32",
        [] {
            return valid_one_tensor(0, {1ull << 32, 1ull << 32});
        },
        "overflows");
    add(
        "dim above INT64_MAX", [] { return valid_one_tensor(0, {1ull << 63}); }, "overflows");
    add(
        "byte size overflow", [] { return valid_one_tensor(0, {1ull << 62}); }, "overflows");
    add(
        "removed type id 4", [] { return valid_one_tensor(0, {32}, 4); }, "unknown ggml type id 4");
    add(
        "type id 1000", [] { return valid_one_tensor(0, {8}, 1000); }, "unknown ggml type id 1000");
    add(
        "row not a multiple of the block", [] { return valid_one_tensor(0, {33}, kQ4_0); }, "not a multiple");
    add(
        "truncated in tensor type", [] { return RawBuilder().header(1, 0).str("w").u32(1).u64(8).u8(0); }, "tensor");
    add(
        "truncated in tensor offset", [] { return RawBuilder().header(1, 0).str("w").u32(1).u64(8).u32(0).u32(0); },
        "tensor");
    add(
        "offset past EOF", [] { return valid_one_tensor(1 << 20); }, "past the end");
    add(
        "offset + size wraps", [] { return valid_one_tensor(~0ull - 31); }, "past the end");
    add(
        "misaligned offset", [] { return valid_one_tensor(4, {8}, kF32, 64); }, "not a multiple of the alignment");
    add(
        "data one byte short", [] { return valid_one_tensor(0, {8}, kF32, 31); }, "past the end");
    add(
        "no data section", [] { return RawBuilder().header(1, 0).tensor("w", {8}, kF32, 0); }, "data section");
    add(
        "overlapping tensors",
        [] {
            RawBuilder b;
            b.header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 32).pad_to(32).zeros(96);
            return b;
        },
        "overlaps");
    add(
        "two tensors at one offset",
        [] {
            RawBuilder b;
            b.header(2, 0).tensor("a", {8}, kF32, 0).tensor("b", {8}, kF32, 0).pad_to(32).zeros(32);
            return b;
        },
        "overlaps");
    return c;
}

TEST(GgufHostile, AtLeastFortyCases) { EXPECT_GE(cases().size(), 40u); }

TEST(GgufHostile, EveryCaseIsRejectedWithAMessage) {
    for (const Case& c : cases()) {
        const std::vector<uint8_t> bytes = c.build().bytes;
        auto r = File::parse(FileData::from_bytes(bytes.data(), bytes.size()));
        ASSERT_FALSE(r.ok()) << c.name << ": accepted";
        EXPECT_NE(r.error().message.find(c.expect), std::string::npos)
            << c.name << ": message '" << r.error().message << "' lacks '" << c.expect << "'";
        EXPECT_NE(r.error().message.find("offset"), std::string::npos) << c.name << ": " << r.error().message;
    }
}

// Every strict prefix of a valid file with metadata and tensors must be rejected, not crash.
TEST(GgufHostile, EveryTruncationIsRejected) {
    RawBuilder b;
    b.header(2, 3)
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 2)
        .str("tokenizer.ggml.tokens")
        .u32(kArr)
        .u32(kStr)
        .u64(2)
        .str("a")
        .str("bc")
        .tensor("a", {8}, kF32, 0)
        .tensor("b", {32}, kQ4_0, 32)
        .pad_to(32)
        .zeros(32 + 18)
        .pad_to(32);
    const std::vector<uint8_t>& full = b.bytes;
    auto ok = File::parse(FileData::from_bytes(full.data(), full.size()));
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    // The last tensor ends 18 bytes into its 32-byte slot: prefixes that keep it whole are valid.
    const size_t needed = full.size() - 14;
    for (size_t n = 0; n < needed; ++n) {
        auto r = File::parse(FileData::from_bytes(full.data(), n));
        EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    }
}

// Flipping any single byte of a valid file must never crash (it may still be a valid file).
TEST(GgufHostile, SingleByteCorruptionsNeverCrash) {
    RawBuilder b;
    b.header(1, 2)
        .kv_str("general.name", "x")
        .kv_u32("general.alignment", 32)
        .tensor("w", {8, 2}, kF32, 0)
        .pad_to(32)
        .zeros(64);
    for (size_t i = 0; i < b.bytes.size(); ++i) {
        for (uint8_t v : {uint8_t(0x00), uint8_t(0xff), uint8_t(0x80), uint8_t(0x7f)}) {
            std::vector<uint8_t> bad = b.bytes;
            bad[i] = v;
            auto r = File::parse(FileData::from_bytes(bad.data(), bad.size()));
            if (!r.ok()) {
                EXPECT_FALSE(r.error().message.empty());
            }
        }
    }
}

}  // namespace
}  // namespace ferry::gguf
