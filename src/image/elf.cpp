// ELF (System V ABI, "Object Files" chapter): the PT_LOAD segments at their physical addresses (LMA),
// which is where a linker script puts initialised data and code in flash.
#include <fmt/format.h>

#include "image/block_list.hpp"
#include "image/byte_order.hpp"
#include "image/handlers.hpp"
#include "image/parse_error.hpp"

namespace mcuflash::image {

namespace {

constexpr uint8_t kMagic[] = {0x7F, 'E', 'L', 'F'};
constexpr size_t kIdentSize = 16;
constexpr size_t kClassOffset = 4, kDataOffset = 5, kVersionOffset = 6;
constexpr size_t kTypeOffset = 16;
constexpr uint16_t kTypeExecutable = 2, kTypeShared = 3;
constexpr uint16_t kExtendedPhnum = 0xFFFF;  // PN_XNUM: the real count is in section header 0
constexpr uint32_t kLoadSegment = 1;         // PT_LOAD
constexpr uint64_t kAddressSpace = uint64_t{1} << 32;

struct Field {
    size_t offset;
    size_t width;
};

// Where ELF32 and ELF64 keep the fields we need; they differ in widths and positions only.
struct Layout {
    const char* name;
    size_t header_size;
    Field entry;
    Field phoff;
    Field phentsize;
    Field phnum;
    size_t program_header_size;
    Field p_type;
    Field p_offset;
    Field p_paddr;
    Field p_filesz;
    Field p_memsz;
};

constexpr Layout kElf32 = {
    .name = "ELF32",
    .header_size = 52,
    .entry = {24, 4},
    .phoff = {28, 4},
    .phentsize = {42, 2},
    .phnum = {44, 2},
    .program_header_size = 32,
    .p_type = {0, 4},
    .p_offset = {4, 4},
    .p_paddr = {12, 4},
    .p_filesz = {16, 4},
    .p_memsz = {20, 4},
};
constexpr Layout kElf64 = {
    .name = "ELF64",
    .header_size = 64,
    .entry = {24, 8},
    .phoff = {32, 8},
    .phentsize = {54, 2},
    .phnum = {56, 2},
    .program_header_size = 56,
    .p_type = {0, 4},
    .p_offset = {8, 8},
    .p_paddr = {24, 8},
    .p_filesz = {32, 8},
    .p_memsz = {40, 8},
};

class ElfReader {
public:
    ElfReader(std::span<const uint8_t> file, bool big_endian) : file_(file), big_endian_(big_endian) {}

