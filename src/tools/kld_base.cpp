#include "tools/kld_base.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <utility>

namespace ferry::tools::kld {

static_assert(std::endian::native == std::endian::little, "base files are little-endian; add byte swapping");

namespace {

constexpr char kLlamaMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr char kCompactMagic[8] = {'_', 't', 'o', 'p', 'k', 'l', 'p', '_'};
constexpr uint32_t kCompactVersion = 1;
constexpr int32_t kMaxCtx = 1 << 24;
constexpr int32_t kMaxVocab = 1 << 25;
// Stored log-probabilities are ≤ 0; a little slack for float rounding of log-sum-exp.
constexpr float kLogPSlack = 1e-3f;

int64_t header_bytes(Format format) { return format == Format::Llama ? 20 : 28; }

// Words (4 bytes) per compact row: log p(next), log tail, then k {id, log p} pairs.
int64_t compact_row_words(int32_t top_k) { return 2 + 2 * int64_t(top_k); }

float as_float(uint32_t w) { return std::bit_cast<float>(w); }

std::string str(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace

int64_t row_bytes(Format format, int32_t n_vocab, int32_t top_k) {
    return format == Format::Llama ? 2 * llama_row_u16(n_vocab) : 4 * compact_row_words(top_k);
}

BaseRow Chunk::row(int32_t i) const {
    BaseRow r;
    if (format_ == Format::Llama) {
        r.packed = std::span<const uint16_t>(packed_).subspan(size_t(i * stride_), size_t(stride_));
        return r;
    }
    const uint32_t* w = compact_.data() + i * stride_;
    r.log_p_next = as_float(w[0]);
    r.log_tail = as_float(w[1]);
    const size_t k = size_t(top_k_);
    r.top_ids = std::span<const int32_t>(top_ids_).subspan(size_t(i) * k, k);
    r.top_log_p = std::span<const float>(top_log_p_).subspan(size_t(i) * k, k);
    return r;
}

// --- encoding ---------------------------------------------------------------------------------

Encoder::Encoder(Format format, int32_t n_vocab, int32_t top_k) : n_vocab_(n_vocab) {
    chunk_.format_ = format;
    chunk_.top_k_ = format == Format::Compact ? top_k : 0;
    chunk_.stride_ = format == Format::Llama ? llama_row_u16(n_vocab) : compact_row_words(top_k);
}

void Encoder::begin(int32_t n_rows) {
    chunk_.n_rows_ = n_rows;
    if (chunk_.format_ == Format::Llama) {
        chunk_.packed_.assign(size_t(n_rows * chunk_.stride_), 0);
    } else {
        chunk_.compact_.assign(size_t(n_rows) * size_t(chunk_.stride_), 0);
        chunk_.top_ids_.assign(size_t(n_rows) * size_t(chunk_.top_k_), 0);
        chunk_.top_log_p_.assign(size_t(n_rows) * size_t(chunk_.top_k_), 0);
    }
}

double Encoder::encode(int32_t i, std::span<const float> logits, int32_t next) {
    const int32_t n = n_vocab_;
    float max_logit = logits[0], min_logit = logits[0];
    for (int32_t v = 1; v < n; ++v) {
        max_logit = std::max(max_logit, logits[size_t(v)]);
        min_logit = std::min(min_logit, logits[size_t(v)]);
    }
    double sum_exp = 0;
    for (int32_t v = 0; v < n; ++v) sum_exp += std::exp(logits[size_t(v)] - max_logit);
    const float log_sum_exp = float(std::log(sum_exp));
    const float nll = max_logit + log_sum_exp - logits[size_t(next)];

    if (chunk_.format_ == Format::Llama) {
        // Only the top 16 nats are resolved: 65535 steps between max(min logit, max − 16) and max.
        min_logit = std::max(min_logit, max_logit - 16);
        const float min_log_prob = min_logit - max_logit - log_sum_exp;
        const float scale = (max_logit - min_logit) / 65535.f;
        uint16_t* row = chunk_.packed_.data() + i * chunk_.stride_;
        std::memcpy(row, &scale, 4);
        std::memcpy(row + 2, &min_log_prob, 4);
        if (scale != 0) {
            const float inv_scale = 1 / scale;
            for (int32_t v = 0; v < n; ++v) {
                const float l = logits[size_t(v)];
                row[4 + v] = l > min_logit ? uint16_t(std::lrintf(inv_scale * (l - min_logit))) : 0;
            }
        }
        return nll;
    }

    // Compact: the k most likely tokens (ties: the smaller id first), and the rest as one mass.
    const int32_t k = chunk_.top_k_;
    order_.resize(size_t(n));
    for (int32_t v = 0; v < n; ++v) order_[size_t(v)] = v;
    auto more_likely = [&](int32_t a, int32_t b) {
        return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
    };
    std::nth_element(order_.begin(), order_.begin() + (k - 1), order_.end(), more_likely);
    std::sort(order_.begin(), order_.begin() + k, more_likely);
    double tail = 0;
    for (int32_t j = k; j < n; ++j) tail += std::exp(logits[size_t(order_[size_t(j)])] - max_logit);
    const double log_norm = double(max_logit) + std::log(sum_exp);

    uint32_t* w = chunk_.compact_.data() + i * chunk_.stride_;
    const float log_p_next = float(double(logits[size_t(next)]) - log_norm);
    const float log_tail = tail > 0 ? float(std::log(tail / sum_exp)) : -INFINITY;
    w[0] = std::bit_cast<uint32_t>(log_p_next);
    w[1] = std::bit_cast<uint32_t>(log_tail);
    for (int32_t j = 0; j < k; ++j) {
        const int32_t id = order_[size_t(j)];
        const float lp = float(double(logits[size_t(id)]) - log_norm);
        w[2 + 2 * j] = uint32_t(id);
        w[3 + 2 * j] = std::bit_cast<uint32_t>(lp);
        chunk_.top_ids_[size_t(i) * size_t(k) + size_t(j)] = id;
        chunk_.top_log_p_[size_t(i) * size_t(k) + size_t(j)] = lp;
    }
    return nll;
}

std::span<const uint8_t> Encoder::bytes() const {
    const size_t n = size_t(chunk_.n_rows_) * size_t(chunk_.stride_);
    if (chunk_.format_ == Format::Llama)
        return {reinterpret_cast<const uint8_t*>(chunk_.packed_.data()), n * sizeof(uint16_t)};
    return {reinterpret_cast<const uint8_t*>(chunk_.compact_.data()), n * sizeof(uint32_t)};
}

// --- writing ----------------------------------------------------------------------------------

Writer::Writer(Writer&& o) noexcept : f_(std::exchange(o.f_, nullptr)), path_(std::move(o.path_)), bytes_(o.bytes_) {}

Writer& Writer::operator=(Writer&& o) noexcept {
    if (this != &o) {
        if (f_) std::fclose(f_);
        f_ = std::exchange(o.f_, nullptr);
        path_ = std::move(o.path_);
        bytes_ = o.bytes_;
    }
    return *this;
}

Writer::~Writer() {
    if (f_) std::fclose(f_);
}

Result<Writer> Writer::create(const std::string& path, const Header& h) {
    if (h.tokens.size() != size_t(h.n_chunk) * size_t(h.n_ctx))
        return make_error("base file: " + std::to_string(h.tokens.size()) + " tokens for " + std::to_string(h.n_chunk) +
                          " chunks of " + std::to_string(h.n_ctx));
    if (h.format == Format::Compact && (h.top_k < 1 || h.top_k > std::min(kMaxTopK, h.n_vocab)))
        return make_error("--kld-top-k " + std::to_string(h.top_k) + " is out of range: 1 … " +
                          std::to_string(std::min(kMaxTopK, h.n_vocab)));
    Writer w;
    w.path_ = path;
    w.f_ = std::fopen(path.c_str(), "wb");
    if (!w.f_) return make_error("cannot create '" + path + "': " + std::strerror(errno));
    std::string head;
    auto put = [&](const void* p, size_t n) { head.append(static_cast<const char*>(p), n); };
    const uint32_t n_ctx = uint32_t(h.n_ctx);
    if (h.format == Format::Llama) {
        put(kLlamaMagic, 8);
    } else {
        put(kCompactMagic, 8);
        put(&kCompactVersion, 4);
    }
    put(&n_ctx, 4);
    put(&h.n_vocab, 4);
    put(&h.n_chunk, 4);
    if (h.format == Format::Compact) put(&h.top_k, 4);
    put(h.tokens.data(), h.tokens.size() * sizeof(int32_t));
    if (std::fwrite(head.data(), 1, head.size(), w.f_) != head.size())
        return make_error("cannot write '" + path + "': " + std::strerror(errno));
    w.bytes_ = head.size();
    return w;
}

Status Writer::write_chunk(const Encoder& encoder) {
    const std::span<const uint8_t> b = encoder.bytes();
    if (std::fwrite(b.data(), 1, b.size(), f_) != b.size())
        return make_error("cannot write '" + path_ + "': " + std::strerror(errno));
    bytes_ += b.size();
    return {};
}

Status Writer::close() {
    std::FILE* f = std::exchange(f_, nullptr);
    if (f && std::fclose(f) != 0) return make_error("cannot finish '" + path_ + "': " + std::strerror(errno));
    return {};
}

// --- reading ----------------------------------------------------------------------------------

Result<Reader> Reader::open_file(const std::string& path) {
    auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*in) return make_error("cannot open the base file '" + path + "': " + std::strerror(errno));
    return open(std::move(in), path);
}

Result<Reader> Reader::open(std::unique_ptr<std::istream> in, const std::string& name) {
    Reader r;
    r.name_ = name;
    in->seekg(0, std::ios::end);
    const std::streamoff size = in->tellg();
    in->seekg(0, std::ios::beg);
    if (size < 0 || !*in) return make_error(name + ": cannot determine the file size");
    r.file_bytes_ = uint64_t(size);

    auto fail = [&](const std::string& what) { return make_error(name + ": " + what); };
    auto read = [&](void* p, size_t n) { return bool(in->read(static_cast<char*>(p), std::streamsize(n))); };
    char magic[8];
    if (!read(magic, 8)) return fail("truncated: shorter than the 8-byte magic");
    Header& h = r.header_;
    if (std::memcmp(magic, kLlamaMagic, 8) == 0) {
        h.format = Format::Llama;
    } else if (std::memcmp(magic, kCompactMagic, 8) == 0) {
        h.format = Format::Compact;
        uint32_t version = 0;
        if (!read(&version, 4)) return fail("truncated in the header");
        if (version != kCompactVersion)
            return fail("compact base file version " + std::to_string(version) + " is not supported (only 1)");
    } else {
        return fail("not a KL-divergence base file (it starts neither with _logits_ nor with _topklp_)");
    }
    uint32_t n_ctx = 0;
    if (!read(&n_ctx, 4) || !read(&h.n_vocab, 4) || !read(&h.n_chunk, 4)) return fail("truncated in the header");
    if (h.format == Format::Compact && !read(&h.top_k, 4)) return fail("truncated in the header");
    if (n_ctx < 3 || n_ctx > uint32_t(kMaxCtx))
        return fail("context size " + std::to_string(n_ctx) + " is out of range (3 … " + std::to_string(kMaxCtx) + ")");
    h.n_ctx = int32_t(n_ctx);
    if (h.n_vocab < 2 || h.n_vocab > kMaxVocab)
        return fail("vocabulary size " + std::to_string(h.n_vocab) + " is out of range");
    if (h.n_chunk < 1) return fail("chunk count " + std::to_string(h.n_chunk) + " is not positive");
    if (h.format == Format::Compact && (h.top_k < 1 || h.top_k > std::min(kMaxTopK, h.n_vocab)))
        return fail("top-k " + std::to_string(h.top_k) + " is out of range (1 … " +
                    std::to_string(std::min(kMaxTopK, h.n_vocab)) + ")");

    // Every count is bounded (2^24 · 2^31 · 2^20 < 2^76 does not fit 64 bits, so use long double
    // only to reject, then exact integers once the total is known to be small).
    const long double expect_ld = (long double)header_bytes(h.format) + 4.0L * h.n_chunk * h.n_ctx +
                                  (long double)h.n_chunk * n_scored(h.n_ctx) * row_bytes(h.format, h.n_vocab, h.top_k);
    if (expect_ld > (long double)r.file_bytes_)
        return fail("truncated: the header announces " + std::to_string(h.n_chunk) + " chunks of " +
                    std::to_string(h.n_ctx) + " tokens (" + str(double(expect_ld)) + " bytes) but the file has " +
                    std::to_string(r.file_bytes_) + " bytes");
    const uint64_t expect =
        header_bytes(h.format) + 4 * uint64_t(h.n_chunk) * uint64_t(h.n_ctx) +
        uint64_t(h.n_chunk) * uint64_t(n_scored(h.n_ctx)) * uint64_t(row_bytes(h.format, h.n_vocab, h.top_k));
    if (expect != r.file_bytes_)
        return fail(std::to_string(r.file_bytes_ - expect) + " bytes follow the last of its " +
                    std::to_string(h.n_chunk) + " chunks (corrupt or not a base file of this layout)");

    h.tokens.resize(size_t(h.n_chunk) * size_t(h.n_ctx));
    if (!read(h.tokens.data(), h.tokens.size() * 4)) return fail("truncated in the tokens");
    for (size_t i = 0; i < h.tokens.size(); ++i) {
        if (h.tokens[i] < 0 || h.tokens[i] >= h.n_vocab)
            return fail("token " + std::to_string(h.tokens[i]) + " at index " + std::to_string(i) +
                        " is outside its vocabulary of " + std::to_string(h.n_vocab));
    }
    r.in_ = std::move(in);
    return r;
}

Status Reader::read_chunk(Chunk& c) {
    const Header& h = header_;
    const int32_t chunk = next_chunk_;
    auto fail = [&](const std::string& what) {
        return make_error(name_ + ": chunk " + std::to_string(chunk + 1) + ": " + what);
    };
    if (chunk >= h.n_chunk) return fail("read past the last chunk");
    const int32_t n_rows = n_scored(h.n_ctx);
    c.format_ = h.format;
    c.n_rows_ = n_rows;
    c.top_k_ = h.top_k;
    if (h.format == Format::Llama) {
        c.stride_ = llama_row_u16(h.n_vocab);
        c.packed_.resize(size_t(n_rows * c.stride_));
        if (!in_->read(reinterpret_cast<char*>(c.packed_.data()), std::streamsize(c.packed_.size() * 2)))
            return fail("truncated");
        for (int32_t i = 0; i < n_rows; ++i) {
            float scale, min_log_prob;
            std::memcpy(&scale, c.packed_.data() + i * c.stride_, 4);
            std::memcpy(&min_log_prob, c.packed_.data() + i * c.stride_ + 2, 4);
            if (!std::isfinite(scale) || scale < 0 || scale > 1 || !std::isfinite(min_log_prob) ||
                min_log_prob > kLogPSlack || min_log_prob < -1e6f)
                return fail("row " + std::to_string(i) + " has a bad scale " + str(scale) + " or minimum log p " +
                            str(min_log_prob));
        }
        ++next_chunk_;
        return {};
    }

    const int32_t k = h.top_k;
    c.stride_ = compact_row_words(k);
    const size_t raw = size_t(n_rows) * size_t(c.stride_);
    c.compact_.resize(raw);
    c.top_ids_.resize(size_t(n_rows) * size_t(k));
    c.top_log_p_.resize(size_t(n_rows) * size_t(k));
    if (!in_->read(reinterpret_cast<char*>(c.compact_.data()), std::streamsize(raw * 4))) return fail("truncated");
    for (int32_t i = 0; i < n_rows; ++i) {
        const uint32_t* w = c.compact_.data() + size_t(i) * size_t(c.stride_);
        const float lp_next = as_float(w[0]), lt = as_float(w[1]);
        const std::string where = "row " + std::to_string(i) + ": ";
        if (!std::isfinite(lp_next) || lp_next > kLogPSlack)
            return fail(where + "log p of the next token is " + str(lp_next));
        if (std::isnan(lt) || lt > kLogPSlack || lt == INFINITY) return fail(where + "log tail mass is " + str(lt));
        double mass = std::exp(double(lt));
        float prev = INFINITY;
        for (int32_t j = 0; j < k; ++j) {
            const int32_t id = int32_t(w[2 + 2 * j]);
            const float lp = as_float(w[3 + 2 * j]);
            if (id < 0 || id >= h.n_vocab)
                return fail(where + "token id " + std::to_string(id) + " is outside the vocabulary");
            if (!std::isfinite(lp) || lp > kLogPSlack || lp > prev)
                return fail(where + "log p " + str(lp) + " of entry " + std::to_string(j) +
                            " is not finite, positive or out of order");
            prev = lp;
            mass += std::exp(double(lp));
            c.top_ids_[size_t(i) * size_t(k) + size_t(j)] = id;
            c.top_log_p_[size_t(i) * size_t(k) + size_t(j)] = lp;
        }
        if (std::fabs(mass - 1) > 1e-2) return fail(where + "probabilities sum to " + str(mass) + " instead of 1");
    }
    ++next_chunk_;
    return {};
}

}  // namespace ferry::tools::kld
