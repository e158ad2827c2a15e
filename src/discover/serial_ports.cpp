#include "discover/serial_ports.hpp"

#include <algorithm>
#include <cctype>
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
        if (!is_settled_port_name(entry.path().string())) continue;
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

PortIdentity identify_port(const std::string& path) {
    const std::string name = fs::path(path).filename().string();
    PortIdentity id;
    for (auto [prefix, kind] : {std::pair{"usb-Klipper_", PortIdentity::Kind::Klipper},
                                std::pair{"usb-Kalico_", PortIdentity::Kind::Klipper},
                                std::pair{"usb-katapult_", PortIdentity::Kind::Katapult},
                                std::pair{"usb-CanBoot_", PortIdentity::Kind::Katapult}}) {
        if (name.rfind(prefix, 0) != 0) continue;
        id.kind = kind;
        const std::string rest = name.substr(std::char_traits<char>::length(prefix));
        id.mcu = rest.substr(0, rest.find('_'));
    }
    return id;
}

bool is_settled_port_name(const std::string& path) {
    const std::string name = fs::path(path).filename().string();
    return !name.empty() && name[0] != '.';
}

std::vector<std::string> port_holders(const std::string& node, const std::string& proc_root) {
    std::vector<std::string> holders;
    std::error_code ec;
    const auto target = fs::canonical(node, ec);
    if (ec) return holders;
    for (auto& process : fs::directory_iterator(proc_root, ec)) {
        const std::string pid = process.path().filename().string();
        if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
        std::error_code fd_ec;
        for (auto& fd : fs::directory_iterator(process.path() / "fd", fd_ec)) {
            std::error_code link_ec;
            if (fs::read_symlink(fd.path(), link_ec) != target) continue;
            std::ifstream comm(process.path() / "comm");
            std::string command;
            std::getline(comm, command);
            holders.push_back(command + " (pid " + pid + ")");
            break;
        }
    }
    return holders;
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
