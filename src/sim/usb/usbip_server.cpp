#include "sim/usb/usbip_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "core/error.hpp"

namespace mcuflash::sim::usb {

using core::Error;
using core::ErrorKind;

namespace {

// Protocol constants (usbip_protocol.rst; include/uapi/linux/usbip.h).
constexpr uint16_t kUsbipVersion = 0x0111;
constexpr uint16_t kOpRequestDevlist = 0x8005, kOpReplyDevlist = 0x0005;
constexpr uint16_t kOpRequestImport = 0x8003, kOpReplyImport = 0x0003;
constexpr uint32_t kCmdSubmit = 1, kCmdUnlink = 2, kRetSubmit = 3, kRetUnlink = 4;
constexpr size_t kOpHeaderSize = 8, kBusIdSize = 32, kPathSize = 256, kUrbHeaderSize = 48;
constexpr size_t kIsoDescriptorSize = 16;
constexpr uint32_t kDirectionIn = 1;
constexpr uint32_t kSpeedFull = 2;  // enum usb_device_speed
constexpr int32_t kStatusStall = -EPIPE;
constexpr int32_t kStatusUnlinked = -ECONNRESET;  // RET_UNLINK for a transfer that was still waiting
constexpr const char* kDevicePath = "/sys/devices/mcuflash-sim/1-1";
// A hub class request SET_FEATURE(PORT_RESET): what the kernel's usbip stub takes as "reset the
// device". vhci-hcd does not send it today, but other clients may.
constexpr uint8_t kPortRequestType = 0x23, kSetFeature = 0x03;
constexpr uint16_t kPortResetFeature = 4;
constexpr uint16_t kDeviceDescriptorSize = 18;
// More than any control transfer (wLength is 16 bits) or URB a driver here would submit.
constexpr uint32_t kLargestTransfer = 1 << 20;

[[noreturn]] void fail_errno(const std::string& what) {
    throw Error(ErrorKind::Io, fmt::format("usbip server: {}: {}", what, std::strerror(errno)));
}

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
void put16(std::vector<uint8_t>& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}
void put_string(std::vector<uint8_t>& out, const std::string& text, size_t field_size) {
    size_t start = out.size();
    out.resize(start + field_size, 0);
    std::memcpy(out.data() + start, text.data(), std::min(text.size(), field_size - 1));
}

std::string describe_setup(const link::UsbSetup& s) {
    return fmt::format("{:02x} {:02x} value {:04x} index {:04x} length {}", s.request_type, s.request, s.value,
                       s.index, s.length);
}

// What OP_REP_DEVLIST and OP_REP_IMPORT say about the device (0x138 bytes), from its descriptors.
void put_device_info(std::vector<uint8_t>& out, const UsbDeviceModel& model) {
    auto device = model.device_descriptor();
    auto config = model.configuration_descriptor();
    device.resize(std::max<size_t>(device.size(), kDeviceDescriptorSize), 0);
    put_string(out, kDevicePath, kPathSize);
    put_string(out, UsbipServer::kBusId, kBusIdSize);
    put32(out, UsbipServer::kBusNumber);
    put32(out, UsbipServer::kDeviceNumber);
    put32(out, kSpeedFull);
    put16(out, static_cast<uint16_t>(device[8] | (device[9] << 8)));    // idVendor
    put16(out, static_cast<uint16_t>(device[10] | (device[11] << 8)));  // idProduct
    put16(out, static_cast<uint16_t>(device[12] | (device[13] << 8)));  // bcdDevice
    out.push_back(device[4]);                                           // class, subclass, protocol
    out.push_back(device[5]);
    out.push_back(device[6]);
    out.push_back(model.configuration());
    out.push_back(device[17]);                          // bNumConfigurations
    out.push_back(config.size() > 4 ? config[4] : 0);  // bNumInterfaces
}

// The (class, subclass, protocol) of each interface's first alternate setting, for OP_REP_DEVLIST.
std::vector<std::array<uint8_t, 3>> interface_classes(const std::vector<uint8_t>& config) {
    std::vector<std::array<uint8_t, 3>> out;
    for (size_t at = 0; at + 1 < config.size() && config[at] >= 2; at += config[at]) {
        const uint8_t* d = config.data() + at;
        if (d[1] == link::usb::kDescriptorInterface && at + 9 <= config.size() && d[3] == 0)
            out.push_back({d[5], d[6], d[7]});
    }
    return out;
}

}  // namespace

// Blocks SIGINT and SIGTERM for the life of the server and delivers them through a descriptor.
struct UsbipServer::SignalBlock {
    SignalBlock() {
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (::sigprocmask(SIG_BLOCK, &mask, &previous) != 0) fail_errno("sigprocmask");
        fd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0) fail_errno("signalfd");
    }
    ~SignalBlock() {
        ::close(fd);
        ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    }
    sigset_t mask{}, previous{};
    int fd = -1;
};

