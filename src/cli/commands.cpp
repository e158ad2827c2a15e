#include "cli/commands.hpp"

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <functional>

#include "cli/build_target.hpp"
#include "cli/device.hpp"
#include "cli/operations.hpp"
#include "cli/reporter.hpp"
#include "cli/swd_commands.hpp"
#include "core/crc.hpp"
#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "core/interrupt.hpp"
#include "image/loader.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/klipper_mcu/codec.hpp"
#include "storage/uf2_families.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using nlohmann::json;

namespace {

image::LoadOptions load_options(const ImageOptions& o) {
    image::LoadOptions lo;
    if (!o.format.empty()) lo.format = image::format_from_name(o.format);
    lo.base_address = o.base_address;
    return lo;
}

void add_device_options(CLI::App* cmd, DeviceOptions& d, bool chip_required = false) {
    cmd->add_option("-d,--device", d.device,
                    device::device_syntax() + "; omitted: the only serial port or USB bootloader found (`mcuflash list`)");
    std::string protocols;
    for (const auto& p : protocol::protocols()) protocols += fmt::format("\n  {}: {}", p.name, p.description);
    cmd->add_option("-p,--protocol", d.protocol,
                    "bootloader protocol (default: what a USB or simulated device is known to speak; on a serial port "
                    "the board's with --board, else each serial bootloader's in turn):" + protocols);
    auto* chip = cmd->add_option("--chip", d.chip, "expected chip (atmega1284p, atmega2560, ...: `mcuflash chips`)");
    if (chip_required) chip->required();
    cmd->add_option("--bootloader", d.bootloader,
                    "the bootloader on the board when it cannot be identified (optiboot, atmegaboot, stk500boot_v2, ...: `mcuflash chips`)");
    cmd->add_option("-b,--baud", d.baud, "serial baud rate (default: try the protocol's usual rates)")
        ->check(CLI::Range(50u, 20000000u));
    cmd->add_flag("--no-reset", d.no_reset, "do not pulse DTR/RTS to reset the board into its bootloader");
    cmd->add_option("--sim-faults", d.sim_faults,
                    "fault spec for sim: devices (see mcuflash-sim --help; sim:dfu: stall@N,timeout@N,vanish@N)");
    cmd->add_flag("--sim-fast", d.sim_fast, "sim: devices without wire and flash timing");
}

void add_target_options(CLI::App* cmd, TargetOptions& t, bool with_image) {
    cmd->add_option("--board", t.board,
                    "the board (`mcuflash boards`): its chip, bootloader and where its application starts are checked");
    if (with_image)
        cmd->add_option("--klipper-config", t.klipper_config,
                        "Klipper's build configuration (.config) the image was built with: its MCU and application "
                        "address are checked against the board (default: the .config of the Klipper tree when the "
                        "image is in its out/ folder; none: do not look)");
}

void add_image_options(CLI::App* cmd, ImageOptions& o) {
    cmd->add_option("--format", o.format, "image format: hex, srec, elf, bin, uf2 (default: detect)");
    cmd->add_option("--address,--base-address", o.base_address,
                    "load address of a raw .bin (flash, verify: default where the device's application starts; else 0)");
}

// A raw .bin given without --address has no address of its own.
bool unplaced_binary(const image::Image& img, const ImageOptions& o) {
    return img.source_format == image::Format::Binary && !o.base_address;
}

// An unplaced .bin goes where it was linked to start, when the build or the board says; else where
// the device's application starts (as bossac --offset and stm32flash do).
void place_binary(image::Image& img, bool unplaced, const Session& session, const BuildTarget& target,
                  Reporter& reporter) {
    if (!unplaced) return;
    const uint32_t at = target.app_address.value_or(session.info.app_start);
    if (at == 0) return;
    img.shift(at);
    reporter.info(fmt::format("raw binary placed at {}, {} (--address to choose)", hex_address(at),
                              target.app_address ? "where " + target.app_address_source + " says it starts"
                                                 : std::string("where the application starts")));
}

// Resolves --board and --klipper-config for an image; an image placed by its own addresses (HEX, ELF,
// --address) keeps them, and only a build configuration can contradict them.
BuildTarget image_target(const TargetOptions& target_options, const std::string& file, const image::Image& img,
                         bool unplaced, DeviceOptions& device, Reporter& reporter) {
    BuildTarget target = resolve_build_target(target_options, file, device, reporter);
    if (!unplaced && !target.config) target.app_address.reset();
    if (!unplaced && target.app_address && img.source_format == image::Format::Binary &&
        img.lowest() != *target.app_address)
        throw Error(ErrorKind::Usage,
                    fmt::format("--address {} contradicts {}: the image is linked for {}", hex_address(img.lowest()),
                                target.app_address_source, hex_address(*target.app_address)),
                    "leave out --address, or give --klipper-config none for an image built elsewhere");
    return target;
}

json device_json(const protocol::DeviceInfo& info) {
    json j = {{"chip", info.chip},
              {"bootloader", info.bootloader},
              {"bootloader_text", info.bootloader_text},
              {"signature", core::hex_bytes(info.signature)},
              {"flash_base", info.flash_base},
              {"flash_size", info.flash_size},
              {"app_start", info.app_start},
              {"app_end", info.app_end},
              {"page_size", info.page_size}};
    for (auto& [k, v] : info.details) j["details"][k] = v;
    return j;
}

std::string device_text(const Session& s) {
    const auto& i = s.info;
    std::string out = fmt::format("device:      {}\nchip:        {}{}\nbootloader:  {}\n", s.description, i.chip,
                                  i.signature.empty() ? "" : fmt::format(" (signature {})", core::hex_bytes(i.signature)),
                                  i.bootloader_text);
    out += fmt::format("flash:       {} bytes, pages of {}\napplication: {}-{} ({} bytes)\n", i.flash_size, i.page_size,
                       hex_address(i.app_start), hex_address(i.app_end - 1), i.app_end - i.app_start);
    for (auto& [k, v] : i.details) out += fmt::format("{:<12} {}\n", k + ":", v);
    return out;
}

}  // namespace

