// The bytes of a file, either memory-mapped read-only (the default: pages load on first touch and
// the OS may drop them under pressure) or read into an owned heap buffer (`--no-mmap`: resident,
// counted in RSS, no page faults later). Either way the bytes are immutable and stay valid for the
// life of the object.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"

namespace ferry {

class FileData {
public:
    enum class Mode { Mmap, Read };

    // Called while a Read-mode open reads the file: bytes read so far and the file size (after each
    // chunk of up to 64 MiB; mmap opens never call it).
    using Progress = std::function<void(uint64_t done, uint64_t total)>;

    static Result<FileData> open(const std::string& path, Mode mode = Mode::Mmap, const Progress& progress = {});
    // Wraps bytes already in memory (tests, fuzzing); they are copied.
    static FileData from_bytes(const void* data, uint64_t size);
    FileData() = default;  // empty

    FileData(FileData&&) noexcept;
    FileData& operator=(FileData&&) noexcept;
    FileData(const FileData&) = delete;
    FileData& operator=(const FileData&) = delete;
    ~FileData();

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    Mode mode() const { return mode_; }
    const std::string& path() const { return path_; }

private:
    void release();

    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    Mode mode_ = Mode::Read;
    void* map_ = nullptr;  // non-null when mmapped
    std::unique_ptr<uint8_t[]> buffer_;
    std::string path_;
};

// The whole content of a (small) file: prompts, templates, JSON inputs.
Result<std::string> read_text_file(const std::string& path);

}  // namespace ferry
