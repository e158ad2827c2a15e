// The loader: format detection, names and extensions, size limits, save_file round trips; and the
// registry itself.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "image/loader.hpp"
#include "image_test_support.hpp"

namespace fs = std::filesystem;
using namespace mcuflash::image;
using namespace mcuflash::image::test_support;

namespace {

// A fresh folder per test, removed afterwards.
class Loader : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / folder_name(info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::string write(const std::string& name, std::string_view content) const {
        std::ofstream(path(name), std::ios::binary) << content;
        return path(name);
    }
    std::string copy_fixture(const std::string& name, const std::string& as) const {
        fs::copy_file(fixture_path(name), path(as), fs::copy_options::overwrite_existing);
        return path(as);
    }

private:
    static std::string folder_name(const std::string& test) {
        return "mcuflash_image_" + test + "_" + std::to_string(::getpid());
    }
    fs::path dir_;
};

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(Registry, EveryFormatRegisteredOnceWithUniqueName) {
    std::set<std::string> names;
    for (Format format : {Format::IntelHex, Format::SRecord, Format::Elf, Format::Binary, Format::Uf2}) {
        EXPECT_EQ(handler(format).id, format);
        EXPECT_TRUE(names.insert(format_name(format)).second);
        EXPECT_NE(handler(format).parse, nullptr);
    }
    EXPECT_EQ(formats().size(), names.size());
    EXPECT_NE(handler(Format::IntelHex).write, nullptr);
    EXPECT_NE(handler(Format::SRecord).write, nullptr);
    EXPECT_NE(handler(Format::Binary).write, nullptr);
}

TEST(Registry, FormatFromName) {
    EXPECT_EQ(format_from_name("hex"), Format::IntelHex);
    EXPECT_EQ(format_from_name("ihex"), Format::IntelHex);
    EXPECT_EQ(format_from_name("IHEX"), Format::IntelHex);
    EXPECT_EQ(format_from_name("srec"), Format::SRecord);
    EXPECT_EQ(format_from_name("s19"), Format::SRecord);
    EXPECT_EQ(format_from_name("elf"), Format::Elf);
    EXPECT_EQ(format_from_name("bin"), Format::Binary);
    EXPECT_EQ(format_from_name("uf2"), Format::Uf2);
    EXPECT_EQ(error_of(ErrorKind::Usage, [] { format_from_name("zip"); }),
              "unknown image format 'zip' (known: elf, uf2, ihex, srec, bin)");
    error_of(ErrorKind::Usage, [] { format_from_name(""); });
}

TEST(Registry, FormatForExtension) {
    EXPECT_EQ(format_for_extension("out/klipper.hex"), Format::IntelHex);
    EXPECT_EQ(format_for_extension("a.ihex"), Format::IntelHex);
    for (const char* name : {"a.srec", "a.s19", "a.s28", "a.S37", "a.mot"})
        EXPECT_EQ(format_for_extension(name), Format::SRecord);
    EXPECT_EQ(format_for_extension("klipper.elf"), Format::Elf);
    EXPECT_EQ(format_for_extension("klipper.BIN"), Format::Binary);
    EXPECT_EQ(format_for_extension("klipper.uf2"), Format::Uf2);
    EXPECT_TRUE(contains(error_of(ErrorKind::Usage, [] { format_for_extension("firmware.zip"); }), "firmware.zip"));
    error_of(ErrorKind::Usage, [] { format_for_extension("firmware"); });
}

TEST_F(Loader, EveryFormatBySniffingWhateverTheName) {
    const Bytes blink = read_fixture("blink.bin");
    const std::pair<const char*, Format> cases[] = {
        {"blink.hex", Format::IntelHex}, {"blink.srec", Format::SRecord}, {"blink.elf", Format::Elf},
        {"blink.bin", Format::Binary},   {"blink.uf2", Format::Uf2},
    };
    for (const auto& [name, format] : cases) {
        SCOPED_TRACE(name);
        const Image image = load_file(copy_fixture(name, "firmware.dat"));  // the name says nothing
        EXPECT_EQ(image.source_format, format);
        EXPECT_EQ(image.total_bytes(), blink.size());
        EXPECT_EQ(image.flatten(image.lowest(), image.lowest() + static_cast<uint32_t>(blink.size())), blink);
    }
}

TEST_F(Loader, ContentBeatsExtension) {
    EXPECT_EQ(load_file(copy_fixture("blink.srec", "mislabelled.hex")).source_format, Format::SRecord);
    EXPECT_EQ(load_file(copy_fixture("blink.hex", "mislabelled.bin")).source_format, Format::IntelHex);
}

TEST_F(Loader, ExtensionDecidesWhenContentIsNotRecognised) {
    // A damaged first line: no longer sniffs as HEX, but the extension says HEX, so HEX errors come out.
    const std::string hex = write("broken.hex", ":10000000ZZ\n:00000001FF\n");
    EXPECT_EQ(error_of(ErrorKind::BadInput, [&] { load_file(hex); }), hex + ":1: 'Z' at column 10 is not a hex digit");
    const std::string elf = write("broken.elf", "not an elf");
    EXPECT_EQ(error_of(ErrorKind::BadInput, [&] { load_file(elf); }),
              elf + ": offset 0x0: not an ELF file (no 7F 'E' 'L' 'F' magic)");
}

TEST_F(Loader, UnrecognisedContentIsRawBinary) {
    const Image image = load_file(write("firmware.img", std::string("\x00\x50\x00\x20\xC1\x01\x00\x08", 8)));
    EXPECT_EQ(image.source_format, Format::Binary);
    EXPECT_EQ(image.reset_vector_arm(), 0x080001C1u);
    // A text file that is neither HEX nor S-record is raw binary too: its first line decides.
    EXPECT_EQ(load_file(write("notes.txt", ":-) hello\n")).source_format, Format::Binary);
}

TEST_F(Loader, ExplicitFormatWins) {
    const Image as_binary = load_file(fixture_path("blink.hex"), {Format::Binary, std::nullopt});
    EXPECT_EQ(as_binary.source_format, Format::Binary);
    EXPECT_EQ(as_binary.runs().begin()->second, read_fixture("blink.hex"));
    EXPECT_TRUE(contains(error_of(ErrorKind::BadInput,
                                  [] {
                                      load_file(fixture_path("blink.hex"), {Format::SRecord, {}});
                                  }),
                         "blink.hex:1: expected 'S' to start a record, found ':'"));
}

TEST_F(Loader, BaseAddressForRawBinaryOnly) {
    const Image image = load_file(fixture_path("blink.bin"), {std::nullopt, 0x08000000});
    EXPECT_EQ(image.lowest(), 0x08000000u);
    EXPECT_EQ(image.source_format, Format::Binary);
    const std::string message = error_of(ErrorKind::Usage, [] {
        load_file(fixture_path("blink.hex"), {std::nullopt, 0x08000000});
    });
    EXPECT_TRUE(contains(message, "blink.hex is Intel HEX, which carries its own addresses")) << message;
}

TEST_F(Loader, EmptyImagesRefused) {
    const std::string empty = write("empty.bin", "");
    EXPECT_EQ(error_of(ErrorKind::BadInput, [&] { load_file(empty); }),
              empty + ": the raw binary file holds no data to flash");
    const std::string eof_only = write("eof_only.hex", ":00000001FF\n");
    EXPECT_EQ(error_of(ErrorKind::BadInput, [&] { load_file(eof_only); }),
              eof_only + ": the Intel HEX file holds no data to flash");
}

TEST_F(Loader, AbsurdSizeRefusedBeforeReading) {
    const std::string huge = path("huge.bin");
    { std::ofstream create(huge); }
    fs::resize_file(huge, (64u << 20) + 1);  // sparse: costs no disk
    const std::string message = error_of(ErrorKind::BadInput, [&] { load_file(huge); });
    EXPECT_EQ(message, huge + ": 67108865 bytes is an absurd size for a firmware image (the limit is 64 MiB)");
}

TEST_F(Loader, UnreadableFiles) {
    EXPECT_TRUE(contains(error_of(ErrorKind::BadInput, [&] { load_file(path("missing.hex")); }),
                         "missing.hex: No such file or directory"));
    EXPECT_TRUE(contains(error_of(ErrorKind::BadInput, [&] { load_file(path("")); }), "it is a directory"));
    // A FIFO with no writer would block the read for ever; a device never ends: refused by stat, at once.
    const std::string fifo = path("image.fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_TRUE(contains(error_of(ErrorKind::BadInput, [&] { load_file(fifo); }), "not a regular file"));
    EXPECT_TRUE(contains(error_of(ErrorKind::BadInput, [&] { load_file("/dev/zero"); }), "not a regular file"));
}

TEST_F(Loader, SaveRoundTripsHexSrecBin) {
    const Image original = load_file(fixture_path("blink_at_08000000.hex"));
    ASSERT_EQ(original.entry, 0x08000000u);

    save_file(original, path("a.srec"), format_for_extension("a.srec"));
    const Image from_srec = load_file(path("a.srec"));
    EXPECT_EQ(from_srec.source_format, Format::SRecord);
    EXPECT_EQ(from_srec.runs(), original.runs());
    EXPECT_EQ(from_srec.entry, original.entry);

    save_file(from_srec, path("a.bin"), Format::Binary);
    EXPECT_EQ(read_bytes(path("a.bin")), read_fixture("blink.bin"));
    const Image from_bin = load_file(path("a.bin"), {std::nullopt, 0x08000000});
    EXPECT_EQ(from_bin.runs(), original.runs());

    save_file(from_bin, path("b.hex"), Format::IntelHex);
    const Image from_hex = load_file(path("b.hex"));
    EXPECT_EQ(from_hex.runs(), original.runs());
    EXPECT_FALSE(from_hex.entry);  // raw binary carries no entry point

    // srec -> hex directly, from the S3 fixture.
    save_file(load_file(fixture_path("blink_at_08000000.srec")), path("c.hex"), Format::IntelHex);
    const Image from_s3 = load_file(path("c.hex"));
    EXPECT_EQ(from_s3.runs(), original.runs());
    EXPECT_EQ(from_s3.entry, 0x08000000u);
}

TEST_F(Loader, SaveRefusesReadOnlyFormatsAndLeavesNoPartialFile) {
    const Image image = load_file(fixture_path("blink.elf"));
    EXPECT_EQ(error_of(ErrorKind::Usage, [&] { save_file(image, path("x.elf"), Format::Elf); }),
              "mcuflash cannot write ELF files");

    Image far_apart;
    far_apart.add(0, Bytes{1}, "a");
    far_apart.add(0x80000000, Bytes{2}, "b");
    error_of(ErrorKind::BadInput, [&] { save_file(far_apart, path("x.bin"), Format::Binary); });
    EXPECT_FALSE(fs::exists(path("x.bin")));
    EXPECT_EQ(error_of(ErrorKind::Io, [&] { save_file(image, path("no/such/dir/x.hex"), Format::IntelHex); }),
              "cannot write " + path("no/such/dir/x.hex") + ": No such file or directory");
}

TEST(ParseContent, DetectionWithoutAFile) {
    const std::string text = "S107000001020304EE\nS9030000FC\n";
    const Image image = parse_content(text_bytes(text), {}, "<stdin>");
    EXPECT_EQ(image.source_format, Format::SRecord);
    EXPECT_EQ(detect_format({}, "x.uf2"), Format::Uf2);
    EXPECT_EQ(detect_format({}, "x"), Format::Binary);
}
