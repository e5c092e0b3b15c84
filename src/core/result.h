// Errors as values.
//
// Everything that reads outside input (files, flags, requests) returns a Result<T>: either a value
// or an Error whose message names what is wrong and where ("tensor 'blk.0.attn_q.weight' at offset
// 1234: ..."). Library code never aborts on bad input; FERRY_CHECK (check.h) is for our own bugs.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "core/check.h"

namespace ferry {

struct Error {
    std::string message;
};

// A Result<void> is a Status: success or an Error.
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
    Result(Error error) : v_(std::move(error)) {}  // NOLINT

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & {
        FERRY_CHECK(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        FERRY_CHECK(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        FERRY_CHECK(ok());
        return std::get<0>(std::move(v_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const {
        FERRY_CHECK(!ok());
        return std::get<1>(v_);
    }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const {
        FERRY_CHECK(!ok_);
        return error_;
    }

private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(std::string message) { return Error{std::move(message)}; }

}  // namespace ferry

#define FERRY_CONCAT_INNER(a, b) a##b
#define FERRY_CONCAT(a, b) FERRY_CONCAT_INNER(a, b)

// FERRY_TRY(expr): evaluate a Status/Result; on error return its Error from the current function.
#define FERRY_TRY(expr)                                                \
    do {                                                               \
        auto&& ferry_try_result_ = (expr);                             \
        if (!ferry_try_result_.ok()) return ferry_try_result_.error(); \
    } while (0)

// FERRY_ASSIGN(lhs, expr): `lhs = std::move(value)` of a Result, or return its Error. It expands to
// several statements (lhs may be a declaration): inside an if/else, use braces.
#define FERRY_ASSIGN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                    \
    if (!tmp.ok()) return tmp.error();    \
    lhs = std::move(tmp).value()
#define FERRY_ASSIGN(lhs, expr) FERRY_ASSIGN_IMPL(FERRY_CONCAT(ferry_assign_, __LINE__), lhs, expr)
