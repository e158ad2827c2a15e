// The library's calls: each runs the command's own body (src/cli/operations.hpp) with a Reporter
// that calls back instead of printing, so a program gets exactly what the command does.
#include "mcuflash/mcuflash.hpp"

#include <utility>

#include "cli/operations.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"

namespace mcuflash {

namespace {

const char* event_name(core::ProgressEvent::Kind kind) {
    switch (kind) {
        case core::ProgressEvent::Kind::Started: return "started";
        case core::ProgressEvent::Kind::Advanced: return "advanced";
        case core::ProgressEvent::Kind::Finished: return "finished";
        case core::ProgressEvent::Kind::Note: return "note";
    }
    return "note";
}

cli::Listener listener_for(const Options& options) {
    cli::Listener listener;
    if (options.on_progress)
        listener.progress = [callback = options.on_progress](const core::ProgressEvent& e) {
            callback(ProgressEvent{event_name(e.kind), core::stage_name(e.stage), e.done, e.total, e.message});
        };
    listener.message = options.on_message;
    return listener;
}

device::DeviceOptions device_options(const Options& options) {
    device::DeviceOptions d;
    d.device = options.device;
    d.protocol = options.protocol;
    d.chip = options.chip;
    d.bootloader = options.bootloader;
    d.baud = options.baud;
    d.no_reset = options.no_reset;
    d.sim_faults = options.sim_faults;
    d.sim_fast = options.sim_fast;
    return d;
}

cli::TargetOptions target_options(const Options& options) {
    return cli::TargetOptions{.board = options.board, .klipper_config = options.klipper_config};
}

cli::ImageOptions image_options(const Options& options) {
    return cli::ImageOptions{.format = options.format, .base_address = options.address};
}

// Runs a command body; its result, or its failure as mcuflash::Error.
template <typename Body>
Result run(const Options& options, Body&& body) {
    cli::Reporter reporter(listener_for(options));
    try {
        body(reporter);
    } catch (const std::exception&) {
        const core::Error e = cli::current_error();
        throw Error(core::kind_name(e.kind()), core::exit_code(e.kind()), e.full_message(), e.hint(), e.address());
    }
    return Result{cli::json_line(reporter.result_data()), reporter.result_text()};
}

}  // namespace

std::string version() { return MCUFLASH_VERSION_TEXT; }

Error::Error(std::string kind, int exit_code, const std::string& message, std::string hint,
             std::optional<uint32_t> address)
    : std::runtime_error(message), kind_(std::move(kind)), exit_code_(exit_code), hint_(std::move(hint)),
      address_(address) {}

Result flash(const std::string& image_file, const Options& options) {
    plan::PlanOptions plan;
    plan.verify = options.verify;
    plan.start_application = options.start;
    plan.skip_unchanged = !options.rewrite_unchanged;
    return run(options, [&](cli::Reporter& reporter) {
        cli::flash_image(reporter, image_file, image_options(options), target_options(options),
                         device_options(options), plan, options.time_limit_seconds, "");
    });
}

Result verify(const std::string& image_file, const Options& options) {
    return run(options, [&](cli::Reporter& reporter) {
        cli::verify_image(reporter, image_file, image_options(options), target_options(options),
                          device_options(options));
    });
}

Result read(const std::string& out_file, const Options& options, std::optional<uint32_t> address,
            std::optional<uint32_t> length) {
    return run(options, [&](cli::Reporter& reporter) {
        cli::read_flash(reporter, target_options(options), device_options(options), out_file, options.format,
                        address, length);
    });
}

Result info(const Options& options) {
    return run(options, [&](cli::Reporter& reporter) {
        cli::show_info(reporter, target_options(options), device_options(options));
    });
}

Result list() {
    return run(Options{}, [&](cli::Reporter& reporter) { cli::list_devices(reporter, ""); });
}

}  // namespace mcuflash
