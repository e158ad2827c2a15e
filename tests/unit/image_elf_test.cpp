// ELF: PT_LOAD segments at their physical addresses, ELF32/ELF64 in both byte orders, and every
// header or segment that points where it must not. The ELF files are built by hand below.
#include <gtest/gtest.h>

#include <algorithm>

#include "image_test_support.hpp"

using namespace mcuflash::image::test_support;

namespace {

constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;

struct Segment {
    uint64_t vaddr = 0;
    uint64_t paddr = 0;
    Bytes data;
    uint64_t memsz = 0;  // 0: same as data.size()
    uint32_t type = kPtLoad;
};

// Writes a minimal executable: ELF header, program header table right after it, then segment data.
// Offsets of interesting fields are public so tests can damage them.
class ElfBuilder {
public:
    bool is64 = false;
    bool big_endian = false;
    uint16_t type = 2;  // ET_EXEC
    uint64_t entry = 0;
    std::vector<Segment> segments;

    size_t header_size() const { return is64 ? 64 : 52; }
    size_t phentsize() const { return is64 ? 56 : 32; }
    size_t phoff_field() const { return is64 ? 32 : 28; }
    size_t phentsize_field() const { return is64 ? 54 : 42; }
    size_t phnum_field() const { return is64 ? 56 : 44; }
    size_t program_header(size_t index) const { return header_size() + index * phentsize(); }
    size_t p_offset_field(size_t index) const { return program_header(index) + (is64 ? 8 : 4); }
    size_t p_filesz_field(size_t index) const { return program_header(index) + (is64 ? 32 : 16); }
    size_t p_memsz_field(size_t index) const { return program_header(index) + (is64 ? 40 : 20); }
    size_t p_paddr_field(size_t index) const { return program_header(index) + (is64 ? 24 : 12); }

    Bytes build() const {
        const size_t data_start = program_header(segments.size());
        size_t total = data_start;
        for (const auto& segment : segments) total += segment.data.size();
        Bytes elf(total, 0);

        const uint8_t ident[] = {0x7F, 'E', 'L', 'F', uint8_t(is64 ? 2 : 1), uint8_t(big_endian ? 2 : 1), 1};
        std::copy(std::begin(ident), std::end(ident), elf.begin());
        put(elf, 16, type, 2);
        put(elf, 18, is64 ? 0xB7 : 0x28, 2);  // EM_AARCH64 / EM_ARM: any machine is accepted
        put(elf, 20, 1, 4);
        put(elf, 24, entry, word());
        put(elf, phoff_field(), header_size(), word());
        put(elf, is64 ? 52 : 40, header_size(), 2);  // e_ehsize
        put(elf, phentsize_field(), phentsize(), 2);
        put(elf, phnum_field(), segments.size(), 2);

        size_t offset = data_start;
        for (size_t i = 0; i < segments.size(); ++i) {
            const Segment& segment = segments[i];
            const size_t header = program_header(i);
            put(elf, header, segment.type, 4);
            put(elf, p_offset_field(i), offset, word());
            put(elf, header + (is64 ? 16 : 8), segment.vaddr, word());
            put(elf, p_paddr_field(i), segment.paddr, word());
            put(elf, p_filesz_field(i), segment.data.size(), word());
            put(elf, p_memsz_field(i), segment.memsz ? segment.memsz : segment.data.size(), word());
            std::copy(segment.data.begin(), segment.data.end(), elf.begin() + static_cast<ptrdiff_t>(offset));
            offset += segment.data.size();
        }
        return elf;
    }

    // Overwrites a field of `width` bytes in the builder's byte order.
    void put(Bytes& elf, size_t at, uint64_t value, size_t width) const {
        for (size_t i = 0; i < width; ++i) {
            const size_t position = big_endian ? at + width - 1 - i : at + i;
            elf[position] = static_cast<uint8_t>(value >> (8 * i));
        }
    }
    size_t word() const { return is64 ? 8 : 4; }
};

Image parse_elf(const Bytes& elf, const std::string& filename = "x.elf") {
    return parse_as(Format::Elf, elf, filename);
}

// The BadInput message parsing `elf` produces.
std::string elf_error(const Bytes& elf) { return parse_error(Format::Elf, elf, "x.elf"); }

// A Cortex-M style program: code in flash, initialised data linked in RAM but loaded into flash.
ElfBuilder firmware_with_data_in_ram(bool is64, bool big_endian) {
    ElfBuilder builder;
    builder.is64 = is64;
    builder.big_endian = big_endian;
    builder.entry = 0x080000C1;
    builder.segments = {
        {0x08000000, 0x08000000, counting(0x100)},
        {0x20000000, 0x08000100, counting(0x20, 0xA0)},  // .data: VMA in RAM, LMA in flash
    };
    return builder;
}

}  // namespace

TEST(Elf, PhysicalAddressWinsOverVirtual) {
    const Image image = parse_elf(firmware_with_data_in_ram(false, false).build());
    EXPECT_EQ(image.describe_ranges(), "0x08000000-0x0800011F (288 bytes)");
    EXPECT_FALSE(image.any_in(0x20000000, 0x20000020));
    EXPECT_EQ(image.flatten(0x08000100, 0x08000120), counting(0x20, 0xA0));
    EXPECT_EQ(image.entry, 0x080000C1u);
}