Error current_error() {
    try {
        throw;
    } catch (const Error& e) {
        return e;
    } catch (const core::TimeLimitExceeded& e) {
        return Error(ErrorKind::Timeout, e.what(), "raise it with --time-limit SECONDS");
    } catch (const core::Interrupted& e) {
        return Error(e.signal() == SIGINT ? ErrorKind::Interrupted : ErrorKind::Terminated,
                     fmt::format("{}: stopped between two exchanges with the device", e.what()));
    } catch (const std::exception& e) {
        return Error(ErrorKind::Internal, fmt::format("this is a bug in mcuflash: {}", e.what()),
                     "please report it with the command line and its output (add --trace for what crossed the link)");
    }
}

void run(GlobalOptions& global, const std::function<void(Reporter&)>& body) {
    Reporter reporter(detect_output_mode(global.json), global.quiet);
    try {
        if (global.trace || !global.trace_file.empty()) reporter.enable_trace(global.trace_file);
        body(reporter);
        global.exit_code = 0;
    } catch (const std::exception&) {
        global.exit_code = reporter.error(current_error());
    }
}

namespace {

// The board ran Klipper before (-d named its port) and the image is a Klipper build: wait for the
// board to come back and ask it what runs, so "flashed" also means "runs the new build". A board
// that does not come back is a warning: the flash itself was verified.
void check_klipper_back(const device::Address& klipper_port, const std::string& file, Session& session, json& j,
                        std::string& human, Reporter& reporter) {
    std::vector<uint8_t> expected;
    try {
        expected = protocol::klipper_mcu::identify_data_from_file(file);
    } catch (const Error&) {
        return;  // not a Klipper build: nothing to compare with
    }
    // The bootloader's port is let go: the board leaves it when the application starts.
    session.bootloader.reset();
    session.link.reset();
    reporter.info(fmt::format("waiting for the board to come back as Klipper on {}", klipper_port.text));
    try {
        const auto back = device::identify_when_back(klipper_port.scheme == "serial" ? klipper_port.rest : klipper_port.text,
                                                     std::chrono::seconds(15));
        const auto& d = back.identified.dictionary;
        const bool same = protocol::klipper_mcu::inflate(back.identified.identify_data) ==
                          protocol::klipper_mcu::inflate(expected);
        j["klipper_after"] = {{"version", d.version}, {"mcu", d.mcu()}, {"runs_image", same}, {"seconds", back.seconds}};
        if (same)
            human += fmt::format("the board is back after {:.1f} s running Klipper {} (the image's build)\n", back.seconds,
                                 d.version);
        else
            reporter.warning(fmt::format("the board came back running Klipper {}, which is not the build in {}: "
                                         "check the build's settings with `mcuflash guide BOARD`",
                                         d.version, file));
    } catch (const Error& e) {
        j["klipper_after"] = {{"error", e.what()}};
        reporter.warning(e.hint().empty() ? e.what() : std::string(e.what()) + "; " + e.hint());
    }
}

}  // namespace

