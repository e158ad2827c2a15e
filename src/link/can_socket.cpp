#include "link/can_socket.hpp"

#include <fmt/format.h>
#include <linux/can.h>
#include <linux/can/raw.h>
#include <net/if_arp.h>  // ARPHRD_CAN
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace mcuflash::link {

using core::Error;
using core::ErrorKind;

CanFrame CanFrame::with(uint32_t id, std::span<const uint8_t> bytes) {
    if (id > kMaxStandardCanId) throw std::invalid_argument(fmt::format("CAN id {:#x} is not an 11-bit id", id));
    if (bytes.size() > kCanFrameBytes) throw std::invalid_argument("a classic CAN frame carries at most 8 bytes");
    CanFrame frame;
    frame.id = id;
    frame.length = static_cast<uint8_t>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), frame.data.begin());
    return frame;
}

std::vector<CanFrame> split_into_frames(uint32_t id, std::span<const uint8_t> bytes) {
    std::vector<CanFrame> frames;
    for (size_t at = 0; at < bytes.size(); at += kCanFrameBytes)
        frames.push_back(CanFrame::with(id, bytes.subspan(at, std::min(kCanFrameBytes, bytes.size() - at))));
    return frames;
}

namespace {

std::string not_there_hint(const std::string& interface) {
    return fmt::format("is the USB-to-CAN adapter or bridge board plugged in? `ip link` lists the interfaces; bring "
                       "it up at your printer's bitrate: sudo ip link set {} up type can bitrate 1000000",
                       interface);
}

}  // namespace

CanSocket::CanSocket(std::string interface) : interface_(std::move(interface)) {
    if (interface_.empty() || interface_.size() >= IFNAMSIZ)
        throw Error(ErrorKind::Usage, fmt::format("'{}' is no network interface name (like can0)", interface_));
    fd_ = ::socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
    if (fd_ < 0) {
        int err = errno;
        if (err == EAFNOSUPPORT || err == EPROTONOSUPPORT)
            throw Error(ErrorKind::NotFound, "this computer's kernel has no CAN support (SocketCAN)",
                        "load it with `sudo modprobe can-raw`; Raspberry Pi OS and the usual Klipper host images "
                        "have it");
        throw Error(ErrorKind::Io, fmt::format("cannot open a CAN socket: {}", std::strerror(err)));
    }
    // Everything below throws: the descriptor must not leak.
    auto fail = [this](ErrorKind kind, std::string message, std::string hint = {}) {
        ::close(fd_);
        fd_ = -1;
        throw Error(kind, std::move(message), std::move(hint));
    };
    ifreq request{};
    std::strncpy(request.ifr_name, interface_.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd_, SIOCGIFINDEX, &request) != 0)
        fail(ErrorKind::NotFound, fmt::format("there is no network interface named {} on this computer", interface_),
             not_there_hint(interface_));
    const int index = request.ifr_ifindex;
    if (::ioctl(fd_, SIOCGIFHWADDR, &request) == 0 && request.ifr_hwaddr.sa_family != ARPHRD_CAN)
        fail(ErrorKind::Usage, fmt::format("{} is a network interface, but not a CAN one", interface_),
             "give the CAN interface (can0; `ip -details link show type can` lists them)");
    if (::ioctl(fd_, SIOCGIFFLAGS, &request) == 0 && !(request.ifr_flags & IFF_UP))
        fail(ErrorKind::NotFound, fmt::format("the CAN interface {} is down", interface_),
             fmt::format("bring it up at your printer's bitrate: sudo ip link set {} up type can bitrate 1000000 (or "
                         "configure it in /etc/network/interfaces.d/{} as Klipper's CANBUS guide says)",
                         interface_, interface_));
    sockaddr_can address{};
    address.can_family = AF_CAN;
    address.can_ifindex = index;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        fail(ErrorKind::Io, fmt::format("cannot bind a CAN socket to {}: {}", interface_, std::strerror(errno)));
    take_only({});
}

