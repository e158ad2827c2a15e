// libFuzzer entry point for the FAT reader and writer (storage/fat.hpp): the input is a card's first
// sectors, as a damaged or foreign card could hold them. The volume is opened, listed, every file read,
// then a firmware file written and read back.
// Findings: a sanitizer report, any exception other than core::Error, a hang, or a file that was
// written without an error but reads back different.
#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "fuzz_check.hpp"
#include "storage/block_device.hpp"
#include "storage/fat.hpp"

using namespace mcuflash;
using mcuflash::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Whole sectors, as a card has them.
    std::vector<uint8_t> disk(data, data + size);
    disk.resize((disk.size() + storage::kSectorSize - 1) / storage::kSectorSize * storage::kSectorSize);
    if (disk.empty()) return 0;
    storage::MemoryBlockDevice device(std::move(disk));
    try {
        storage::FatVolume volume(device);
        volume.info();
        for (const auto& entry : volume.list())
            if (!entry.directory && entry.size <= (1u << 20)) volume.read_file(entry.name);
        std::vector<uint8_t> firmware(1500);
        for (size_t i = 0; i < firmware.size(); ++i) firmware[i] = static_cast<uint8_t>(i * 7 + 1);
        volume.write_file("FIRMWARE.BIN", firmware);
        volume.flush();
        require(volume.read_file("FIRMWARE.BIN") == firmware, "a written file reads back different");
    } catch (const core::Error&) {
        // refused with a message: the expected outcome for most inputs
    }
    return 0;
}
