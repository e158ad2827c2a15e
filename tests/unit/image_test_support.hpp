#pragma once
// Helpers shared by the image format tests (image_*_test.cpp): fixtures, parsing and writing through
// the format registry, counting data, and catching the core::Error a bad input must throw.
// Each test file says `using namespace mcuflash::image::test_support;`.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "image/format.hpp"
#include "image/image.hpp"

namespace mcuflash::image::test_support {

using mcuflash::core::Error;
using mcuflash::core::ErrorKind;
using mcuflash::image::Format;
using mcuflash::image::handler;
using mcuflash::image::Image;
using mcuflash::image::ParseOptions;
using Bytes = std::vector<uint8_t>;

// tests/fixtures/image/NAME.
inline std::string fixture_path(const std::string& name) {
    // One append at a time: GCC 12 warns of a false overflow (-Warray-bounds) on `string + "..."`.
    std::string path = MCUFLASH_FIXTURES;
    path += "/image/";
    path += name;
    return path;
}

// The whole file; empty if it cannot be read.
inline Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

// The whole fixture file; a fixture that cannot be opened fails the test.
inline Bytes read_fixture(const std::string& name) {
    std::ifstream in(fixture_path(name), std::ios::binary);
    EXPECT_TRUE(in) << name;
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

// `size` bytes first, first + 1, ... (wrapping at 0xFF).
inline Bytes counting(size_t size, uint8_t first = 0) {
    Bytes bytes(size);
    std::iota(bytes.begin(), bytes.end(), first);
    return bytes;
}

// The characters of `text` as file content.
inline std::span<const uint8_t> text_bytes(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

inline Image parse_as(Format format, std::span<const uint8_t> content, const std::string& filename) {
    return handler(format).parse(content, {}, filename);
}

inline Image parse_fixture(Format format, const std::string& name) {
    return parse_as(format, read_fixture(name), name);
}

inline std::string write_as(Format format, const Image& image) {
    std::ostringstream out;
    handler(format).write(image, out);
    return out.str();
}

// Runs `action`, which must throw a core::Error, and returns a copy of it (nullopt, and a failure
// naming `subject`, if nothing was thrown).
template <typename Action>
std::optional<Error> error_thrown_by(Action&& action, std::string_view subject = {}) {
    try {
        std::forward<Action>(action)();
    } catch (const Error& error) {
        return error;
    }
    ADD_FAILURE() << "no error thrown" << (subject.empty() ? "" : ": ") << subject;
    return std::nullopt;
}

// The message of the core::Error `action` must throw, whatever its kind.
template <typename Action>
std::string message_of(Action&& action, std::string_view subject = {}) {
    const std::optional<Error> error = error_thrown_by(std::forward<Action>(action), subject);
    return error ? error->what() : std::string();
}

// The message of the core::Error of `kind` that `action` must throw.
template <typename Action>
std::string error_of(ErrorKind kind, Action&& action, std::string_view subject = {}) {
    const std::optional<Error> error = error_thrown_by(std::forward<Action>(action), subject);
    if (!error) return {};
    EXPECT_EQ(error->kind(), kind) << error->what();
    return error->what();
}

// The message of the BadInput error `action` must throw.
template <typename Action>
std::string bad_input_of(Action&& action, std::string_view subject = {}) {
    return error_of(ErrorKind::BadInput, std::forward<Action>(action), subject);
}

// The message of the BadInput error that parsing `content` as `format` must produce.
inline std::string parse_error(Format format, std::span<const uint8_t> content, const std::string& filename,
                               std::string_view subject = {}) {
    return bad_input_of([&] { parse_as(format, content, filename); }, subject);
}

}  // namespace mcuflash::image::test_support