CanSocket::~CanSocket() {
    if (fd_ >= 0) ::close(fd_);
}

void CanSocket::take_only(std::vector<uint32_t> ids) {
    // Standard data frames only: extended and remote frames never match.
    const canid_t mask = CAN_SFF_MASK | CAN_EFF_FLAG | CAN_RTR_FLAG;
    std::vector<can_filter> filters;
    for (uint32_t id : ids) filters.push_back({static_cast<canid_t>(id), mask});
    if (filters.empty()) filters.push_back({0, CAN_EFF_FLAG | CAN_RTR_FLAG});
    if (::setsockopt(fd_, SOL_CAN_RAW, CAN_RAW_FILTER, filters.data(),
                     static_cast<socklen_t>(filters.size() * sizeof(can_filter))) != 0)
        throw Error(ErrorKind::Io, fmt::format("cannot set CAN receive filters on {}: {}", interface_, std::strerror(errno)));
}

void CanSocket::send(const CanFrame& frame) {
    can_frame raw{};
    raw.can_id = frame.id;
    raw.can_dlc = frame.length;
    std::memcpy(raw.data, frame.data.data(), frame.length);
    const auto deadline = core::Deadline::after_ms(1000);
    for (;;) {
        ssize_t n = ::write(fd_, &raw, sizeof raw);
        if (n == static_cast<ssize_t>(sizeof raw)) return;
        const int err = n < 0 ? errno : EIO;
        if (err == EINTR) continue;
        if (err == ENOBUFS || err == EAGAIN) {
            // The transmit queue is full: frames wait for the bus. A queue that never drains has no node
            // acknowledging them.
            if (deadline.expired())
                throw Error(ErrorKind::Io, fmt::format("the CAN bus on {} takes no frames (its queue stays full)", interface_),
                            "nothing on the bus acknowledges frames: check that the board is powered, CAN-H and CAN-L "
                            "are not swapped, the bus has its two 120 ohm terminations, and every node uses the same "
                            "bitrate (`ip -details -statistics link show " + interface_ + "` shows bus errors)");
            core::throw_if_interrupted();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            continue;
        }
        if (err == ENETDOWN || err == ENXIO || err == ENODEV)
            throw Error(ErrorKind::NotFound, fmt::format("the CAN interface {} went down or away", interface_),
                        not_there_hint(interface_));
        throw Error(ErrorKind::Io, fmt::format("sending a CAN frame on {} failed: {}", interface_, std::strerror(err)));
    }
}

std::optional<CanFrame> CanSocket::receive(const core::Deadline& deadline) {
    for (;;) {
        can_frame raw{};
        ssize_t n = ::read(fd_, &raw, sizeof raw);
        if (n == static_cast<ssize_t>(sizeof raw)) {
            if (raw.can_id & (CAN_ERR_FLAG | CAN_EFF_FLAG | CAN_RTR_FLAG)) continue;  // not a standard data frame
            CanFrame frame;
            frame.id = raw.can_id & CAN_SFF_MASK;
            frame.length = std::min<uint8_t>(raw.can_dlc, kCanFrameBytes);
            std::memcpy(frame.data.data(), raw.data, frame.length);
            return frame;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            const int err = errno;
            if (err == ENETDOWN || err == ENXIO || err == ENODEV)
                throw Error(ErrorKind::NotFound, fmt::format("the CAN interface {} went down or away", interface_),
                            not_there_hint(interface_));
            throw Error(ErrorKind::Io, fmt::format("reading from the CAN interface {} failed: {}", interface_,
                                                   std::strerror(err)));
        }
        const long wait = deadline.remaining_ms();
        if (wait <= 0) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::min<long>(wait, 1000))) < 0 && errno != EINTR)
            throw Error(ErrorKind::Io, fmt::format("poll on the CAN interface {} failed: {}", interface_, std::strerror(errno)));
    }
}

}  // namespace mcuflash::link