struct UsbipServer::Connection {
    int fd = -1;
    std::string peer;
    std::vector<uint8_t> input;
    bool imported = false;  // past OP_REQ_IMPORT: the stream is URBs now
    // IN transfers on bulk/interrupt endpoints the device has not answered yet (it NAKs), by seqnum:
    // the order the host submitted them in.
    struct PendingIn {
        uint8_t address;
        uint32_t length, packets;
    };
    std::map<uint32_t, PendingIn> pending_in;

    ~Connection() {
        if (fd >= 0) ::close(fd);
    }
    // Blocking in effect: replies are small, and the client reads them promptly.
    bool send(const std::vector<uint8_t>& bytes) {
        size_t done = 0;
        while (done < bytes.size()) {
            ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (n > 0) {
                done += static_cast<size_t>(n);
            } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                pollfd p{fd, POLLOUT, 0};
                ::poll(&p, 1, 100);
            } else {
                return false;
            }
        }
        return true;
    }
};

UsbipServer::UsbipServer(UsbDeviceModel& model, UsbipServerOptions options)
    : model_(&model), options_(std::move(options)) {
    if (options_.stop_on_signals) signals_ = std::make_unique<SignalBlock>();
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) fail_errno("socket");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(options_.port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        int error = errno;
        ::close(listen_fd_);
        errno = error;
        if (error == EADDRINUSE)
            throw Error(ErrorKind::Io, fmt::format("usbip server: 127.0.0.1:{} is in use", options_.port),
                        "choose another --usbip port (`ss -ltnp` shows who holds it)");
        fail_errno(fmt::format("bind 127.0.0.1:{}", options_.port));
    }
    socklen_t length = sizeof address;
    if (::listen(listen_fd_, 4) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        int error = errno;
        ::close(listen_fd_);
        errno = error;
        fail_errno("listen");
    }
    port_ = ntohs(address.sin_port);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
        ::close(listen_fd_);
        fail_errno("eventfd");
    }
}

UsbipServer::~UsbipServer() {
    connections_.clear();
    ::close(listen_fd_);
    ::close(wake_fd_);
}

void UsbipServer::request_stop() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void UsbipServer::log(const std::string& message) const {
    if (options_.log) options_.log(message);
}

void UsbipServer::run() {
    constexpr int kTickMs = 10;
    for (;;) {
        std::vector<pollfd> fds;
        fds.push_back({wake_fd_, POLLIN, 0});
        fds.push_back({signals_ ? signals_->fd : -1, POLLIN, 0});
        fds.push_back({listen_fd_, POLLIN, 0});
        for (auto& c : connections_) fds.push_back({c->fd, POLLIN, 0});
        int wait_ms = kTickMs;
        if (auto next = model().next_event()) {
            const auto until = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
            wait_ms = static_cast<int>(std::clamp<long long>(until, 0, kTickMs));
        }
        if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) fail_errno("poll");
        if (fds[0].revents & POLLIN) return;
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(signals_->fd, &info, sizeof info) > 0) log(fmt::format("signal {}: stopping", info.ssi_signo));
            return;
        }
        if (fds[2].revents & POLLIN) accept_connection();
        // Walk backwards: closing removes the entry. Entries accepted just now have no pollfd yet.
        for (size_t i = std::min(connections_.size(), fds.size() - 3); i-- > 0;) {
            if (fds[3 + i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (!serve_readable(*connections_[i])) close_connection(i, "");
            }
        }
        model().tick(Clock::now());
        for (size_t i = connections_.size(); i-- > 0;)
            if (connections_[i]->imported && !deliver_pending_in(*connections_[i])) close_connection(i, "");
        if (imported_ && !model().attached()) {
            for (size_t i = connections_.size(); i-- > 0;)
                if (connections_[i]->imported) close_connection(i, "the device left the bus");
            ++counters_.unplugs;
        }
    }
}