void flash_image(Reporter& reporter, const std::string& file, const ImageOptions& image_options,
                 const TargetOptions& target_options, DeviceOptions device_options, const plan::PlanOptions& plan_options,
                 std::optional<unsigned> time_limit_seconds, const std::string& command_line) {
    // Everything about the file is checked before the device is touched.
    image::Image img = load_image(file, image_options, reporter);
    const bool unplaced = unplaced_binary(img, image_options);
    const BuildTarget target = image_target(target_options, file, img, unplaced, device_options, reporter);
    if (!device_options.chip.empty()) {
        const auto& chip = targets::Knowledge::builtin().chip(device_options.chip);
        const uint32_t at = target.app_address.value_or(chip.flash_base);
        if (unplaced) img.shift(at);
        plan::check_fits_flash(img, chip.flash_base, chip.flash_size, chip.name);
        if (unplaced) img.shift(-int64_t(at));
    }
    auto session = connect(device_options, reporter);
    reporter.info(fmt::format("{}: {}, {}", session.description, session.info.chip, session.info.bootloader_text));
    check_device(target, session.info, reporter);
    place_binary(img, unplaced, session, target, reporter);
    auto caps = session.bootloader->capabilities();
    auto flash_plan = plan::make_plan(img, session.info, caps, plan_options);
    std::optional<std::chrono::seconds> time_limit = plan::time_limit(flash_plan, session.link->bytes_per_second());
    if (time_limit_seconds) time_limit = std::chrono::seconds(*time_limit_seconds);

    if (time_limit) session.link->set_time_limit(core::Clock::now() + *time_limit, "flashing", *time_limit);
    core::Progress progress(reporter.sink());
    plan::FlashReport report;
    // Say what state the board is in and how to try again.
    auto with_state = [&](Error e) {
        const auto& info = session.info;
        const uint64_t flash_end = uint64_t(info.flash_base) + info.flash_size;
        std::string bootloader_state = "the bootloader is in ROM and cannot be overwritten";
        if (info.app_end < flash_end)
            bootloader_state = fmt::format("mcuflash sent no write or erase to the bootloader region ({}-{})",
                                           hex_address(info.app_end), hex_address(static_cast<uint32_t>(flash_end - 1)));
        else if (info.app_start > info.flash_base)
            bootloader_state = fmt::format("mcuflash sent no write or erase to the bootloader region ({}-{})",
                                           hex_address(info.flash_base), hex_address(info.app_start - 1));
        std::string erased = report.bytes_erased ? fmt::format("{} bytes were erased and ", report.bytes_erased) : "";
        // Rewrites after a failed verify count in bytes_written: then it may exceed the image.
        const std::string written =
            report.bytes_written > flash_plan.bytes_to_write()
                ? fmt::format("{} bytes written, rewrites included (the image needs {}),", report.bytes_written,
                              flash_plan.bytes_to_write())
                : fmt::format("{} of {} bytes written", report.bytes_written, flash_plan.bytes_to_write());
        std::string state = fmt::format("{}{} before this; {}. Retry: {}", erased, written, bootloader_state,
                                        command_line.empty() || device_options.device.empty()
                                            ? fmt::format("mcuflash flash {} {}", file, session.retry_hint)
                                            : command_line);
        e.with_hint(e.hint().empty() ? state : e.hint() + "\n" + state);
        return e;
    };
    try {
        plan::execute(*session.bootloader, flash_plan, plan_options, progress, report);
    } catch (const core::TimeLimitExceeded&) {
        throw with_state(current_error());
    } catch (const core::Interrupted&) {
        throw with_state(current_error().with_hint("the application is incomplete until the same command runs to its end"));
    } catch (const Error& e) {
        throw with_state(e);
    }
    session.link->clear_time_limit();
    json j = {{"command", "flash"},
              {"file", file},
              {"format", image::format_name(*img.source_format)},
              {"device", device_json(session.info)},
              {"bytes_unchanged", report.bytes_unchanged},
              {"bytes_erased", report.bytes_erased},
              {"bytes_written", report.bytes_written},
              {"pages_written", report.pages_written},
              {"pages_rewritten", report.pages_rewritten},
              {"verified", report.verified},
              {"outside_checked", report.outside_checked},
              {"started", report.started},
              {"seconds_erase", report.seconds_erase},
              {"seconds_write", report.seconds_write},
              {"seconds_verify", report.seconds_verify}};
    if (report.verified) j["verify_method"] = report.verify_method;
    if (!report.not_verified.empty()) j["not_verified"] = report.not_verified;
    std::string verified = report.verified ? fmt::format(", verified ({}) in {:.2f} s", report.verify_method,
                                                         report.seconds_verify)
                         : plan_options.verify ? "; " + report.not_verified
                                               : ", not verified (--no-verify)";
    // A whole-image device (Katapult's stream, a card) takes no pages from the plan: no page count then.
    const std::string pages = report.pages_written ? fmt::format(" ({} pages)", report.pages_written) : "";
    std::string human = fmt::format("wrote {} bytes{} to the {} in {:.2f} s{}{}\n", report.bytes_written, pages,
                                    session.info.chip, report.seconds_write, verified,
                                    report.started ? "; application started" : "");
    if (session.bootloader->capabilities().installed_at_next_start) {
        // A card holds the file; the board's bootloader installs it at its next start.
        j["started"] = false;
        human = fmt::format("wrote the firmware file ({} bytes) to {} in {:.2f} s{}\nput the card in the board "
                            "and power it up (or reset it): its bootloader installs the file; `mcuflash verify-sd "
                            "-d CARD{}` tells afterwards whether it did\n",
                            report.bytes_written, session.description, report.seconds_write, verified,
                            device_options.board.empty() ? "" : " --board " + device_options.board);
    }
    if (report.bytes_erased)
        human = fmt::format("erased {} bytes in {:.2f} s; ", report.bytes_erased, report.seconds_erase) + human;
    if (report.bytes_unchanged)
        human = fmt::format("{} bytes already held the image and were left alone; ", report.bytes_unchanged) + human;
    if (report.pages_rewritten)
        human += fmt::format("{} page(s) failed the first verify and were written again\n", report.pages_rewritten);
    if (report.outside_checked)
        human += "the flash outside the image, the bootloader's included, is as it was before\n";
    if (session.klipper_port && report.started) check_klipper_back(*session.klipper_port, file, session, j, human, reporter);
    reporter.result(j, human);
}

