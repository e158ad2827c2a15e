#pragma once
// The CLI's side of connecting: warnings and the trace go to the reporter (device/ does the rest).
#include "cli/reporter.hpp"
#include "device/device.hpp"

namespace mcuflash::cli {

using device::DeviceOptions;
using device::ProgrammerSession;
using device::Session;

Session connect(const DeviceOptions& options, Reporter& reporter, device::Needs needs = device::Needs::Bootloader);
ProgrammerSession connect_programmer(const DeviceOptions& options, const targets::Chip& chip, Reporter& reporter);

}  // namespace mcuflash::cli
