#pragma once
// SWD on a Linux GPIO chip through libgpiod (1.6's C API; /dev/gpiochipN): the Raspberry Pi wiring
// Klipper's docs use for OpenOCD's bcm2835gpio/linuxgpiod drivers is SWCLK GPIO25, SWDIO GPIO24 and
// nRESET GPIO18 on gpiochip0.
//
// The probe spec a user gives (`--probe SPEC`):
//   gpio:swclk=25,swdio=24                 gpiochip0, no nRESET
//   gpio:swclk=25,swdio=24,srst=18         with nRESET on GPIO18 (driven open-drain)
//   gpio:CHIP:swclk=25,swdio=24[,srst=18]  CHIP a number (4 = /dev/gpiochip4) or a name/label
//                                          (gpiochip4, pinctrl-rp1): the Pi 5's header is on the RP1
#include <memory>
#include <optional>
#include <string>

#include "link/swd/bitbang_probe.hpp"
#include "link/swd/swd_pins.hpp"

struct gpiod_chip;
struct gpiod_line;

namespace mcuflash::link::swd {

struct GpioProbeSpec {
    std::string chip = "0";  // a number, or what gpiod_chip_open_lookup takes (name, label, path)
    unsigned swclk = 0, swdio = 0;
    std::optional<unsigned> srst;
};

// "gpio..." -> the pins. Throws core::Error(Usage), with the spec's form, on anything else.
GpioProbeSpec parse_gpio_probe_spec(const std::string& spec);
bool is_gpio_probe_spec(const std::string& text);  // "gpio" or "gpio:..."

// Opens the pins a spec names and puts a BitbangProbe on them. Throws Permission (with the gpio group
// and udev hint), NotFound (no such chip or line), Io (a line another program holds).
std::unique_ptr<BitbangProbe> open_gpio_probe(const std::string& spec);

class GpiodPins : public SwdPins {
public:
    explicit GpiodPins(const GpioProbeSpec& spec);
    ~GpiodPins() override;
    GpiodPins(const GpiodPins&) = delete;
    GpiodPins& operator=(const GpiodPins&) = delete;

    std::string describe() const override;
    void set_swclk(bool high) override;
    void drive_swdio(bool level) override;
    void release_swdio() override;
    bool read_swdio() override;
    bool has_reset_line() const override { return srst_ != nullptr; }
    void set_reset_line(bool asserted) override;
    void delay(std::chrono::nanoseconds duration) override;
    void release_all() override;

private:
    void set(gpiod_line* line, bool level, const char* name);
    void release_lines();

    GpioProbeSpec spec_;
    std::string chip_name_, chip_label_;
    gpiod_chip* chip_ = nullptr;
    gpiod_line *swclk_ = nullptr, *swdio_ = nullptr, *srst_ = nullptr;
    bool swdio_output_ = true;
    bool swdio_level_ = true;
    bool set_direction_works_ = true;  // kernels before 5.5 lack the ioctl: release and request again
};

}  // namespace mcuflash::link::swd