void read_flash(Reporter& reporter, const TargetOptions& target_options, DeviceOptions device_options,
                const std::string& out_file, const std::string& format, std::optional<uint32_t> address,
                std::optional<uint32_t> length) {
    // A name that says no format (backup.img) gets the raw bytes, and the user is told.
    std::optional<image::Format> named = format.empty() ? image::format_with_extension(out_file)
                                                        : std::optional(image::format_from_name(format));
    if (!named) reporter.info(fmt::format("{}: no known extension, so the raw bytes are written (--output-format "
                                          "hex or srec for text)", out_file));
    const image::Format out_format = named.value_or(image::Format::Binary);
    const BuildTarget target = resolve_build_target(target_options, "", device_options, reporter);
    auto session = connect(device_options, reporter);
    check_device(BuildTarget{.chips = target.chips}, session.info, reporter);
    uint32_t from = address.value_or(session.info.flash_base);
    uint64_t flash_end = uint64_t(session.info.flash_base) + session.info.flash_size;
    uint32_t count = length.value_or(static_cast<uint32_t>(flash_end - from));
    if (from < session.info.flash_base || from + uint64_t(count) > flash_end || count == 0)
        throw Error(ErrorKind::Usage, fmt::format("{} + {} bytes is outside the {}'s flash ({} bytes at {})",
                                                  hex_address(from), count, session.info.chip,
                                                  session.info.flash_size, hex_address(session.info.flash_base)));
    core::Progress progress(reporter.sink());
    progress.started(core::Stage::Read, count);
    std::vector<uint8_t> data;
    const uint32_t chunk = 1024;
    while (data.size() < count) {
        uint32_t n = std::min<uint32_t>(chunk, count - static_cast<uint32_t>(data.size()));
        auto part = session.bootloader->read(from + static_cast<uint32_t>(data.size()), n);
        data.insert(data.end(), part.begin(), part.end());
        progress.advanced(core::Stage::Read, data.size(), count);
    }
    progress.finished(core::Stage::Read, data.size());
    session.bootloader->leave();
    image::Image img;
    img.add(from, data, "device");
    image::save_file(img, out_file, out_format);
    json j = {{"command", "read"}, {"file", out_file}, {"address", from}, {"length", count},
              {"crc32", core::crc32(data)}, {"device", device_json(session.info)}};
    reporter.result(j, fmt::format("read {} bytes from {} into {} (CRC32 {:08x})\n", count, hex_address(from),
                                   out_file, core::crc32(data)));
}

void verify_image(Reporter& reporter, const std::string& file, const ImageOptions& image_options,
                  const TargetOptions& target_options, DeviceOptions device_options) {
    image::Image img = load_image(file, image_options, reporter);
    const bool unplaced = unplaced_binary(img, image_options);
    const BuildTarget target = image_target(target_options, file, img, unplaced, device_options, reporter);
    auto session = connect(device_options, reporter);
    check_device(target, session.info, reporter);
    place_binary(img, unplaced, session, target, reporter);
    // Compare exactly the image's bytes (no page padding: the rest of a page is not the image's business).
    std::vector<plan::PageWrite> ranges;
    for (const auto& [address, bytes] : img.runs()) ranges.push_back({address, bytes});
    auto bad = plan::verify_pages(*session.bootloader, ranges, core::Progress(reporter.sink()));
    session.bootloader->leave();
    if (!bad.empty())
        throw Error(ErrorKind::VerifyMismatch,
                    fmt::format("the device differs from {} in {} range(s), first at {}", file, bad.size(),
                                hex_address(bad.front())))
            .at_address(bad.front());
    reporter.result({{"command", "verify"}, {"file", file}, {"match", true}, {"bytes", img.total_bytes()}},
                    fmt::format("the device matches {} ({} bytes)\n", file, img.total_bytes()));
}