void UsbipServer::accept_connection() {
    sockaddr_in peer{};
    socklen_t length = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // the client gave up already
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // each reply is one small message
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    char text[INET_ADDRSTRLEN] = "?";
    ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
    c->peer = fmt::format("{}:{}", text, ntohs(peer.sin_port));
    log("connection from " + c->peer);
    connections_.push_back(std::move(c));
}

void UsbipServer::close_connection(size_t index, const std::string& why) {
    auto& c = *connections_[index];
    if (c.imported) {
        imported_ = false;
        log(fmt::format("{} detached{}", c.peer, why.empty() ? "" : ": " + why));
    }
    connections_.erase(connections_.begin() + static_cast<std::ptrdiff_t>(index));
}

bool UsbipServer::serve_readable(Connection& c) {
    uint8_t buffer[4096];
    bool peer_closed = false;
    for (;;) {
        ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
        if (n > 0) {
            c.input.insert(c.input.end(), buffer, buffer + n);
        } else if (n == 0) {
            peer_closed = true;
            break;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            return false;
        }
    }
    // Every complete message is handled, even after the peer closed: the device sees the requests
    // as it would have (no one reads the answers).
    for (;;) {
        Step step = c.imported ? handle_urb(c) : handle_operation(c);
        if (step == Step::Close) return false;
        if (step == Step::NeedMore) return !peer_closed;
    }
}

UsbipServer::Step UsbipServer::handle_operation(Connection& c) {
    if (c.input.size() < kOpHeaderSize) return Step::NeedMore;
    const uint16_t version = get16(c.input.data()), code = get16(c.input.data() + 2);
    if (code == kOpRequestDevlist) {
        c.input.erase(c.input.begin(), c.input.begin() + kOpHeaderSize);
        answer_devlist(c);
        return Step::Close;  // usbipd ends a DEVLIST connection after the reply
    }
    if (code == kOpRequestImport) {
        if (c.input.size() < kOpHeaderSize + kBusIdSize) return Step::NeedMore;
        bool ok = answer_import(c);
        c.input.erase(c.input.begin(), c.input.begin() + kOpHeaderSize + kBusIdSize);
        return ok ? Step::Consumed : Step::Close;
    }
    log(fmt::format("{}: unknown operation {:04x} (version {:04x}): closing", c.peer, code, version));
    return Step::Close;
}

void UsbipServer::answer_devlist(Connection& c) {
    std::vector<uint8_t> reply;
    put16(reply, kUsbipVersion);
    put16(reply, kOpReplyDevlist);
    put32(reply, 0);
    const bool listed = model().attached() && !imported_;
    put32(reply, listed ? 1 : 0);
    if (listed) {
        put_device_info(reply, model());
        for (const auto& klass : interface_classes(model().configuration_descriptor())) {
            reply.insert(reply.end(), klass.begin(), klass.end());
            reply.push_back(0);  // padding
        }
    }
    log(fmt::format("{}: device list ({} device{})", c.peer, listed ? 1 : 0, listed ? "" : "s"));
    c.send(reply);
}

bool UsbipServer::answer_import(Connection& c) {
    const char* requested_raw = reinterpret_cast<const char*>(c.input.data() + kOpHeaderSize);
    std::string requested(requested_raw, strnlen(requested_raw, kBusIdSize));
    std::string refusal;
    if (requested != kBusId) refusal = fmt::format("no device {} (this server exports {})", requested, kBusId);
    else if (imported_) refusal = "the device is already imported by another connection";
    else {
        // Plugging the device in resets it; a device that left the bus may come back this way.
        bus_reset("import (plug-in)");
        awaiting_enumeration_ = true;
        if (!model().attached()) refusal = "the device is not on the bus";
    }
    std::vector<uint8_t> reply;
    put16(reply, kUsbipVersion);
    put16(reply, kOpReplyImport);
    put32(reply, refusal.empty() ? 0 : 1);
    if (!refusal.empty()) {
        log(fmt::format("{}: import of {} refused: {}", c.peer, requested, refusal));
        c.send(reply);
        return false;
    }
    put_device_info(reply, model());
    if (!c.send(reply)) return false;
    c.imported = true;
    imported_ = true;
    ++counters_.imports;
    log(fmt::format("{}: imported {} ({})", c.peer, kBusId, model().describe()));
    return true;
}

