// Factories for the Ops implementations, so the runtime, tools and tests choose a backend by name
// without depending on backend internals.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "backend/ops.h"

namespace ferry::backend {

enum class BackendKind { Reference, Cpu };

// The scalar f32 oracle.
std::unique_ptr<Ops> make_reference();
// The fast CPU backend; n_threads <= 0: one per physical core (`-t` semantics).
std::unique_ptr<Ops> make_cpu(int n_threads = 0);
std::unique_ptr<Ops> make_ops(BackendKind kind, int n_threads = 0);

// "reference" / "cpu" -> kind; nullopt for anything else.
std::optional<BackendKind> parse_backend(std::string_view name);
const char* backend_name(BackendKind kind);

}  // namespace ferry::backend
