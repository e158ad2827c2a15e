#pragma once
// What the device-simulator tests share: a device driven byte by byte at chosen instants of
// simulated time, as a host program would drive it, and small byte helpers.
#include <chrono>
#include <initializer_list>
#include <memory>
#include <vector>

#include "sim/device.hpp"

namespace mcuflash::sim::test {

using Bytes = std::vector<uint8_t>;

inline Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

class DeviceBench {
public:
    // Powers the device up with its RESET pin at `start`.
    explicit DeviceBench(std::unique_ptr<Device> device, Clock::time_point start = {})
        : device_(std::move(device)), now_(start) {
        device_->hardware_reset(now_);
    }
    static DeviceOptions quiet() {
        DeviceOptions o;
        o.timing = false;
        return o;
    }

    // Sends `bytes` at the current instant and returns everything the device answered by then.
    Bytes exchange(const Bytes& bytes) {
        for (uint8_t b : bytes) device_->receive(b, now_);
        return take();
    }
    Bytes take() {
        Bytes out;
        for (const auto& sent : device_->take_output()) out.push_back(sent.value);
        return out;
    }
    void wait(Clock::duration d) {
        now_ += d;
        device_->tick(now_);
    }
    Clock::time_point now() const { return now_; }
    Device& device() { return *device_; }
    template <typename T>
    T& as() { return dynamic_cast<T&>(*device_); }

protected:
    std::unique_ptr<Device> device_;
    Clock::time_point now_;
};

}  // namespace mcuflash::sim::test
