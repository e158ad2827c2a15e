#include "discover/serial_ports.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

namespace mcuflash::discover {

namespace fs = std::filesystem;

std::vector<SerialCandidate> serial_candidates(const std::string& dev_root) {
    std::vector<SerialCandidate> out;
    std::set<std::string> seen;
    std::error_code ec;
    // Prefer the by-id names: they survive re-plugging and say what the adapter is.
    for (auto& entry : fs::directory_iterator(dev_root + "/serial/by-id", ec)) {
        auto resolved = fs::canonical(entry.path(), ec);
        if (ec) continue;
        seen.insert(resolved.string());
        out.push_back({entry.path().string(), resolved.string()});
    }
    static const char* prefixes[] = {"ttyACM", "ttyUSB", "ttyAMA"};
    std::vector<SerialCandidate> plain;
    for (auto& entry : fs::directory_iterator(dev_root, ec)) {
        std::string name = entry.path().filename().string();
        bool match = std::any_of(std::begin(prefixes), std::end(prefixes),
                                 [&](const char* p) { return name.rfind(p, 0) == 0; });
        if (match && !seen.count(entry.path().string())) plain.push_back({entry.path().string(), entry.path().string()});
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path < b.path; });
    std::sort(plain.begin(), plain.end(), [](auto& a, auto& b) { return a.path < b.path; });
    out.insert(out.end(), plain.begin(), plain.end());
    return out;
}

bool is_raspberry_pi_mini_uart(const std::string& path, const std::string& model_file) {
    std::ifstream model(model_file);
    std::string text;
    std::getline(model, text, '\0');
    if (text.find("Raspberry Pi") == std::string::npos) return false;
    std::error_code ec;
    auto resolved = std::filesystem::weakly_canonical(path, ec);
    return (ec ? std::filesystem::path(path) : resolved).filename() == "ttyS0";
}

}  // namespace mcuflash::discover
