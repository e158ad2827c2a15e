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
    }
    return 70;
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
    }
    return "internal";
}

}  // namespace mcuflash::core
