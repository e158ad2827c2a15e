#pragma once
// What a board's card or drive bootloader wants (data/boards.toml and bootloaders.toml): the file
// name and folder, the transform, whether the name must change on every update, and what the
// bootloader does with the file once installed (renames it FIRMWARE.CUR, OLD.BIN, ... or leaves it).
// And, with the card back in the host, whether the bootloader took the file.
#include <optional>
#include <string>
#include <vector>

#include "storage/volume_link.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::storage {

struct CardRules {
    std::string board;           // the board's ID ("" when none was named)
    std::string bootloader;      // the bootloaders.toml row the file goes in through
    std::string file;            // "firmware.bin", "STM32F4_UPDATE/firmware.bin", "Robin_nano.bin"
    std::string transform;       // "", "mks-robin", "chitu", "srec"
    bool unique_name = false;    // a new name on every update (Creality: a name seen before is skipped)
    std::string installed_name;  // what the bootloader renames the file to once installed ("" = it leaves it)
    std::vector<std::string> extra_files;  // empty files the bootloader also wants (Monoprice: fcupdate.flg)
};

// The rules for a board; throws core::Error(Usage) when the board does not update from a card or drive.
CardRules card_rules(const targets::Knowledge& knowledge, const targets::Board& board);
// Without a board: firmware.bin for a bootloader whose protocol is sdcard (LPC176x and BTT style).
CardRules default_card_rules(const std::string& bootloader);

// The file name for this update: with unique_name, the name prefixed with the time (as Klipper's
// flash-sdcard.sh does: 20261205043000firmware.bin).
std::string file_for_update(const CardRules& rules);

// The card after the board was powered with it: did the bootloader take the file?
struct CardVerdict {
    enum class State {
        Installed,      // the file is gone, or renamed to the installed name
        NotInstalled,   // the file is still there as it was written
        NoFile,         // neither the file nor an installed one is on the card
        CannotTell,     // the bootloader leaves the file where it was (Creality): only the board can say
    } state = State::CannotTell;
    std::string words;  // for the user, with what to do
    std::vector<CardFile> seen;  // the files of the firmware's folder that matter
};
CardVerdict check_card_after_update(VolumeLink& card, const CardRules& rules);
const char* verdict_name(CardVerdict::State state);  // "installed", "not-installed", ...

}  // namespace mcuflash::storage
