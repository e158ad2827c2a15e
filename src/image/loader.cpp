#include "image/loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "core/error.hpp"

namespace mcuflash::image {

using core::Error;
using core::ErrorKind;

namespace {

std::string lower_case(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Whether the handler's space-separated extension list holds `extension` (".hex").
bool lists_extension(const FormatHandler& handler, std::string_view extension) {
    std::string_view list = handler.extensions;
    while (!list.empty()) {
        const size_t space = list.find(' ');
        if (list.substr(0, space) == extension) return true;
        list.remove_prefix(space == std::string_view::npos ? list.size() : space + 1);
    }
    return false;
}


std::string known_names() {
    std::string names;
    for (const auto& handler : formats()) names += fmt::format("{}{}", names.empty() ? "" : ", ", handler.name);
    return names;
}

std::string absurd_size(const std::string& path, uint64_t size, bool at_least) {
    return fmt::format("{}: {}{} bytes is an absurd size for a firmware image (the limit is {} MiB)", path,
                       at_least ? "more than " : "", size, kMaxFileSize >> 20);
}

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

std::vector<uint8_t> read_whole_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code error;
    const auto status = fs::status(path, error);
    if (error) throw Error(ErrorKind::BadInput, fmt::format("cannot read {}: {}", path, error.message()));
    // Only regular files: a FIFO with no writer would wait for ever, a device never ends.
    if (fs::is_directory(status))
        throw Error(ErrorKind::BadInput, fmt::format("cannot read {}: it is a directory", path));
    if (!fs::is_regular_file(status))
        throw Error(ErrorKind::BadInput,
                    fmt::format("cannot read {}: it is not a regular file (a pipe, a device or a socket)", path),
                    "save the image to a file first");
    const uint64_t size = fs::file_size(path, error);
    if (!error && size > kMaxFileSize) throw Error(ErrorKind::BadInput, absurd_size(path, size, false));

    File file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) {
        const int code = errno;
        throw Error(code == EACCES ? ErrorKind::Permission : ErrorKind::BadInput,
                    fmt::format("cannot open {}: {}", path, std::strerror(code)));
    }
    std::vector<uint8_t> content;
    uint8_t chunk[64 * 1024];
    while (size_t got = std::fread(chunk, 1, sizeof chunk, file.get())) {
        if (content.size() + got > kMaxFileSize)
            throw Error(ErrorKind::BadInput, absurd_size(path, kMaxFileSize, true));
        content.insert(content.end(), chunk, chunk + got);
    }
    if (std::ferror(file.get()))
        throw Error(ErrorKind::BadInput, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    return content;
}

}  // namespace

Format detect_format(std::span<const uint8_t> content, const std::string& filename) {
    for (const auto& handler : formats())
        if (handler.sniff && handler.sniff(content)) return handler.id;
    return format_with_extension(filename).value_or(Format::Binary);
}

Image parse_content(std::span<const uint8_t> content, const LoadOptions& options, const std::string& filename) {
    if (content.size() > kMaxFileSize) throw Error(ErrorKind::BadInput, absurd_size(filename, content.size(), false));
    const Format format = options.format ? *options.format : detect_format(content, filename);
    const FormatHandler& chosen = handler(format);
    if (options.base_address && format != Format::Binary)
        throw Error(ErrorKind::Usage,
                    fmt::format("{} is {}, which carries its own addresses: a base address applies to raw binary "
                                "files only",
                                filename, chosen.title),
                    "leave out the base address, or give the format as bin if the file really is raw binary");

    Image image = chosen.parse(content, ParseOptions{options.base_address}, filename);
    if (image.empty())
        throw Error(ErrorKind::BadInput, fmt::format("{}: the {} file holds no data to flash", filename, chosen.title));
    image.source_format = format;
    return image;
}

Image load_file(const std::string& path, const LoadOptions& options) {
    const std::vector<uint8_t> content = read_whole_file(path);
    return parse_content(content, options, path);
}

Format format_from_name(std::string_view name) {
    const std::string wanted = lower_case(name);
    for (const auto& handler : formats())
        if (wanted == handler.name || lists_extension(handler, "." + wanted)) return handler.id;
    throw Error(ErrorKind::Usage, fmt::format("unknown image format '{}' (known: {})", name, known_names()));
}

std::optional<Format> format_with_extension(const std::string& path) {
    const std::string extension = lower_case(std::filesystem::path(path).extension().string());
    if (extension.empty()) return std::nullopt;
    for (const auto& handler : formats())
        if (lists_extension(handler, extension)) return handler.id;
    return std::nullopt;
}

Format format_for_extension(const std::string& path) {
    if (auto format = format_with_extension(path)) return *format;
    throw Error(ErrorKind::Usage, fmt::format("cannot tell the image format of {} from its extension", path),
                fmt::format("name the format ({})", known_names()));
}

void write_image(const Image& image, std::ostream& out, Format format) {
    const FormatHandler& chosen = handler(format);
    if (!chosen.write) throw Error(ErrorKind::Usage, fmt::format("mcuflash cannot write {} files", chosen.title));
    chosen.write(image, out);
}

void save_file(const Image& image, const std::string& path, Format format) {
    std::ostringstream text;  // fully formed before the file is touched
    write_image(image, text, format);
    const std::string bytes = std::move(text).str();

    File file(std::fopen(path.c_str(), "wb"), &std::fclose);
    const auto fail = [&](int code) {
        throw Error(code == EACCES ? ErrorKind::Permission : ErrorKind::Io,
                    fmt::format("cannot write {}: {}", path, std::strerror(code)));
    };
    if (!file) fail(errno);
    if (std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) fail(errno);
    if (std::fclose(file.release()) != 0) fail(errno);
}

}  // namespace mcuflash::image
