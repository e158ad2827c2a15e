// The SD-card "bootloader" end to end: device::connect on img: with a board, the plan's whole-image
// path, the board's file name and transform, read back and compared; the card then passes fsck.fat
// and mtools reads the file that Klipper's own script would have made. And after the update: what
// the card tells about whether the bootloader took the file.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "device/device.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/sdcard/client.hpp"
#include "storage/card_rules.hpp"
#include "storage/transforms.hpp"
#include "storage/volume_link.hpp"

namespace fs = std::filesystem;
using namespace mcuflash;

namespace {

std::pair<int, std::string> sh(const std::string& command) {
    std::string out;
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int status = pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::vector<uint8_t> slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// A Cortex-M application linked at `at`: its vector table, then random bytes.
std::vector<uint8_t> application(uint32_t at, size_t size) {
    std::mt19937 rng(at);
    std::vector<uint8_t> out(size);
    for (auto& b : out) b = uint8_t(rng());
    const uint32_t words[2] = {0x20005000, at + 0x101};
    std::memcpy(out.data(), words, 8);
    return out;
}

class SdCardClient : public ::testing::Test {
protected:
    void SetUp() override {
        if (sh("command -v mkfs.fat && command -v fsck.fat && command -v mcopy").first != 0)
            GTEST_SKIP() << "dosfstools and mtools are not installed";
        dir = fs::temp_directory_path() / fmt::format("mcuflash-sdclient-{}", getpid());
        fs::create_directories(dir);
        card = dir / "card.img";
        ASSERT_EQ(sh(fmt::format("mkfs.fat -C -F 32 -s 1 '{}' 40960", card.string())).first, 0);
    }
    void TearDown() override {
        if (!dir.empty()) fs::remove_all(dir);
    }

    // Flashes `firmware` (a raw binary) for `board` and returns the name the client wrote.
    std::string flash(const std::string& board, const std::vector<uint8_t>& firmware, plan::FlashReport* out = nullptr) {
        device::DeviceOptions options;
        options.device = "img:" + card.string();
        options.board = board;
        auto session = device::connect(options, targets::Knowledge::builtin(), [this](const std::string& w) {
            warnings.push_back(w);
        });
        image::Image img;
        img.add(session.info.app_start, firmware, "klipper.bin");
        auto caps = session.bootloader->capabilities();
        auto p = plan::make_plan(img, session.info, caps, {});
        auto report = plan::execute(*session.bootloader, p, {}, core::Progress());
        EXPECT_TRUE(report.verified);
        if (out) *out = report;
        return static_cast<protocol::sdcard::Client&>(*session.bootloader).written_name();
    }

    std::vector<uint8_t> mtools_read(const std::string& name) {
        const fs::path back = dir / "back.bin";
        fs::remove(back);
        auto [rc, text] = sh(fmt::format("mcopy -n -i '{}' '::{}' '{}'", card.string(), name, back.string()));
        EXPECT_EQ(rc, 0) << text;
        return slurp(back);
    }

    void expect_clean() {
        auto [rc, text] = sh("fsck.fat -n " + card.string());
        EXPECT_EQ(rc, 0) << text;
    }

    fs::path dir, card;
    std::vector<std::string> warnings;
};

TEST_F(SdCardClient, AnLpc176xBoardGetsFirmwareBin) {
    const auto fw = application(0x4000, 150000);
    EXPECT_EQ(flash("btt-skr-v1.4", fw), "firmware.bin");
    expect_clean();
    EXPECT_TRUE(mtools_read("firmware.bin") == fw);
}

TEST_F(SdCardClient, MksRobinIsScrambledAsUpdateMksRobinPyDoes) {
    const auto fw = application(0x08007000, 90000);
    EXPECT_EQ(flash("mks-robin-nano-v1.2", fw), "Robin_nano.bin");
    expect_clean();
    const auto on_card = mtools_read("Robin_nano.bin");
    EXPECT_TRUE(on_card == storage::mks_robin_scramble(fw));
    EXPECT_FALSE(on_card == fw);
    const fs::path script = fs::path(MCUFLASH_DATA_DIR) / "../../shared/peers/klipper/scripts/update_mks_robin.py";
    if (fs::exists(script)) {
        std::ofstream(dir / "klipper.bin", std::ios::binary).write(reinterpret_cast<const char*>(fw.data()), long(fw.size()));
        ASSERT_EQ(sh(fmt::format("cd '{}' && python3 '{}' klipper.bin ref.bin", dir.string(), script.string())).first, 0);
        EXPECT_TRUE(on_card == slurp(dir / "ref.bin"));
    }
}

TEST_F(SdCardClient, ChituGetsUpdateCbd) {
    const auto fw = application(0x08008800, 70000);
    EXPECT_EQ(flash("tronxy-chitu-v6", fw), "update.cbd");
    expect_clean();
    EXPECT_TRUE(mtools_read("update.cbd") == storage::chitu_encode(fw));
}

TEST_F(SdCardClient, CrealityGetsANewNameEachTime) {
    const auto fw = application(0x08007000, 40000);
    const auto name = flash("creality-v4.2.7", fw);
    EXPECT_EQ(name.size(), 14 + std::string("firmware.bin").size()) << name;
    EXPECT_EQ(name.substr(14), "firmware.bin");
    expect_clean();
    EXPECT_TRUE(mtools_read(name) == fw);
}

TEST_F(SdCardClient, AnImageLinkedForAnotherOffsetIsRefusedAndTheCardUntouched) {
    const auto before = slurp(card);
    device::DeviceOptions options;
    options.device = "img:" + card.string();
    options.board = "btt-skr-v1.4";
    auto session = device::connect(options, targets::Knowledge::builtin(), {});
    image::Image img;
    img.add(0x0, application(0x0, 4000), "klipper.bin");  // linked without the bootloader's 16 KiB
    EXPECT_THROW(plan::make_plan(img, session.info, session.bootloader->capabilities(), {}), core::Error);
    EXPECT_TRUE(slurp(card) == before);
}

TEST_F(SdCardClient, AfterTheUpdateTheCardTellsWhetherTheBootloaderTookTheFile) {
    const auto fw = application(0x4000, 30000);
    flash("btt-skr-v1.4", fw);
    const auto& kb = targets::Knowledge::builtin();
    const auto rules = storage::card_rules(kb, kb.boards().at("btt-skr-v1.4"));
    {
        auto link = storage::VolumeLink::open_unmounted(card.string());
        auto v = storage::check_card_after_update(*link, rules);
        EXPECT_EQ(v.state, storage::CardVerdict::State::NotInstalled) << v.words;
    }
    // What the LPC176x bootloader does: firmware.bin renamed to FIRMWARE.CUR.
    ASSERT_EQ(sh(fmt::format("mren -i '{}' ::firmware.bin ::FIRMWARE.CUR", card.string())).first, 0);
    {
        auto link = storage::VolumeLink::open_unmounted(card.string());
        auto v = storage::check_card_after_update(*link, rules);
        EXPECT_EQ(v.state, storage::CardVerdict::State::Installed) << v.words;
        std::string words = v.words;
        for (auto& c : words) c = char(std::toupper(uint8_t(c)));
        EXPECT_NE(words.find("FIRMWARE.CUR"), std::string::npos) << v.words;
    }
    ASSERT_EQ(sh(fmt::format("mdel -i '{}' ::FIRMWARE.CUR", card.string())).first, 0);
    {
        auto link = storage::VolumeLink::open_unmounted(card.string());
        EXPECT_EQ(storage::check_card_after_update(*link, rules).state, storage::CardVerdict::State::NoFile);
    }
    // A Creality bootloader leaves the file: the card cannot tell.
    auto link = storage::VolumeLink::open_unmounted(card.string());
    EXPECT_EQ(storage::check_card_after_update(*link, storage::card_rules(kb, kb.boards().at("creality-v4.2.7"))).state,
              storage::CardVerdict::State::CannotTell);
}

TEST_F(SdCardClient, AMountedVolumeIsWrittenThroughItsFileSystem) {
    // A folder stands for the mount point (a FAT mount needs root; the guest-kernel test mounts one).
    const fs::path mount = dir / "mnt";
    fs::create_directories(mount / "STM32F4_UPDATE");
    auto link = storage::VolumeLink::open_directory(mount.string());
    const auto fw = application(0x08010000, 20000);
    link->write_file("stm32f4_update/firmware.bin", fw);  // found whatever the folder's case
    EXPECT_TRUE(slurp(mount / "STM32F4_UPDATE" / "firmware.bin") == fw);
    EXPECT_TRUE(link->read_file("STM32F4_UPDATE/FIRMWARE.BIN") == fw);
}

TEST_F(SdCardClient, NoBoardIsAUsageError) {
    device::DeviceOptions options;
    options.device = "img:" + card.string();
    options.chip = "stm32f103xe";  // several SD bootloaders exist for it
    try {
        device::connect(options, targets::Knowledge::builtin(), {});
        FAIL() << "connected without a board";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("--board"), std::string::npos);
    }
}

}  // namespace

namespace {

TEST_F(SdCardClient, CheckCardThroughTheDeviceLayer) {
    flash("btt-skr-v1.4", application(0x4000, 5000));
    device::DeviceOptions options;
    options.device = "img:" + card.string();
    options.board = "btt-skr-v1.4";
    EXPECT_EQ(device::check_card(options, targets::Knowledge::builtin()).state, storage::CardVerdict::State::NotInstalled);
    options.board.clear();
    options.chip = "lpc1769";
    EXPECT_EQ(device::check_card(options, targets::Knowledge::builtin()).state, storage::CardVerdict::State::NotInstalled);
    options.device = "sim:stk500v1";
    EXPECT_THROW(device::check_card(options, targets::Knowledge::builtin()), core::Error);
}

}  // namespace
