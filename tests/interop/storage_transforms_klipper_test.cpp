// The MKS Robin and Chitu transforms against Klipper's own scripts (scripts/update_mks_robin.py and
// update_chitu.py, run by python3 from a temporary folder): the same input gives the same bytes.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "storage/transforms.hpp"

namespace fs = std::filesystem;
using namespace mcuflash;

namespace {

const fs::path kScripts = fs::path(MCUFLASH_DATA_DIR) / ".." / ".." / "shared" / "peers" / "klipper" / "scripts";

std::vector<uint8_t> slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<uint8_t> klipper(const std::string& script, const std::vector<uint8_t>& input) {
    const fs::path dir = fs::temp_directory_path() / fmt::format("mcuflash-transform-{}", getpid());
    fs::create_directories(dir);
    {
        std::ofstream out(dir / "klipper.bin", std::ios::binary);
        out.write(reinterpret_cast<const char*>(input.data()), std::streamsize(input.size()));
    }
    const std::string cmd = fmt::format("cd '{}' && python3 '{}' klipper.bin out.bin >/dev/null 2>&1", dir.string(),
                                        (kScripts / script).string());
    const int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd;
    auto out = slurp(dir / "out.bin");
    fs::remove_all(dir);
    return out;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (auto& b : out) b = uint8_t(rng());
    return out;
}

class KlipperTransforms : public ::testing::TestWithParam<size_t> {
protected:
    void SetUp() override {
        if (!fs::exists(kScripts / "update_mks_robin.py") || std::system("command -v python3 >/dev/null 2>&1") != 0)
            GTEST_SKIP() << "Klipper's scripts or python3 are not here";
    }
};

TEST_P(KlipperTransforms, MksRobinMatchesUpdateMksRobinPy) {
    const auto input = random_bytes(GetParam(), uint32_t(GetParam()));
    const auto ours = storage::apply_transform("mks-robin", 0x08007000, input);
    EXPECT_TRUE(ours == klipper("update_mks_robin.py", input)) << GetParam() << " bytes";
    EXPECT_TRUE(storage::undo_transform("mks-robin", 0x08007000, ours) == input);
}

TEST_P(KlipperTransforms, ChituMatchesUpdateChituPy) {
    const auto input = random_bytes(GetParam(), uint32_t(GetParam()) + 1);
    const auto ours = storage::apply_transform("chitu", 0x08008800, input);
    EXPECT_TRUE(ours == klipper("update_chitu.py", input)) << GetParam() << " bytes";
    auto back = storage::undo_transform("chitu", 0x08008800, ours);
    ASSERT_GE(back.size(), input.size());
    back.resize(input.size());
    EXPECT_TRUE(back == input);
}

INSTANTIATE_TEST_SUITE_P(Sizes, KlipperTransforms,
                         ::testing::Values(size_t(1), size_t(319), size_t(320), size_t(2048), size_t(2049),
                                           size_t(31039), size_t(31041), size_t(100000)));

TEST(ChituDecode, ADamagedFileIsRefused) {
    auto file = storage::chitu_encode(random_bytes(5000, 3));
    file[100] ^= 1;
    EXPECT_THROW(storage::chitu_decode(file), std::exception);
    EXPECT_THROW(storage::chitu_decode(std::vector<uint8_t>(5, 0)), std::exception);
}

}  // namespace
