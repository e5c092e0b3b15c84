#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "raw_builder.h"

namespace ferry::gguf {
namespace {

Result<File> parse_bytes(const std::vector<uint8_t>& bytes) {
    return File::parse(FileData::from_bytes(bytes.data(), bytes.size()));
}

// Every value type, nested arrays and tensors of several types survive write -> read unchanged.
TEST(GgufWriter, RoundTripIsIdentical) {
    Writer w;
    std::vector<std::pair<std::string, Value>> kv = {
        {"t.u8", Value::u8(200)},
        {"t.i8", Value::i8(-100)},
        {"t.u16", Value::u16(60000)},
        {"t.i16", Value::i16(-30000)},
        {"t.u32", Value::u32(4000000000u)},
        {"t.i32", Value::i32(-2000000000)},
        {"t.u64", Value::u64(~0ull)},
        {"t.i64", Value::i64(-(1ll << 62))},
        {"t.f32", Value::f32(1.5f)},
        {"t.f64", Value::f64(-2.25)},
        {"t.bool", Value::boolean(true)},
        {"t.string", Value::string("héllo\n\0x")},
        {"t.empty_string", Value::string("")},
        {"t.strings", Value::string_array({"a", "", "ccc"})},
        {"t.f32s", Value::numeric_array<float>(ValueType::F32, {1.0f, -2.0f, 3.5f})},
        {"t.i32s", Value::numeric_array<int32_t>(ValueType::I32, {1, -2, 3})},
        {"t.bools", Value::numeric_array<uint8_t>(ValueType::BOOL, {1, 0, 1})},
        {"t.empty", Value::numeric_array<uint64_t>(ValueType::U64, {})},
        {"t.nested", Value::array_of({Value::string_array({"x", "y"}),
                                      Value::array_of({Value::numeric_array<int8_t>(ValueType::I8, {-1})})})},
        {"general.alignment", Value::u32(64)},
    };
    for (const auto& [k, v] : kv) ASSERT_TRUE(w.add(k, v).ok()) << k;
    std::vector<uint8_t> f32_data(4 * 8 * 3);
    for (size_t i = 0; i < f32_data.size(); ++i) f32_data[i] = uint8_t(i * 7);
    std::vector<uint8_t> q8_data(2 * 34 * 5, 0x11);
    ASSERT_TRUE(w.add_tensor("a.weight", GgmlType::F32, {8, 3}, f32_data).ok());
    ASSERT_TRUE(w.add_tensor("b.weight", GgmlType::Q8_0, {64, 5}, q8_data).ok());
    ASSERT_TRUE(w.add_tensor("c.weight", GgmlType::F16, {2, 1, 1, 3}, std::vector<uint8_t>(12, 3)).ok());

    const std::vector<uint8_t> bytes = w.to_bytes();
    auto r = parse_bytes(bytes);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const File& f = r.value();
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    ASSERT_EQ(f.metadata().size(), kv.size());
    for (size_t i = 0; i < kv.size(); ++i) {
        EXPECT_EQ(f.metadata()[i].key, kv[i].first);
        EXPECT_TRUE(f.metadata()[i].value == kv[i].second) << kv[i].first;
    }
    ASSERT_EQ(f.tensors().size(), 3u);
    const TensorInfo* a = f.find_tensor("a.weight");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->ne[0], 8);
    EXPECT_EQ(a->ne[1], 3);
    EXPECT_EQ(a->size, f32_data.size());
    EXPECT_EQ(std::vector<uint8_t>(f.tensor_data(*a), f.tensor_data(*a) + a->size), f32_data);
    const TensorInfo* b = f.find_tensor("b.weight");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->type, GgmlType::Q8_0);
    EXPECT_EQ(b->offset % 64, 0u);
    EXPECT_EQ(std::vector<uint8_t>(f.tensor_data(*b), f.tensor_data(*b) + b->size), q8_data);
    const Tensor c = f.tensor(*f.find_tensor("c.weight"));
    EXPECT_EQ(c.n_dims, 4);
    EXPECT_EQ(c.ne[3], 3);
    EXPECT_EQ(c.nb[1], 4u);
    EXPECT_EQ(c.n_bytes(), 12u);

