#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace ferry {
namespace {

std::string errno_text() { return std::strerror(errno); }

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

Result<FileData> FileData::open(const std::string& path, Mode mode, const Progress& progress) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return make_error("cannot open '" + path + "': " + errno_text());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return make_error("cannot stat '" + path + "': " + errno_text());
    if (!S_ISREG(st.st_mode)) return make_error("'" + path + "' is not a regular file");

    FileData f;
    f.path_ = path;
    f.size_ = uint64_t(st.st_size);
    f.mode_ = mode;
    if (f.size_ == 0) return f;

    if (mode == Mode::Mmap) {
        void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_SHARED, fd.get(), 0);
        if (p == MAP_FAILED) return make_error("cannot mmap '" + path + "': " + errno_text());
        f.map_ = p;
        f.data_ = static_cast<const uint8_t*>(p);
        return f;
    }

    f.buffer_.reset(new (std::nothrow) uint8_t[f.size_]);
    if (!f.buffer_) return make_error("cannot allocate " + std::to_string(f.size_) + " bytes to read '" + path + "'");
    uint64_t done = 0;
    while (done < f.size_) {
        constexpr uint64_t kChunk = uint64_t(64) << 20;
        const uint64_t want = f.size_ - done < kChunk ? f.size_ - done : kChunk;
        const ssize_t n = ::pread(fd.get(), f.buffer_.get() + done, want, off_t(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return make_error("cannot read '" + path + "': " + (n < 0 ? errno_text() : "unexpected end of file"));
        done += uint64_t(n);
        if (progress) progress(done, f.size_);
    }
    f.data_ = f.buffer_.get();
    return f;
}

FileData FileData::from_bytes(const void* data, uint64_t size) {
    FileData f;
    f.size_ = size;
    f.mode_ = Mode::Read;
    f.path_ = "<memory>";
    if (size > 0) {
        f.buffer_.reset(new uint8_t[size]);
        std::memcpy(f.buffer_.get(), data, size);
        f.data_ = f.buffer_.get();
    }
    return f;
}

Result<std::string> read_text_file(const std::string& path) {
    FERRY_ASSIGN(FileData data, FileData::open(path, FileData::Mode::Read));
    return std::string(reinterpret_cast<const char*>(data.data()), data.size());
}

FileData::FileData(FileData&& o) noexcept { *this = std::move(o); }

FileData& FileData::operator=(FileData&& o) noexcept {
    if (this != &o) {
        release();
        data_ = o.data_;
        size_ = o.size_;
        mode_ = o.mode_;
        map_ = o.map_;
        buffer_ = std::move(o.buffer_);
        path_ = std::move(o.path_);
        o.data_ = nullptr;
        o.size_ = 0;
        o.map_ = nullptr;
    }
    return *this;
}

FileData::~FileData() { release(); }

void FileData::release() {
    if (map_ != nullptr) ::munmap(map_, size_);
    map_ = nullptr;
    buffer_.reset();
    data_ = nullptr;
}

}  // namespace ferry
