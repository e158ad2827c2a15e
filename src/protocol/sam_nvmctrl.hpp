#pragma once
// The NVM controllers of the SAMD21/SAMC21 and the SAMD51 (datasheets "NVMCTRL", "NVM User Row"):
// registers, commands and flags, for the drivers that reach them through a debug probe
// (swd/samd21.cpp, swd/samd51.cpp) and through the SAM-BA monitor (samba/nvmctrl_d21.cpp,
// samba/nvmctrl_d51.cpp). The simulator writes its own from the datasheets (sim/samba/flash_controllers.hpp
// says why).
#include <cstdint>

namespace mcuflash::protocol::nvmctrl {

constexpr uint32_t kBase = 0x41004000;
// The SAMD21's NVM user row, the SAMD51's NVM user page: BOOTPROT and the other fuses.
constexpr uint32_t kUserRow = 0x00804000;
// CMDEX: a command is taken only with this key in the high byte.
constexpr uint16_t kCmdKey = 0xA500;

// SAMD21 and SAMC21: commands go to CTRLA; ADDR takes halfword addresses; INTFLAG.READY says the
// controller is idle, INTFLAG.ERROR that STATUS holds an error (write 1 to clear, both).
namespace d21 {
constexpr uint32_t kCtrlA = kBase + 0x00, kCtrlB = kBase + 0x04, kIntFlag = kBase + 0x14, kStatus = kBase + 0x18,
                   kAddr = kBase + 0x1C;
constexpr uint16_t kCmdEraseRow = 0x02, kCmdWritePage = 0x04, kCmdEraseAuxRow = 0x05, kCmdWriteAuxPage = 0x06,
                   kCmdPageBufferClear = 0x44;
constexpr uint32_t kIntFlagReady = 1u << 0, kIntFlagError = 1u << 1;
constexpr uint32_t kStatusLoad = 1u << 1, kStatusProgE = 1u << 2, kStatusLockE = 1u << 3, kStatusNvmE = 1u << 4;
constexpr uint32_t kStatusErrors = kStatusProgE | kStatusLockE | kStatusNvmE;
constexpr uint32_t kCtrlBManualWrite = 1u << 7, kCtrlBCacheDisable = 1u << 18;
constexpr uint32_t kUserRowSize = 256;
}  // namespace d21

// SAMD51: commands go to CTRLB; ADDR takes byte addresses; STATUS.READY says the controller is idle;
// the errors are INTFLAG bits (write 1 to clear). INTFLAG and STATUS are 16-bit registers in one word.
namespace d51 {
constexpr uint32_t kCtrlA = kBase + 0x00, kCtrlB = kBase + 0x04, kIntFlag = kBase + 0x10, kStatus = kBase + 0x12,
                   kAddr = kBase + 0x14;
constexpr uint16_t kCmdErasePage = 0x00, kCmdEraseBlock = 0x01, kCmdWritePage = 0x03, kCmdWriteQuadWord = 0x04,
                   kCmdPageBufferClear = 0x15;
constexpr uint16_t kStatusReady = 1u << 0;
constexpr uint32_t kIntFlagDone = 1u << 0, kIntFlagAddrE = 1u << 1, kIntFlagProgE = 1u << 2, kIntFlagLockE = 1u << 3,
                   kIntFlagNvmE = 1u << 6, kIntFlagSusp = 1u << 7;
constexpr uint32_t kIntFlagErrors = kIntFlagAddrE | kIntFlagProgE | kIntFlagLockE | kIntFlagNvmE;
constexpr uint32_t kCtrlAWriteMode = 3u << 4;  // WMODE: 0 is manual (a page goes to flash only on WP)
constexpr uint32_t kUserPageSize = 512;
}  // namespace d51

}  // namespace mcuflash::protocol::nvmctrl