UsbipServer::Step UsbipServer::handle_urb(Connection& c) {
    if (c.input.size() < kUrbHeaderSize) return Step::NeedMore;
    const uint8_t* h = c.input.data();
    const uint32_t command = get32(h), seqnum = get32(h + 4), direction = get32(h + 12), endpoint = get32(h + 16);

    if (command == kCmdUnlink) {
        // A held IN transfer is unlinked (-ECONNRESET, and it gets no RET_SUBMIT); every other submit
        // was answered before the next message was read: status 0 says it is complete already.
        const uint32_t target = get32(h + 20);
        c.input.erase(c.input.begin(), c.input.begin() + kUrbHeaderSize);
        ++counters_.unlinks;
        const bool held = c.pending_in.erase(target) > 0;
        if (options_.log_transfers) log(fmt::format("unlink of {} ({})", target, held ? "held, unlinked" : "already answered"));
        std::vector<uint8_t> reply;
        put32(reply, kRetUnlink);
        put32(reply, seqnum);
        put32(reply, 0);
        put32(reply, 0);
        put32(reply, 0);
        put32(reply, held ? static_cast<uint32_t>(kStatusUnlinked) : 0);  // status
        reply.resize(kUrbHeaderSize, 0);
        return c.send(reply) ? Step::Consumed : Step::Close;
    }
    if (command != kCmdSubmit) {
        log(fmt::format("{}: unknown URB command {}: closing", c.peer, command));
        return Step::Close;
    }

    const uint32_t buffer_length = get32(h + 24), packets = get32(h + 32);
    const bool in = direction == kDirectionIn;
    if (buffer_length > kLargestTransfer) {
        log(fmt::format("{}: submit of {} bytes: not a USB transfer (stream out of step?): closing", c.peer,
                        buffer_length));
        return Step::Close;
    }
    size_t total = kUrbHeaderSize + (in ? 0 : buffer_length);
    // Isochronous descriptors follow the data; only non-control endpoints can have them.
    if (endpoint != 0 && packets != 0 && packets != 0xFFFFFFFF) total += size_t{packets} * kIsoDescriptorSize;
    if (c.input.size() < total) return Step::NeedMore;

    link::UsbSetup setup;
    setup.request_type = h[40];
    setup.request = h[41];
    setup.value = static_cast<uint16_t>(h[42] | (h[43] << 8));  // the setup packet is little-endian (USB)
    setup.index = static_cast<uint16_t>(h[44] | (h[45] << 8));
    setup.length = static_cast<uint16_t>(h[46] | (h[47] << 8));
    std::vector<uint8_t> data_out;
    if (!in) data_out.assign(h + kUrbHeaderSize, h + kUrbHeaderSize + buffer_length);
    c.input.erase(c.input.begin(), c.input.begin() + static_cast<std::ptrdiff_t>(total));
    ++counters_.submits;

    int32_t status = 0;
    std::vector<uint8_t> data_in;
    if (endpoint != 0) {
        const auto address = static_cast<uint8_t>(endpoint | (in ? 0x80 : 0x00));
        if (!model().has_endpoint(address)) {
            status = kStatusStall;
            log(fmt::format("submit to endpoint {} {}: no such endpoint", endpoint, in ? "IN" : "OUT"));
        } else if (in) {
            // Answered when the device has something to send; until then it waits, as it would on a
            // real bus (the device NAKs), or until the host unlinks it.
            c.pending_in[seqnum] = {address, buffer_length, packets};
            return deliver_pending_in(c) ? Step::Consumed : Step::Close;
        } else if (!model().bulk_out(address, data_out, Clock::now())) {
            status = kStatusStall;
        }
        if (options_.log_transfers)
            log(fmt::format("OUT {:02X}: {} bytes{}", address, data_out.size(), status ? ", STALL" : ""));
    } else {
        data_in = control_transfer(setup, data_out, status);
        if (!in) data_in.clear();
        if (data_in.size() > buffer_length) data_in.resize(buffer_length);
    }
    return send_ret_submit(c, seqnum, status, in ? data_in.size() : data_out.size(), packets, data_in)
               ? Step::Consumed
               : Step::Close;
}

