#include "core/error.hpp"

namespace mcuflash::core {

int exit_code(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Usage: return 64;
        case ErrorKind::BadInput: return 65;
        case ErrorKind::Unsafe: return 65;
        case ErrorKind::NotFound: return 69;
        case ErrorKind::Io: return 74;
        case ErrorKind::Protocol: return 74;
        case ErrorKind::Timeout: return 75;
        case ErrorKind::Permission: return 77;
        case ErrorKind::VerifyMismatch: return 1;
        case ErrorKind::Unsupported: return 69;
        case ErrorKind::Internal: return 70;
        case ErrorKind::Interrupted: return 130;
        case ErrorKind::Terminated: return 143;
    }
    return 70;
}

ErrorKind kind_by_name(std::string_view name) {
    for (int k = 0; k <= static_cast<int>(ErrorKind::Terminated); ++k)
        if (name == kind_name(static_cast<ErrorKind>(k))) return static_cast<ErrorKind>(k);
    return ErrorKind::Internal;
}

const char* kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Usage: return "usage";
        case ErrorKind::BadInput: return "bad_input";
        case ErrorKind::Unsafe: return "unsafe";
        case ErrorKind::NotFound: return "not_found";
        case ErrorKind::Io: return "io";
        case ErrorKind::Protocol: return "protocol";
        case ErrorKind::Timeout: return "timeout";
        case ErrorKind::Permission: return "permission";
        case ErrorKind::VerifyMismatch: return "verify_mismatch";
        case ErrorKind::Unsupported: return "unsupported";
        case ErrorKind::Internal: return "internal";
        case ErrorKind::Interrupted: return "interrupted";
        case ErrorKind::Terminated: return "terminated";
    }
    return "internal";
}

std::string Error::full_message() const {
    std::string message = what();
    // Clients often name the operation in the message already.
    if (operation_.empty() || message.rfind(operation_, 0) == 0) return message;
    return operation_ + ": " + message;
}

}  // namespace mcuflash::core