void show_info(Reporter& reporter, const TargetOptions& target_options, DeviceOptions device_options) {
    const BuildTarget target = resolve_build_target(target_options, "", device_options, reporter);
    auto session = connect(device_options, reporter);
    session.bootloader->leave();
    // `info` shows what the device is; a different chip is said, not refused.
    try {
        check_device(BuildTarget{.chips = target.chips}, session.info, reporter);
    } catch (const Error& e) {
        reporter.warning(e.what());
    }
    json j = device_json(session.info);
    j["command"] = "info";
    j["device_path"] = session.description;
    reporter.result(j, device_text(session));
}

namespace {

void flash_command(GlobalOptions& global, const std::string& file, const ImageOptions& image_options,
                   const TargetOptions& target_options, const DeviceOptions& device_options,
                   const plan::PlanOptions& plan_options, std::optional<unsigned> time_limit_seconds) {
    run(global, [&](Reporter& reporter) {
        flash_image(reporter, file, image_options, target_options, device_options, plan_options, time_limit_seconds,
                    global.command_line);
    });
}

void read_command(GlobalOptions& global, const TargetOptions& target_options, const DeviceOptions& device_options,
                  const std::string& out_file, const std::string& format, std::optional<uint32_t> address,
                  std::optional<uint32_t> length) {
    run(global, [&](Reporter& reporter) {
        read_flash(reporter, target_options, device_options, out_file, format, address, length);
    });
}

void verify_command(GlobalOptions& global, const std::string& file, const ImageOptions& image_options,
                    const TargetOptions& target_options, const DeviceOptions& device_options) {
    run(global, [&](Reporter& reporter) { verify_image(reporter, file, image_options, target_options, device_options); });
}

void info_command(GlobalOptions& global, const TargetOptions& target_options, const DeviceOptions& device_options) {
    run(global, [&](Reporter& reporter) { show_info(reporter, target_options, device_options); });
}

// After an SD-card update: did the board's bootloader take the file (renamed or removed it)?
void verify_sd_command(GlobalOptions& global, const TargetOptions& target_options, DeviceOptions device_options) {
    run(global, [&](Reporter& reporter) {
        resolve_build_target(target_options, "", device_options, reporter);
        const auto verdict = device::check_card(device_options, targets::Knowledge::builtin());
        json files = json::array();
        for (const auto& f : verdict.seen) files.push_back({{"name", f.name}, {"size", f.size}});
        const json j = {{"command", "verify-sd"},
                        {"device", device_options.device},
                        {"state", storage::verdict_name(verdict.state)},
                        {"message", verdict.words},
                        {"files", files}};
        using State = storage::CardVerdict::State;
        if (verdict.state == State::NotInstalled) throw Error(ErrorKind::VerifyMismatch, verdict.words);
        if (verdict.state == State::NoFile) throw Error(ErrorKind::NotFound, verdict.words);
        reporter.result(j, verdict.words + "\n");
    });
}

void image_info_command(GlobalOptions& global, const std::string& file, const ImageOptions& image_options) {
    run(global, [&](Reporter& reporter) {
        const image::Image img = load_image(file, image_options, reporter);
        // CRC and hash over the image as it would sit in flash: lowest to highest byte, gaps 0xFF.
        auto flat = img.flatten(img.lowest(), img.end(), 0xFF);
        json ranges = json::array();
        for (const auto& [address, bytes] : img.runs())
            ranges.push_back({{"start", address}, {"end", uint64_t{address} + bytes.size()}, {"bytes", bytes.size()}});
        json j = {{"command", "image info"}, {"file", file}, {"format", image::format_name(*img.source_format)},
                  {"ranges", ranges}, {"total_bytes", img.total_bytes()}, {"lowest", img.lowest()},
                  {"end", img.end()}, {"crc32", fmt::format("{:08x}", core::crc32(flat))},
                  {"sha256", core::sha256_hex(flat)}};
        std::string human = fmt::format("file:        {}\nformat:      {}\n", file, image::format_name(*img.source_format));
        for (const auto& [address, bytes] : img.runs())
            human += fmt::format("range:       {}-{} ({} bytes)\n", hex_address(address),
                                 hex_address(static_cast<uint32_t>(address + bytes.size() - 1)), bytes.size());
        human += fmt::format("total:       {} bytes\n", img.total_bytes());
        if (img.entry) {
            j["entry"] = *img.entry;
            human += fmt::format("entry point: {}\n", hex_address(*img.entry));
        }
        // A Cortex-M vector table's reset vector is a Thumb address (odd) inside the image.
        if (auto reset = img.reset_vector_arm(); reset && (*reset & 1) && *reset >= img.lowest() && *reset < img.end()) {
            j["reset_vector"] = *reset;
            human += fmt::format("reset vector (if Cortex-M): {}\n", hex_address(*reset));
        }
        human += fmt::format("crc32:       {:08x} (of {} bytes, gaps as 0xFF)\nsha256:      {}\n", core::crc32(flat),
                             flat.size(), core::sha256_hex(flat));
        reporter.result(j, human);
    });
}

// A UF2 family given as a chip (rp2040), a family's short name (SAMD51) or its ID (0xE48BFF56).
uint32_t uf2_family(const std::string& text) {
    const auto* chip = targets::Knowledge::builtin().find_chip(text);
    if (auto id = storage::uf2_family_for_chip(chip ? chip->name : text)) return *id;
    if (auto id = storage::uf2_family_by_name(text)) return *id;
    if (text.size() > 2 && text.size() <= 10 && (text.rfind("0x", 0) == 0 || text.rfind("0X", 0) == 0) &&
        text.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos)
        return static_cast<uint32_t>(std::stoul(text, nullptr, 16));
    std::string names;
    for (const auto& f : storage::uf2_families()) names += (names.empty() ? "" : ", ") + std::string(f.name);
    throw Error(ErrorKind::Usage, fmt::format("--family {}: no UF2 family of that chip or name", text),
                fmt::format("give a chip (rp2040), a family ({}) or the ID in hex (0xE48BFF56)", names));
}

void image_convert_command(GlobalOptions& global, const std::string& in, const std::string& out,
                           const ImageOptions& image_options, const std::string& to, const std::string& family) {
    run(global, [&](Reporter& reporter) {
        image::Image img = load_image(in, image_options, reporter);
        image::Format out_format = to.empty() ? image::format_for_extension(out) : image::format_from_name(to);
        if (!family.empty()) {
            if (out_format != image::Format::Uf2)
                throw Error(ErrorKind::Usage, "--family applies to UF2 output only");
            img.family_id = uf2_family(family);
        } else if (out_format == image::Format::Uf2 && !img.family_id) {
            reporter.warning("the UF2 file has no family ID: the RP2040 boot ROM ignores such blocks (give --family "
                          "rp2040, or the board's chip)");
        }
        image::save_file(img, out, out_format);
        reporter.result({{"command", "image convert"}, {"input", in}, {"output", out},
                         {"format", image::format_name(out_format)}, {"total_bytes", img.total_bytes()}},
                        fmt::format("wrote {} ({}, {} bytes of data)\n", out, image::format_name(out_format),
                                    img.total_bytes()));
    });
}

void chips_command(GlobalOptions& global) {
    run(global, [&](Reporter& reporter) {
        const auto& kb = targets::Knowledge::builtin();
        json chips = json::array();
        std::string human;
        for (const auto& [name, chip] : kb.chips()) {
            json bls = json::array();
            std::string bl_text;
            for (const auto& [bl_name, bl] : kb.bootloaders())
                if (auto size = bl.size_on(name)) {
                    bls.push_back({{"name", bl_name}, {"protocol", bl.protocol}, {"size", *size}, {"baud", bl.baud}});
                    bl_text += fmt::format(" {}({}, {} B)", bl_name, bl.protocol, *size);
                }
            json entry{{"name", name},           {"family", chip.family},
                       {"flash_base", chip.flash_base}, {"flash_size", chip.flash_size},
                       {"page_size", chip.page_size}, {"signature", core::hex_bytes(chip.signature)},
                       {"bootloaders", bls}};
            std::string id = chip.signature.empty() ? std::string("no signature")
                                                    : fmt::format("signature {}", core::hex_bytes(chip.signature));
            if (chip.product_id) {
                entry["product_id"] = *chip.product_id;
                id = fmt::format("product ID 0x{:03X}", *chip.product_id);
            }
            // Erased in sectors of several sizes (STM32F4, LPC176x), or in pages of one size.
            std::string units = fmt::format("{} B pages", chip.page_size);
            if (!chip.sectors.empty()) {
                units = "sectors";
                for (size_t i = 0; i < chip.sectors.size();) {
                    size_t j = i;
                    while (j < chip.sectors.size() && chip.sectors[j] == chip.sectors[i]) ++j;
                    units += fmt::format("{} {}x{}K", i ? "," : "", j - i, chip.sectors[i] / 1024);
                    i = j;
                }
                entry["sectors"] = chip.sectors;
            }
            chips.push_back(std::move(entry));
            human += fmt::format("{:<13} {:>7} B flash at 0x{:08X}, {}, {}; bootloaders:{}\n", name, chip.flash_size,
                                 chip.flash_base, units, id, bl_text);
        }
        reporter.result({{"command", "chips"}, {"chips", chips}}, human);
    });
}

void unprotect_command(GlobalOptions& global, const DeviceOptions& device_options, bool readout, bool erase_everything,
                       bool write) {
    run(global, [&](Reporter& reporter) {
        if (readout == write)
            throw Error(ErrorKind::Usage, "say which protection to remove: --readout or --write");
        if (readout && !erase_everything)
            throw Error(ErrorKind::Usage,
                        "removing readout protection makes the chip erase its whole flash: add --erase-everything to "
                        "confirm");
        auto session = connect(device_options, reporter, device::Needs::Protection);
        auto* protection = session.bootloader->protection();
        if (!protection)
            throw Error(ErrorKind::Unsupported,
                        fmt::format("{} ({}) has no protection mcuflash can remove", session.description,
                                    session.info.bootloader_text));
        if (write && !protection->can_remove_write_protection())
            throw Error(ErrorKind::Usage,
                        fmt::format("the {} bootloader has no command to remove write protection; only --readout",
                                    session.protocol->name));
        std::string done;
        if (readout) {
            reporter.info("removing readout protection: the chip erases its whole flash, then resets (this can take 30 s)");
            protection->remove_readout_protection();
            done = "readout protection removed; the flash is erased";
        } else {
            protection->remove_write_protection();
            done = "write protection removed";
        }
        reporter.result({{"command", "unprotect"}, {"readout", readout}, {"write", write}, {"chip", session.info.chip}},
                        fmt::format("{} ({})\n", done, session.info.chip));
    });
}

}  // namespace

