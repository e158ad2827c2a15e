#include "core/progress.hpp"

namespace mcuflash::core {

const char* stage_name(Stage stage) {
    switch (stage) {
        case Stage::Connect: return "connect";
        case Stage::Erase: return "erase";
        case Stage::Write: return "write";
        case Stage::Verify: return "verify";
        case Stage::Read: return "read";
        case Stage::Start: return "start";
    }
    return "?";
}

}  // namespace mcuflash::core
