#include "cli/klipper_service.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "cli/child_process.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"

namespace mcuflash::cli {

using core::Error;
using core::ErrorKind;

namespace {

// Waits up to `ms` for `fd` to be ready for `events`.
bool ready(int fd, short events, int ms) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, ms) == 1;
}

}  // namespace

int moonraker_post(const std::string& url, const std::string& path, std::string* body) {
    // http://HOST[:PORT]: what Moonraker listens on (7125 by default).
    std::string rest = url.starts_with("http://") ? url.substr(7) : url;
    rest = rest.substr(0, rest.find('/'));
    std::string host = rest, port = "80";
    if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || !found) return 0;
    const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int status = 0;
    if (fd >= 0) {
        const bool connecting = ::connect(fd, found->ai_addr, found->ai_addrlen) == 0 || errno == EINPROGRESS;
        int so_error = 0;
        socklen_t length = sizeof so_error;
        if (connecting && ready(fd, POLLOUT, 2000) && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &length) == 0 &&
            so_error == 0) {
            const std::string request = fmt::format(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", path, rest);
            if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
                std::string answer;
                char chunk[2048];
                // Stopping a service takes Moonraker a moment: it answers when systemd is done.
                while (ready(fd, POLLIN, 20000)) {
                    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
                    if (n <= 0) break;
                    answer.append(chunk, static_cast<size_t>(n));
                }
                if (answer.starts_with("HTTP/1.")) status = std::atoi(answer.c_str() + 9);
                if (body) {
                    const auto start = answer.find("\r\n\r\n");
                    *body = start == std::string::npos ? "" : answer.substr(start + 4);
                }
            }
        }
        ::close(fd);
    }
    ::freeaddrinfo(found);
    return status;
}

KlipperService::KlipperService(const std::string& moonraker_url, Reporter& reporter)
    : moonraker_url_(moonraker_url), reporter_(reporter) {
    std::string body;
    const int status = moonraker_post(moonraker_url, "/machine/services/stop?service=klipper", &body);
    if (status == 200) {
        stopped_via_ = Via::Moonraker;
        reporter_.info(fmt::format("stopped Klipper through Moonraker ({}); it is started again afterwards", moonraker_url));
        return;
    }
    if (status != 0)
        throw Error(ErrorKind::Io,
                    fmt::format("Moonraker at {} refused to stop Klipper (HTTP {}): {}", moonraker_url, status,
                                body.substr(0, 200)),
                    "stop it yourself (sudo systemctl stop klipper) and run without --stop-klipper");
    std::string output;
    int code;
    try {
        code = run_to_end("systemctl", {"is-active", "--quiet", "klipper"}, output);
    } catch (const Error&) {
        code = 127;
    }
    if (code == 127)
        throw Error(ErrorKind::NotFound,
                    fmt::format("--stop-klipper: neither Moonraker (at {}) nor systemd's systemctl is there", moonraker_url),
                    "stop Klipper yourself before flashing; --moonraker URL if Moonraker listens elsewhere");
    if (code != 0) {
        reporter_.info("the klipper service is not running: nothing to stop");
        return;
    }
    output.clear();
    if (run_to_end("systemctl", {"stop", "klipper"}, output) != 0)
        throw Error(ErrorKind::Permission, fmt::format("systemctl stop klipper failed: {}", output),
                    "run mcuflash with sudo, or let Moonraker do it (--moonraker URL)");
    stopped_via_ = Via::Systemctl;
    reporter_.info("stopped the klipper service (systemctl); it is started again afterwards");
}

void KlipperService::start_again() {
    const Via via = stopped_via_;
    stopped_via_ = Via::Nothing;
    if (via == Via::Moonraker) {
        const int status = moonraker_post(moonraker_url_, "/machine/services/start?service=klipper");
        if (status == 200)
            reporter_.info("started Klipper again through Moonraker");
        else
            reporter_.warning(fmt::format("Moonraker did not start Klipper again (HTTP {}): start it from the web "
                                          "interface or with sudo systemctl start klipper",
                                          status));
    } else if (via == Via::Systemctl) {
        std::string output;
        int code = 127;
        try {
            code = run_to_end("systemctl", {"start", "klipper"}, output);
        } catch (const Error&) {
        }
        if (code == 0)
            reporter_.info("started the klipper service again");
        else
            reporter_.warning(fmt::format("systemctl start klipper failed: {}; start it yourself", output));
    }
}

KlipperService::~KlipperService() {
    try {
        start_again();
    } catch (...) {
    }
}

}  // namespace mcuflash::cli