image::Image load_image(const std::string& file, const ImageOptions& options, Reporter& reporter) {
    image::Image img = image::load_file(file, load_options(options));
    for (const auto& note : img.notes) reporter.warning(note);
    return img;
}

void register_commands(CLI::App& app, GlobalOptions& global) {
    // Options live as long as the app: they are captured by the callbacks.
    static DeviceOptions device;
    static ImageOptions image_opts;
    static plan::PlanOptions plan_opts;
    static std::string file, out_file, format, to_format;
    static std::optional<uint32_t> address, length;
    static bool no_verify = false, no_start = false, rewrite_unchanged = false;

    static TargetOptions target;
    static std::optional<unsigned> time_limit;
    // --probe: the same commands through an SWD debug probe (swd_commands.cpp).
    static ProbeOptions probe;
    static bool erase_chip = false;
    auto with_probe = [] {
        if (!device.device.empty())
            throw CLI::ValidationError("--probe", "give either -d (a bootloader) or --probe (a debug probe), not both");
        // A bootloader's options, which a probe has no use for: refused rather than ignored.
        if (!device.protocol.empty())
            throw CLI::ValidationError("--protocol", "names a bootloader's protocol; --probe speaks SWD");
        if (device.baud) throw CLI::ValidationError("--baud", "is for a serial bootloader, not --probe");
        if (device.no_reset) throw CLI::ValidationError("--no-reset", "is for a serial bootloader, not --probe");
        ProbeOptions o = probe;
        o.board = target.board;
        o.chip = device.chip;
        o.bootloader = device.bootloader;
        o.sim_faults = device.sim_faults;
        o.sim_fast = device.sim_fast;
        return o;
    };
    auto without_probe = [] {
        if (probe.reset_line) throw CLI::ValidationError("--reset-line", "applies to --probe only");
        if (probe.under_reset) throw CLI::ValidationError("--under-reset", "applies to --probe only");
    };
    auto* flash = app.add_subcommand("flash", "write an image to the device, verify it and start it");
    flash->add_option("file", file, "firmware image (Intel HEX, S-record, ELF, raw .bin, UF2)")->required();
    add_device_options(flash, device);
    add_target_options(flash, target, true);
    add_image_options(flash, image_opts);
    flash->add_flag("--no-verify", no_verify, "skip reading the flash back");
    flash->add_flag("--no-start", no_start, "leave the device in its bootloader afterwards");
    flash->add_flag("--rewrite-unchanged", rewrite_unchanged,
                    "write everything even where the device's checksum shows it already holds the image");
    flash->add_flag("--write-boot-area", plan_opts.write_boot_area,
                    "allow writing the start of flash where a ROM-bootloader chip (STM32) boots from: to install a "
                    "bootloader, or an application built without one");
    flash->add_flag("--force", plan_opts.force_link_address,
                    "accept an entry point outside the application region (never allows touching the bootloader)");
    flash->add_option("--time-limit", time_limit,
                      "stop after this many seconds (default: far above what the flash and the link need)")
        ->check(CLI::Range(1u, 86400u));
    add_probe_options(flash, probe);
    flash->add_flag("--erase-chip", erase_chip,
                    "--probe, a board without a bootloader (Duet 3 1LC): erase the whole chip and clear BOOTPROT first");
    flash->callback([&global, with_probe, without_probe] {
        if (!probe.probe.empty()) {
            if (time_limit) throw CLI::ValidationError("--time-limit", "applies to a bootloader (-d), not to --probe");
            if (plan_opts.write_boot_area)
                throw CLI::ValidationError("--write-boot-area", "applies to a bootloader (-d); through --probe a "
                                                                "bootloader goes in with `mcuflash bootloader install`");
            if (rewrite_unchanged)
                throw CLI::ValidationError("--rewrite-unchanged", "applies to a bootloader (-d), not to --probe");
            return swd_flash_command(global, with_probe(), file, image_opts, target.klipper_config, erase_chip,
                                     !no_verify, !no_start, plan_opts.force_link_address);
        }
        without_probe();
        if (erase_chip) throw CLI::ValidationError("--erase-chip", "applies to --probe only");
        plan_opts.verify = !no_verify;
        plan_opts.start_application = !no_start;
        plan_opts.skip_unchanged = !rewrite_unchanged;
        flash_command(global, file, image_opts, target, device, plan_opts, time_limit);
    });

    auto* read = app.add_subcommand("read", "read the device's flash into a file");
    add_device_options(read, device);
    add_target_options(read, target, false);
    read->add_option("-o,--output", out_file, "output file (.hex, .srec or .bin)")->required();
    read->add_option("--output-format", format, "hex, srec or bin (default: from the file name)");
    read->add_option("--address", address, "first address (default: start of flash)");
    read->add_option("--length", length, "bytes to read (default: to the end of flash)");
    add_probe_options(read, probe);
    read->callback([&global, with_probe, without_probe] {
        if (!probe.probe.empty()) return swd_read_command(global, with_probe(), out_file, format, address, length);
        without_probe();
        read_command(global, target, device, out_file, format, address, length);
    });

    auto* verify = app.add_subcommand("verify", "compare the device's flash with an image");
    verify->add_option("file", file, "firmware image")->required();
    add_device_options(verify, device);
    add_target_options(verify, target, true);
    add_image_options(verify, image_opts);
    verify->callback([&global] { verify_command(global, file, image_opts, target, device); });

    static bool readout = false, erase_everything = false, write_protection = false;
    auto* unprotect = app.add_subcommand(
        "unprotect", "remove an STM32's readout protection (erases the whole flash) or write protection (serial or DfuSe); --probe: an SWD chip's readout protection");
    add_device_options(unprotect, device);
    unprotect->add_flag("--readout", readout, "remove readout protection (RDP): the chip erases its whole flash");
    unprotect->add_flag("--erase-everything", erase_everything, "confirm that --readout erases the whole flash");
    unprotect->add_flag("--write", write_protection, "remove write protection from every page or sector");
    add_probe_options(unprotect, probe);
    unprotect->callback([&global, with_probe, without_probe] {
        if (!probe.probe.empty()) {
            if (write_protection) throw CLI::ValidationError("--write", "over SWD only --readout is offered");
            return swd_unprotect_command(global, with_probe(), erase_everything);
        }
        without_probe();
        unprotect_command(global, device, readout, erase_everything, write_protection);
    });

    auto* info = app.add_subcommand("info", "connect and show what the device says about itself");
    add_device_options(info, device);
    add_target_options(info, target, false);
    add_probe_options(info, probe);
    info->callback([&global, with_probe, without_probe] {
        if (!probe.probe.empty()) return swd_info_command(global, with_probe());
        without_probe();
        info_command(global, target, device);
    });

    auto* verify_sd = app.add_subcommand(
        "verify-sd", "after an SD-card update: tell whether the board's bootloader took the file (renamed or removed it)");
    add_device_options(verify_sd, device);
    add_target_options(verify_sd, target, false);
    verify_sd->callback([&global] { verify_sd_command(global, target, device); });

    auto* chips = app.add_subcommand("chips", "list the chips and bootloaders mcuflash knows");
    chips->callback([&global] { chips_command(global); });

    auto* image = app.add_subcommand("image", "inspect and convert firmware images");
    image->require_subcommand(1);
    image->fallthrough();
    auto* image_info = image->add_subcommand("info", "format, address ranges, size, entry point, CRC32, SHA-256");
    image_info->add_option("file", file, "firmware image")->required();
    add_image_options(image_info, image_opts);
    image_info->callback([&global] { image_info_command(global, file, image_opts); });
    auto* convert = image->add_subcommand("convert", "convert between hex, srec, bin and uf2");
    convert->add_option("input", file, "input image")->required();
    convert->add_option("output", out_file, "output file")->required();
    add_image_options(convert, image_opts);
    convert->add_option("--to", to_format, "hex, srec, bin or uf2 (default: from the output name)");
    static std::string uf2_family_text;
    convert->add_option("--family", uf2_family_text,
                        "UF2 output: the family ID the board's UF2 bootloader expects, as a chip (rp2040), a family "
                        "(SAMD51) or the ID in hex (default: the input's, if it is UF2)");
    convert->callback([&global] { image_convert_command(global, file, out_file, image_opts, to_format, uf2_family_text); });

    register_avr_isp_commands(app, global);
    register_usb_commands(app, global);
    register_board_commands(app, global);
    register_klipper_commands(app, global);
    register_openocd_commands(app, global);
}

}  // namespace mcuflash::cli
