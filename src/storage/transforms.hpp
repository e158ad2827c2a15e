#pragma once
// What some boards' SD bootloaders need done to the firmware file before it goes on the card
// (../shared/reference/boards-notes.md §6), implemented from the facts and checked byte for byte
// against Klipper's scripts/update_mks_robin.py and update_chitu.py. Each has its inverse, so what is
// read back from the card can be compared with the image.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::storage {

// MKS Robin: bytes 320 to 31039 XORed with a 32-byte key at (offset & 31); its own inverse.
std::vector<uint8_t> mks_robin_scramble(std::span<const uint8_t> firmware);

// Chitu v6 (update.cbd): a 12-byte header (magic 0x443D2D3F big-endian, the key, an XOR sum), then the
// firmware padded with "0x0" to whole 2 KiB blocks, each byte XORed with a value of its block, its
// place and the key (the first four bytes of the firmware's MD5).
std::vector<uint8_t> chitu_encode(std::span<const uint8_t> firmware);
// The padded firmware back; throws core::Error(BadInput) when the header or XOR sum is not right.
std::vector<uint8_t> chitu_decode(std::span<const uint8_t> file);

// A transform by its data/boards.toml name ("", "mks-robin", "chitu", "srec"), for a firmware that
// starts at `address`; and back. Throws core::Error(Unsupported) for a name it does not know.
std::vector<uint8_t> apply_transform(const std::string& name, uint32_t address, std::span<const uint8_t> firmware);
std::vector<uint8_t> undo_transform(const std::string& name, uint32_t address, std::span<const uint8_t> file);

}  // namespace mcuflash::storage
