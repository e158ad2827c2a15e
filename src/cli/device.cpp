#include "cli/device.hpp"

namespace mcuflash::cli {

namespace {
DeviceOptions with_trace(const DeviceOptions& options, Reporter& reporter) {
    DeviceOptions traced = options;
    if (!traced.trace) traced.trace = reporter.trace_sink();
    return traced;
}
}  // namespace

Session connect(const DeviceOptions& options, Reporter& reporter, device::Needs needs) {
    link::WarningSink warn = [&reporter](const std::string& m) { reporter.warning(m); };
    return device::connect(with_trace(options, reporter), targets::Knowledge::builtin(), warn, needs);
}

ProgrammerSession connect_programmer(const DeviceOptions& options, const targets::Chip& chip, Reporter& reporter) {
    link::WarningSink warn = [&reporter](const std::string& m) { reporter.warning(m); };
    return device::connect_programmer(with_trace(options, reporter), chip, targets::Knowledge::builtin(), warn);
}

}  // namespace mcuflash::cli