TEST(Elf, AllClassesAndByteOrders) {
    const Image reference = parse_elf(firmware_with_data_in_ram(false, false).build());
    for (bool is64 : {false, true})
        for (bool big_endian : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "is64 " << is64 << " big endian " << big_endian);
            const Image image = parse_elf(firmware_with_data_in_ram(is64, big_endian).build());
            EXPECT_EQ(image.runs(), reference.runs());
            EXPECT_EQ(image.entry, 0x080000C1u);
        }
}

TEST(Elf, BssIsNotLoaded) {
    ElfBuilder builder;
    builder.segments = {
        {0x1000, 0x1000, counting(16), 64},  // .data followed by .bss in one segment
        {0x2000, 0x2000, {}, 0x400},         // .bss alone: p_filesz 0
    };
    const Image image = parse_elf(builder.build());
    EXPECT_EQ(image.describe_ranges(), "0x00001000-0x0000100F (16 bytes)");
    EXPECT_FALSE(image.entry) << "e_entry 0 means no entry point";
}

TEST(Elf, OnlyLoadSegmentsCount) {
    ElfBuilder builder;
    builder.segments = {{0, 0x3000, counting(8), 0, kPtNote}, {0, 0x1000, counting(8)}};
    EXPECT_EQ(parse_elf(builder.build()).describe_ranges(), "0x00001000-0x00001007 (8 bytes)");
}

TEST(Elf, ReadsAvrGccOutput) {
    const Bytes elf = read_fixture("blink.elf");
    const Bytes bin = read_fixture("blink.bin");
    const Image image = parse_elf(elf, "blink.elf");
    // .data (VMA 0x800100) sits at its LMA 0xDA, right after .text: exactly what objcopy -O binary gives.
    ASSERT_EQ(image.runs().size(), 1u);
    EXPECT_EQ(image.lowest(), 0u);
    EXPECT_EQ(image.runs().begin()->second, bin);
    EXPECT_FALSE(image.entry);
}

TEST(Elf, ProgramHeaderTableOutsideTheFile) {
    ElfBuilder builder = firmware_with_data_in_ram(false, false);
    Bytes elf = builder.build();  // 52 + 2 * 32 + 0x120 = 0x194 bytes
    ASSERT_EQ(elf.size(), 0x194u);
    builder.put(elf, builder.phoff_field(), 0x16C, 4);
    EXPECT_EQ(elf_error(elf),
              "x.elf: offset 0x1C: the program header table points outside the file "
              "(offset 0x16C + 2 * 32 > size 0x194)");

    ElfBuilder builder64 = firmware_with_data_in_ram(true, false);
    Bytes elf64 = builder64.build();
    builder64.put(elf64, builder64.phoff_field(), 0xFFFFFFFFFFFFFFF0, 8);  // would wrap when added
    EXPECT_EQ(elf_error(elf64).rfind("x.elf: offset 0x20: the program header table points outside the file", 0), 0u);
}

TEST(Elf, SegmentPastTheEndOfTheFile) {
    ElfBuilder builder = firmware_with_data_in_ram(false, false);
    Bytes elf = builder.build();
    builder.put(elf, builder.p_offset_field(1), 0x190, 4);
    EXPECT_EQ(elf_error(elf),
              "x.elf: offset 0x54: program header 1 points outside the file (offset 0x190 + 0x20 > size 0x194)");
    elf.resize(0x180);  // the file cut short in the middle of segment 1
    builder.put(elf, builder.p_offset_field(1), 0x174, 4);
    EXPECT_EQ(elf_error(elf),
              "x.elf: offset 0x54: program header 1 points outside the file (offset 0x174 + 0x20 > size 0x180)");
}

TEST(Elf, HugeFileSizeFailsTheBoundsCheckBeforeAnyAllocation) {
    ElfBuilder builder = firmware_with_data_in_ram(false, false);
    Bytes elf = builder.build();
    builder.put(elf, builder.p_filesz_field(0), 0xFFFFFFFF, 4);
    builder.put(elf, builder.p_memsz_field(0), 0xFFFFFFFF, 4);
    EXPECT_EQ(elf_error(elf),
              "x.elf: offset 0x34: program header 0 points outside the file (offset 0x74 + 0xFFFFFFFF > size 0x194)");

    ElfBuilder builder64 = firmware_with_data_in_ram(true, true);
    Bytes elf64 = builder64.build();
    builder64.put(elf64, builder64.p_filesz_field(0), 0xFFFFFFFFFFFFFF00, 8);  // offset + size would wrap
    builder64.put(elf64, builder64.p_memsz_field(0), 0xFFFFFFFFFFFFFF00, 8);
    EXPECT_EQ(elf_error(elf64).rfind("x.elf: offset 0x40: program header 0 points outside the file", 0), 0u);
}