    // Callers check bounds first.
    uint64_t at(uint64_t base, Field field) const {
        const auto bytes = file_.subspan(base + field.offset, field.width);
        return big_endian_ ? read_big_endian(bytes) : read_little_endian(bytes);
    }

private:
    std::span<const uint8_t> file_;
    bool big_endian_;
};

// Whether [offset, offset + length) lies inside a file of `size` bytes, without overflowing.
bool inside(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

Image parse_elf(std::span<const uint8_t> file, const ParseOptions&, const std::string& filename) {
    const uint64_t size = file.size();
    if (size < kIdentSize || !std::equal(std::begin(kMagic), std::end(kMagic), file.begin()))
        fail_at_offset(filename, 0, "not an ELF file (no 7F 'E' 'L' 'F' magic)");
    const uint8_t elf_class = file[kClassOffset];
    if (elf_class != 1 && elf_class != 2)
        fail_at_offset(filename, kClassOffset,
                       fmt::format("unknown ELF class {} (1 is 32-bit, 2 is 64-bit)", elf_class));
    const uint8_t encoding = file[kDataOffset];
    if (encoding != 1 && encoding != 2)
        fail_at_offset(filename, kDataOffset,
                       fmt::format("unknown data encoding {} (1 is little endian, 2 is big endian)", encoding));
    if (file[kVersionOffset] != 1)
        fail_at_offset(filename, kVersionOffset, fmt::format("ELF version {}, expected 1", file[kVersionOffset]));
    const Layout& layout = elf_class == 1 ? kElf32 : kElf64;
    if (size < layout.header_size)
        fail_at_offset(
            filename, 0,
            fmt::format("file too short for an {} header ({} bytes, needs {})", layout.name, size, layout.header_size));

    const ElfReader elf(file, encoding == 2);
    const uint64_t type = elf.at(0, {kTypeOffset, 2});
    if (type != kTypeExecutable && type != kTypeShared)
        fail_at_offset(filename, kTypeOffset,
                       type == 1 ? std::string("a relocatable object file (ET_REL), not a linked program")
                                 : fmt::format("ELF type {} is not a linked program", type));

    const uint64_t phnum = elf.at(0, layout.phnum);
    const uint64_t phentsize = elf.at(0, layout.phentsize);
    const uint64_t phoff = elf.at(0, layout.phoff);
    if (phnum == 0) fail_at_offset(filename, layout.phnum.offset, "no program headers: nothing to load");
    if (phnum == kExtendedPhnum)
        fail_at_offset(filename, layout.phnum.offset, "more than 65534 program headers (PN_XNUM) is not supported");
    if (phentsize < layout.program_header_size)
        fail_at_offset(filename, layout.phentsize.offset,
                       fmt::format("program header size {}, an {} program header needs {}", phentsize, layout.name,
                                   layout.program_header_size));
    if (!inside(phoff, phnum * phentsize, size))
        fail_at_offset(filename, layout.phoff.offset,
                       fmt::format("the program header table points outside the file (offset 0x{:X} + {} * {} > "
                                   "size 0x{:X})",
                                   phoff, phnum, phentsize, size));

    // A block's `where` is its program header's file offset.
    BlockList blocks([&](uint64_t header) {
        return fmt::format("{}: program header {}", offset_origin(filename, header), (header - phoff) / phentsize);
    });
    for (uint64_t index = 0; index < phnum; ++index) {
        const uint64_t header = phoff + index * phentsize;
        if (elf.at(header, layout.p_type) != kLoadSegment) continue;
        const uint64_t offset = elf.at(header, layout.p_offset);
        const uint64_t filesz = elf.at(header, layout.p_filesz);
        const uint64_t memsz = elf.at(header, layout.p_memsz);
        const uint64_t paddr = elf.at(header, layout.p_paddr);
        if (filesz == 0) continue;  // only zero-initialised memory (.bss): nothing to flash
        const auto fail = [&](std::string_view problem) {
            fail_at_offset(filename, header, fmt::format("program header {} {}", index, problem));
        };
        if (filesz > memsz)
            fail(fmt::format("has a file size 0x{:X} larger than its memory size 0x{:X}", filesz, memsz));
        if (!inside(offset, filesz, size))
            fail(fmt::format("points outside the file (offset 0x{:X} + 0x{:X} > size 0x{:X})", offset, filesz, size));
        if (!inside(paddr, filesz, kAddressSpace))
            fail(fmt::format("loads at physical address 0x{:X} + 0x{:X}, beyond the 32-bit address space", paddr,
                             filesz));
        blocks.add(static_cast<uint32_t>(paddr), file.subspan(offset, filesz), header);
    }
    Image image;
    blocks.add_to(image);
    if (image.empty()) fail_in_file(filename, "no PT_LOAD segment with file contents: nothing to flash");

    const uint64_t entry = elf.at(0, layout.entry);
    if (entry >= kAddressSpace)
        fail_at_offset(filename, layout.entry.offset,
                       fmt::format("entry point 0x{:X} is beyond the 32-bit address space", entry));
    if (entry != 0) image.entry = static_cast<uint32_t>(entry);  // 0 means "no entry point" in ELF
    return image;
}

bool sniff_elf(std::span<const uint8_t> content) {
    return content.size() >= std::size(kMagic) && std::equal(std::begin(kMagic), std::end(kMagic), content.begin());
}

}  // namespace

FormatHandler elf_handler() {
    return {
        .id = Format::Elf,
        .name = "elf",
        .title = "ELF",
        .extensions = ".elf .axf",
        .sniff = sniff_elf,
        .parse = parse_elf,
        .write = nullptr,  // read-only
    };
}

}  // namespace mcuflash::image