    // Typed accessors.
    EXPECT_EQ(f.find("t.u8")->get_uint(), 200u);
    EXPECT_EQ(f.find("t.i8")->get_int(), -100);
    EXPECT_FALSE(f.find("t.i8")->get_uint().has_value());
    EXPECT_EQ(f.find("t.u64")->get_uint(), ~0ull);
    EXPECT_FALSE(f.find("t.u64")->get_int().has_value());
    EXPECT_EQ(f.find("t.f64")->get_float(), -2.25);
    EXPECT_EQ(f.find("t.bool")->get_bool(), true);
    EXPECT_EQ(*f.find("t.string")->get_string(), std::string("héllo\n\0x"));
    EXPECT_EQ(f.find("t.f32s")->get_array<float>(), (std::vector<float>{1.0f, -2.0f, 3.5f}));
    EXPECT_FALSE(f.find("t.i32s")->get_array<uint32_t>().has_value());  // -2 does not fit
    EXPECT_EQ(f.find("t.strings")->get_strings()->size(), 3u);
    EXPECT_EQ(f.find("t.nested")->get_arrays()->size(), 2u);
    EXPECT_EQ(f.find("missing"), nullptr);

    // Writing the parsed content again gives the same bytes.
    Writer again;
    for (const KeyValue& e : f.metadata()) ASSERT_TRUE(again.add(e.key, e.value).ok());
    for (const TensorInfo& t : f.tensors()) {
        std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
        ASSERT_TRUE(again.add_tensor(t.name, t.type, ne, {f.tensor_data(t), f.tensor_data(t) + t.size}).ok());
    }
    EXPECT_EQ(again.to_bytes(), bytes);
}

TEST(GgufWriter, RejectsBadInput) {
    Writer w;
    EXPECT_TRUE(w.add("k", Value::u32(1)).ok());
    EXPECT_FALSE(w.add("k", Value::u32(2)).ok());
    EXPECT_FALSE(w.add("general.alignment", Value::u32(48)).ok());
    EXPECT_FALSE(w.add_tensor("t", GgmlType::Q4_0, {33}, std::vector<uint8_t>(18)).ok());
    EXPECT_FALSE(w.add_tensor("t", GgmlType::F32, {4}, std::vector<uint8_t>(15)).ok());
    EXPECT_TRUE(w.add_tensor("t", GgmlType::F32, {4}, std::vector<uint8_t>(16)).ok());
    EXPECT_FALSE(w.add_tensor("t", GgmlType::F32, {4}, std::vector<uint8_t>(16)).ok());
}

TEST(GgufReader, VocabOnlyFileWithoutDataSection) {
    testing::RawBuilder b;
    b.header(0, 1).kv_str("general.architecture", "llama");  // no padding: the file ends here
    auto r = parse_bytes(b.bytes);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r->find("general.architecture")->get_string(), "llama");
}

TEST(GgufReader, AcceptsVersion2) {
    testing::RawBuilder b;
    b.header(1, 0, 2).tensor("w", {4}, 0, 0).pad_to(32).zeros(16);
    auto r = parse_bytes(b.bytes);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->version(), 2u);
}

// A file written by llama.cpp's converter and llama-quantize (copied from the golden set).
TEST(GgufReader, ReadsLlamaCppFileInBothModes) {
    for (auto mode : {FileData::Mode::Mmap, FileData::Mode::Read}) {
        auto r = File::open("tests/data/gguf/llama-Q4_K_M.gguf", mode);
        ASSERT_TRUE(r.ok()) << r.error().message;
        const File& f = r.value();
        EXPECT_EQ(f.mode(), mode);
        EXPECT_EQ(f.metadata().size(), 23u);  // gguf-py lists 26 fields: these + its 3 header pseudo-fields
        EXPECT_EQ(f.tensors().size(), 21u);
        EXPECT_EQ(*f.find("general.architecture")->get_string(), "llama");
        EXPECT_EQ(f.find("tokenizer.ggml.tokens")->get_strings()->size(), 512u);
        const TensorInfo* out = f.find_tensor("output.weight");
        ASSERT_NE(out, nullptr);
        EXPECT_EQ(out->type, GgmlType::Q6_K);
        EXPECT_EQ(out->ne[0], 256);
        EXPECT_EQ(out->ne[1], 512);
        EXPECT_EQ(f.data_offset() + out->offset, 12768u);  // as gguf-py reports
        EXPECT_EQ(out->size, 107520u);
    }
}

TEST(GgufReader, MissingFileIsAnError) {
    auto r = File::open("tests/data/gguf/does-not-exist.gguf");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("does-not-exist.gguf"), std::string::npos);
    auto d = File::open("tests/data/gguf");
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace ferry::gguf