TEST(Elf, FileSizeLargerThanMemorySize) {
    ElfBuilder builder = firmware_with_data_in_ram(false, false);
    Bytes elf = builder.build();
    builder.put(elf, builder.p_memsz_field(1), 0x10, 4);
    EXPECT_EQ(elf_error(elf),
              "x.elf: offset 0x54: program header 1 has a file size 0x20 larger than its memory size 0x10");
}

TEST(Elf, AddressesMustFitIn32Bits) {
    ElfBuilder builder = firmware_with_data_in_ram(true, false);
    Bytes elf = builder.build();
    builder.put(elf, builder.p_paddr_field(1), 0x100000000, 8);
    EXPECT_EQ(elf_error(elf),
              "x.elf: offset 0x78: program header 1 loads at physical address 0x100000000 + 0x20, beyond the 32-bit "
              "address space");
    builder.put(elf, builder.p_paddr_field(1), 0xFFFFFFF0, 8);  // starts inside, ends outside
    EXPECT_NE(elf_error(elf).find("0xFFFFFFF0 + 0x20, beyond"), std::string::npos);

    builder.entry = 0x100000000;
    EXPECT_EQ(elf_error(builder.build()),
              "x.elf: offset 0x18: entry point 0x100000000 is beyond the 32-bit address space");
}

TEST(Elf, OverlappingSegments) {
    ElfBuilder builder;
    builder.segments = {{0, 0x1000, counting(16)}, {0, 0x1008, counting(16)}};
    EXPECT_EQ(elf_error(builder.build()),
              "x.elf: offset 0x54: program header 1: data at 0x00001008 overlaps data already at 0x00001008");
}

TEST(Elf, BrokenIdentification) {
    const Bytes elf = firmware_with_data_in_ram(false, false).build();
    EXPECT_EQ(elf_error(Bytes(elf.begin(), elf.begin() + 10)),
              "x.elf: offset 0x0: not an ELF file (no 7F 'E' 'L' 'F' magic)");
    EXPECT_EQ(elf_error(Bytes(elf.begin(), elf.begin() + 40)),
              "x.elf: offset 0x0: file too short for an ELF32 header (40 bytes, needs 52)");
    Bytes damaged = elf;
    damaged[1] = 'X';
    EXPECT_EQ(elf_error(damaged), "x.elf: offset 0x0: not an ELF file (no 7F 'E' 'L' 'F' magic)");
    damaged = elf;
    damaged[4] = 3;
    EXPECT_EQ(elf_error(damaged), "x.elf: offset 0x4: unknown ELF class 3 (1 is 32-bit, 2 is 64-bit)");
    damaged = elf;
    damaged[5] = 0;
    EXPECT_EQ(elf_error(damaged), "x.elf: offset 0x5: unknown data encoding 0 (1 is little endian, 2 is big endian)");
    damaged = elf;
    damaged[6] = 2;
    EXPECT_EQ(elf_error(damaged), "x.elf: offset 0x6: ELF version 2, expected 1");
}

TEST(Elf, NotALinkedProgram) {
    ElfBuilder builder = firmware_with_data_in_ram(false, false);
    builder.type = 1;
    EXPECT_EQ(elf_error(builder.build()),
              "x.elf: offset 0x10: a relocatable object file (ET_REL), not a linked program");
    builder.type = 4;
    EXPECT_EQ(elf_error(builder.build()), "x.elf: offset 0x10: ELF type 4 is not a linked program");
    builder.type = 3;  // ET_DYN (position-independent executable) is fine
    EXPECT_EQ(parse_elf(builder.build()).total_bytes(), 0x120u);
}

TEST(Elf, ProgramHeaderCountAndSize) {
    ElfBuilder builder = firmware_with_data_in_ram(false, false);
    Bytes elf = builder.build();
    builder.put(elf, builder.phnum_field(), 0, 2);
    EXPECT_EQ(elf_error(elf), "x.elf: offset 0x2C: no program headers: nothing to load");
    builder.put(elf, builder.phnum_field(), 0xFFFF, 2);
    EXPECT_EQ(elf_error(elf), "x.elf: offset 0x2C: more than 65534 program headers (PN_XNUM) is not supported");
    builder.put(elf, builder.phnum_field(), 2, 2);
    builder.put(elf, builder.phentsize_field(), 16, 2);
    EXPECT_EQ(elf_error(elf), "x.elf: offset 0x2A: program header size 16, an ELF32 program header needs 32");
}

TEST(Elf, NothingToLoad) {
    ElfBuilder builder;
    builder.segments = {{0x2000, 0x2000, {}, 0x400}};
    EXPECT_EQ(elf_error(builder.build()), "x.elf: no PT_LOAD segment with file contents: nothing to flash");
}

TEST(Elf, SniffsMagicOnly) {
    const auto sniff = handler(Format::Elf).sniff;
    EXPECT_TRUE(sniff(firmware_with_data_in_ram(true, true).build()));
    EXPECT_FALSE(sniff(Bytes{0x7F, 'E', 'L'}));
    EXPECT_FALSE(sniff(Bytes{':', '0', '0'}));
    EXPECT_EQ(handler(Format::Elf).write, nullptr);
}
