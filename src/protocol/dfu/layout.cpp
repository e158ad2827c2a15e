#include "protocol/dfu/layout.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace mcuflash::protocol::dfu {

namespace {

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t start = 0;
    while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
    return s.substr(start);
}

// "04*016Kg" -> count, size, type; false on anything else.
bool parse_segment(const std::string& text, LayoutSegment& out) {
    const char* p = text.c_str();
    char* end = nullptr;
    unsigned long long count = std::strtoull(p, &end, 10);
    if (end == p || *end != '*' || count > 0xFFFFFFFFull) return false;
    p = end + 1;
    unsigned long long size = std::strtoull(p, &end, 10);
    if (end == p || size > 0xFFFFFFFFull) return false;
    p = end;
    while (*p == ' ') ++p;
    if (*p == 'K') size *= 1024, ++p;  // no wrap: size is at most 32 bits here
    else if (*p == 'M') size *= 1024 * 1024, ++p;
    else if (*p == 'B') ++p;
    while (*p == ' ') ++p;
    if (!std::isalpha(static_cast<unsigned char>(*p))) return false;
    int type = (*p - 'a') + 1;
    if (std::isupper(static_cast<unsigned char>(*p))) type = (*p - 'A') + 1;
    if (count == 0 || size == 0 || size > 0xFFFFFFFFul) return false;
    out.count = static_cast<uint32_t>(count);
    out.unit_size = static_cast<uint32_t>(size);
    out.readable = type & 1;
    out.erasable = type & 2;
    out.writable = type & 4;
    return true;
}

}  // namespace

const LayoutSegment* MemoryLayout::segment_at(uint32_t address) const {
    for (const auto& s : segments)
        if (address >= s.address && address < s.end()) return &s;
    return nullptr;
}

uint64_t MemoryLayout::size() const {
    uint64_t total = 0;
    for (const auto& s : segments) total += uint64_t(s.unit_size) * s.count;
    return total;
}

std::optional<MemoryLayout> parse_layout(const std::string& text) {
    if (text.empty() || text[0] != '@') return std::nullopt;
    std::vector<std::string> parts;
    size_t start = 1;
    for (size_t slash; (slash = text.find('/', start)) != std::string::npos; start = slash + 1)
        parts.push_back(text.substr(start, slash - start));
    parts.push_back(text.substr(start));
    if (parts.size() < 3 || (parts.size() - 1) % 2 != 0) return std::nullopt;
    MemoryLayout layout;
    layout.name = trim(parts[0]);
    for (size_t i = 1; i + 1 < parts.size(); i += 2) {
        char* end = nullptr;
        std::string address_text = trim(parts[i]);
        unsigned long long address = std::strtoull(address_text.c_str(), &end, 0);
        if (end == address_text.c_str() || *end != '\0' || address > 0xFFFFFFFFull) return std::nullopt;
        uint64_t at = address;
        std::string list = parts[i + 1];
        size_t from = 0;
        while (from <= list.size()) {
            size_t comma = list.find(',', from);
            std::string item = trim(list.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
            LayoutSegment segment;
            if (!parse_segment(item, segment)) return std::nullopt;
            segment.address = static_cast<uint32_t>(at);
            at = segment.end();
            if (at > 0x100000000ull) return std::nullopt;
            layout.segments.push_back(segment);
            if (comma == std::string::npos) break;
            from = comma + 1;
        }
    }
    // Groups may come in any order; segment_at and the client want them by address, and apart.
    std::sort(layout.segments.begin(), layout.segments.end(),
              [](const LayoutSegment& a, const LayoutSegment& b) { return a.address < b.address; });
    for (size_t i = 1; i < layout.segments.size(); ++i)
        if (layout.segments[i].address < layout.segments[i - 1].end()) return std::nullopt;
    return layout;
}

}  // namespace mcuflash::protocol::dfu
