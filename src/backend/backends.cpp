#include "backend/backends.h"

#include "backend/cpu/cpu_ops.h"
#include "backend/reference/reference_ops.h"

namespace ferry::backend {

std::unique_ptr<Ops> make_reference() { return std::make_unique<reference::ReferenceOps>(); }

std::unique_ptr<Ops> make_cpu(int n_threads) { return std::make_unique<cpu::CpuOps>(n_threads); }

std::unique_ptr<Ops> make_ops(BackendKind kind, int n_threads) {
    return kind == BackendKind::Cpu ? make_cpu(n_threads) : make_reference();
}

std::optional<BackendKind> parse_backend(std::string_view name) {
    if (name == "reference") return BackendKind::Reference;
    if (name == "cpu") return BackendKind::Cpu;
    return std::nullopt;
}

const char* backend_name(BackendKind kind) { return kind == BackendKind::Cpu ? "cpu" : "reference"; }

}  // namespace ferry::backend