bool UsbipServer::send_ret_submit(Connection& c, uint32_t seqnum, int32_t status, size_t actual_length,
                                  uint32_t packets, const std::vector<uint8_t>& data_in) {
    if (status != 0) ++counters_.stalls;
    std::vector<uint8_t> reply;
    put32(reply, kRetSubmit);
    put32(reply, seqnum);
    put32(reply, 0);  // devid, direction, ep: 0 from the server
    put32(reply, 0);
    put32(reply, 0);
    put32(reply, static_cast<uint32_t>(status));
    put32(reply, status != 0 ? 0 : static_cast<uint32_t>(actual_length));
    put32(reply, 0);        // start_frame
    put32(reply, packets);  // number_of_packets: as submitted (what the kernel's stub sends back)
    put32(reply, 0);        // error_count
    reply.resize(kUrbHeaderSize, 0);
    if (status == 0) reply.insert(reply.end(), data_in.begin(), data_in.end());
    return c.send(reply);
}

bool UsbipServer::deliver_pending_in(Connection& c) {
    std::set<uint8_t> waiting;  // endpoints whose oldest transfer is still unanswered: later ones wait too
    for (auto it = c.pending_in.begin(); it != c.pending_in.end();) {
        const auto [seqnum, pending] = *it;
        if (waiting.count(pending.address)) {
            ++it;
            continue;
        }
        EndpointIn answer = model().bulk_in(pending.address, pending.length, Clock::now());
        if (answer.state == EndpointIn::State::Nak) {
            waiting.insert(pending.address);
            ++it;
            continue;
        }
        it = c.pending_in.erase(it);
        if (answer.data.size() > pending.length) answer.data.resize(pending.length);
        const int32_t status = answer.state == EndpointIn::State::Stall ? kStatusStall : 0;
        if (options_.log_transfers)
            log(fmt::format("IN {:02X}: {}", pending.address,
                            status ? std::string("STALL") : fmt::format("{} bytes", answer.data.size())));
        if (!send_ret_submit(c, seqnum, status, answer.data.size(), pending.packets, answer.data)) return false;
    }
    return true;
}

std::vector<uint8_t> UsbipServer::control_transfer(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                                   int32_t& status) {
    const Clock::time_point now = Clock::now();
    if (setup.request_type == kPortRequestType && setup.request == kSetFeature && setup.value == kPortResetFeature) {
        bus_reset("port reset request");
        awaiting_enumeration_ = true;
        status = 0;
        return {};
    }
    // The hub driver's first look at a device after a port reset: only it asks for the device
    // descriptor with a length other than 18 (64 with the "new scheme", 8 with the old one).
    const bool enumeration = setup.request_type == 0x80 && setup.request == link::usb::kGetDescriptor &&
                             (setup.value >> 8) == link::usb::kDescriptorDevice &&
                             setup.length != kDeviceDescriptorSize;
    if (enumeration) {
        if (!awaiting_enumeration_) bus_reset("port reset (the kernel enumerates the device again)");
        awaiting_enumeration_ = false;
    }
    ControlResult result = model().control(setup, data_out, now);
    if (result.done_at > Clock::now()) std::this_thread::sleep_until(result.done_at);  // it NAKs until then
    status = result.stall ? kStatusStall : 0;
    if (setup.is_in() && result.data.size() > setup.length) result.data.resize(setup.length);
    if (options_.log_transfers)
        log(fmt::format("control {}: {}", describe_setup(setup),
                        result.stall ? std::string("STALL")
                                     : fmt::format("{} bytes", setup.is_in() ? result.data.size() : data_out.size())));
    return std::move(result.data);
}

UsbDeviceModel& UsbipServer::model() {
    while (UsbDeviceModel* next = model_->successor()) {
        model_ = next;
        log("the device rebooted: now " + model_->describe());
    }
    return *model_;
}

void UsbipServer::bus_reset(const std::string& why) {
    ++counters_.bus_resets;
    log("bus reset: " + why);
    model().bus_reset(Clock::now());
}

}  // namespace mcuflash::sim::usb
