#include "link/swd/gpiod_pins.hpp"

#include <fmt/format.h>
#include <gpiod.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/error.hpp"

namespace mcuflash::link::swd {

using core::Error;
using core::ErrorKind;

namespace {

constexpr const char* kConsumer = "mcuflash";
constexpr const char* kSpecForm = "gpio[:CHIP]:swclk=N,swdio=N[,srst=N] (Klipper's Raspberry Pi wiring: "
                                  "gpio:swclk=25,swdio=24,srst=18)";
constexpr const char* kPermissionHint =
    "add your user to the gpio group (sudo usermod -aG gpio $USER, then log in again), or give the group "
    "access with a udev rule: SUBSYSTEM==\"gpio\", KERNEL==\"gpiochip*\", GROUP=\"gpio\", MODE=\"0660\"";

bool all_digits(const std::string& text) {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

unsigned pin_number(const std::string& spec, const std::string& name, const std::string& digits) {
    if (!all_digits(digits) || digits.size() > 4)
        throw Error(ErrorKind::Usage, fmt::format("probe spec '{}': {} must be a GPIO number, not '{}'", spec, name, digits),
                    std::string("the form is ") + kSpecForm);
    return static_cast<unsigned>(std::stoul(digits));
}

std::string chip_device(const std::string& chip) { return all_digits(chip) ? "/dev/gpiochip" + chip : chip; }

}  // namespace

bool is_gpio_probe_spec(const std::string& text) { return text == "gpio" || text.rfind("gpio:", 0) == 0; }

GpioProbeSpec parse_gpio_probe_spec(const std::string& spec) {
    if (!is_gpio_probe_spec(spec))
        throw Error(ErrorKind::Usage, fmt::format("'{}' is not a GPIO probe spec", spec), std::string("the form is ") + kSpecForm);
    GpioProbeSpec result;
    std::string rest = spec.size() > 5 ? spec.substr(5) : "";
    // An optional CHIP before the pin list: the part before a ':' that holds no '='.
    if (const auto colon = rest.find(':'); colon != std::string::npos) {
        const std::string chip = rest.substr(0, colon);
        if (chip.empty() || chip.find('=') != std::string::npos)
            throw Error(ErrorKind::Usage, fmt::format("probe spec '{}': the GPIO chip is missing before ':'", spec),
                        std::string("the form is ") + kSpecForm);
        result.chip = chip;
        rest = rest.substr(colon + 1);
    }
    bool have_clock = false, have_data = false;
    size_t start = 0;
    while (start <= rest.size() && !rest.empty()) {
        const size_t comma = rest.find(',', start);
        const std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? rest.size() + 1 : comma + 1;
        if (item.empty()) continue;
        const auto equals = item.find('=');
        const std::string name = item.substr(0, equals);
        if (equals == std::string::npos)
            throw Error(ErrorKind::Usage, fmt::format("probe spec '{}': '{}' is not NAME=GPIO", spec, item),
                        std::string("the form is ") + kSpecForm);
        const unsigned number = pin_number(spec, name, item.substr(equals + 1));
        if (name == "swclk") result.swclk = number, have_clock = true;
        else if (name == "swdio") result.swdio = number, have_data = true;
        else if (name == "srst" || name == "nrst" || name == "reset") result.srst = number;
        else
            throw Error(ErrorKind::Usage, fmt::format("probe spec '{}': unknown pin '{}' (swclk, swdio, srst)", spec, name),
                        std::string("the form is ") + kSpecForm);
    }
    if (!have_clock || !have_data)
        throw Error(ErrorKind::Usage, fmt::format("probe spec '{}' must name the SWCLK and SWDIO GPIOs", spec),
                    std::string("the form is ") + kSpecForm);
    if (result.swclk == result.swdio || (result.srst && (*result.srst == result.swclk || *result.srst == result.swdio)))
        throw Error(ErrorKind::Usage, fmt::format("probe spec '{}' uses one GPIO for two signals", spec),
                    std::string("the form is ") + kSpecForm);
    return result;
}

std::unique_ptr<BitbangProbe> open_gpio_probe(const std::string& spec) {
    return std::make_unique<BitbangProbe>(std::make_unique<GpiodPins>(parse_gpio_probe_spec(spec)));
}

GpiodPins::GpiodPins(const GpioProbeSpec& spec) : spec_(spec) {
    errno = 0;
    chip_ = all_digits(spec.chip) ? gpiod_chip_open_by_number(static_cast<unsigned>(std::stoul(spec.chip)))
                                  : gpiod_chip_open_lookup(spec.chip.c_str());
    if (!chip_) {
        const int error = errno;
        const std::string device = chip_device(spec.chip);
        if (error == EACCES || error == EPERM)
            throw Error(ErrorKind::Permission, fmt::format("no permission to use the GPIO chip {}", device), kPermissionHint);
        if (error == ENOENT || error == ENODEV || error == 0)
            throw Error(ErrorKind::NotFound, fmt::format("there is no GPIO chip '{}' ({})", spec.chip, device),
                        "'gpiodetect' lists the chips: the Raspberry Pi's header is gpiochip0 (gpiochip4, "
                        "pinctrl-rp1, on a Pi 5)");
        throw Error(ErrorKind::Io, fmt::format("cannot open the GPIO chip {}: {}", device, std::strerror(error)));
    }
    chip_name_ = gpiod_chip_name(chip_) ? gpiod_chip_name(chip_) : spec.chip;
    chip_label_ = gpiod_chip_label(chip_) ? gpiod_chip_label(chip_) : "";
    try {
        auto request = [&](unsigned offset, const char* name, int flags, int level) {
            gpiod_line* line = gpiod_chip_get_line(chip_, offset);
            if (!line)
                throw Error(ErrorKind::NotFound, fmt::format("the GPIO chip {} has no line {} (for {})", chip_name_, offset, name),
                            "check the GPIO numbers in the probe spec (BCM numbers, not header pin numbers)");
            if (gpiod_line_request_output_flags(line, kConsumer, flags, level) != 0) {
                const int error = errno;
                if (error == EACCES || error == EPERM)
                    throw Error(ErrorKind::Permission, fmt::format("no permission to use GPIO{} on {}", offset, chip_name_),
                                kPermissionHint);
                if (error == EBUSY) {
                    const char* holder = gpiod_line_consumer(line);
                    throw Error(ErrorKind::Io,
                                fmt::format("GPIO{} ({}) on {} is in use{}", offset, name, chip_name_,
                                            holder ? fmt::format(" by '{}'", holder) : std::string()),
                                "stop the program that holds it (an OpenOCD, a Klipper host MCU using that pin), or "
                                "use other pins");
                }
                throw Error(ErrorKind::Io, fmt::format("cannot take GPIO{} ({}) on {}: {}", offset, name, chip_name_,
                                                       std::strerror(error)));
            }
            return line;
        };
        swclk_ = request(spec.swclk, "SWCLK", 0, 0);
        swdio_ = request(spec.swdio, "SWDIO", 0, 1);
        // nRESET open-drain: it never fights the board's reset button or its supervisor.
        if (spec.srst) srst_ = request(*spec.srst, "nRESET", GPIOD_LINE_REQUEST_FLAG_OPEN_DRAIN, 1);
    } catch (...) {
        release_lines();
        gpiod_chip_close(chip_);
        throw;
    }
}

GpiodPins::~GpiodPins() {
    release_all();
    release_lines();
    if (chip_) gpiod_chip_close(chip_);
}

std::string GpiodPins::describe() const {
    std::string text = fmt::format("GPIO {}{}: SWCLK {}, SWDIO {}", chip_name_,
                                   chip_label_.empty() ? "" : " (" + chip_label_ + ")", spec_.swclk, spec_.swdio);
    if (spec_.srst) text += fmt::format(", nRESET {}", *spec_.srst);
    return text;
}

void GpiodPins::set(gpiod_line* line, bool level, const char* name) {
    if (gpiod_line_set_value(line, level ? 1 : 0) != 0)
        throw Error(ErrorKind::Io, fmt::format("cannot set the {} GPIO on {}: {}", name, chip_name_, std::strerror(errno)));
}

void GpiodPins::set_swclk(bool high) { set(swclk_, high, "SWCLK"); }

void GpiodPins::drive_swdio(bool level) {
    if (swdio_output_) {
        if (level != swdio_level_) set(swdio_, level, "SWDIO");
        swdio_level_ = level;
        return;
    }
    if (set_direction_works_ && gpiod_line_set_direction_output(swdio_, level ? 1 : 0) != 0) set_direction_works_ = false;
    if (!set_direction_works_) {
        gpiod_line_release(swdio_);
        if (gpiod_line_request_output(swdio_, kConsumer, level ? 1 : 0) != 0)
            throw Error(ErrorKind::Io, fmt::format("cannot drive the SWDIO GPIO on {}: {}", chip_name_, std::strerror(errno)));
    }
    swdio_output_ = true;
    swdio_level_ = level;
}

void GpiodPins::release_swdio() {
    if (!swdio_output_) return;
    if (set_direction_works_ && gpiod_line_set_direction_input(swdio_) != 0) set_direction_works_ = false;
    if (!set_direction_works_) {
        gpiod_line_release(swdio_);
        if (gpiod_line_request_input(swdio_, kConsumer) != 0)
            throw Error(ErrorKind::Io, fmt::format("cannot read the SWDIO GPIO on {}: {}", chip_name_, std::strerror(errno)));
    }
    swdio_output_ = false;
}

bool GpiodPins::read_swdio() {
    const int value = gpiod_line_get_value(swdio_);
    if (value < 0)
        throw Error(ErrorKind::Io, fmt::format("cannot read the SWDIO GPIO on {}: {}", chip_name_, std::strerror(errno)));
    return value != 0;
}

void GpiodPins::set_reset_line(bool asserted) {
    if (srst_) set(srst_, !asserted, "nRESET");
}

void GpiodPins::delay(std::chrono::nanoseconds duration) {
    // Half clock periods are far below the scheduler's granularity: spin for those.
    if (duration >= std::chrono::microseconds(200)) {
        std::this_thread::sleep_for(duration);
        return;
    }
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
    }
}

void GpiodPins::release_lines() {
    for (gpiod_line** line : {&swclk_, &swdio_, &srst_})
        if (*line) {
            gpiod_line_release(*line);
            *line = nullptr;
        }
}

void GpiodPins::release_all() {
    // SWDIO to input and nRESET let go: the target's pull-ups take them high. The lines stay ours
    // (a later connect uses them again) until the destructor gives them back.
    try {
        if (swdio_) release_swdio();
        if (srst_) set_reset_line(false);
    } catch (const Error&) {
    }
}

}  // namespace mcuflash::link::swd
