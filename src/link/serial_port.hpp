#pragma once
// A serial port opened with termios2 (BOTHER), so any baud rate works, 250000 included.
// On a pty, where parity and modem lines do not exist, it warns once and carries on.
#include <string>

#include "link/byte_link.hpp"

namespace mcuflash::link {

class SerialPort : public ByteLink, public SerialLine {
public:
    SerialPort(std::string path, const SerialSettings& settings, WarningSink warn = {});
    ~SerialPort() override;
    SerialPort(const SerialPort&) = delete;
    SerialPort& operator=(const SerialPort&) = delete;

    void set_dtr_rts(bool dtr, bool rts) override;
    bool has_modem_lines() const override;
    void reopen() override;
    void configure(const SerialSettings& settings) override;
    SerialSettings settings() const override { return settings_; }
    std::string describe() const override { return path_; }
    SerialLine* serial_line() override { return this; }

    bool is_pty() const { return is_pty_; }

protected:
    void do_write(std::span<const uint8_t> bytes) override;
    size_t do_read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) override;
    size_t do_drain_input() override;

private:
    void open_port();
    void warn_once(int bit, const std::string& message);

    std::string path_;
    int fd_ = -1;
    bool is_pty_ = false;
    SerialSettings settings_;
    WarningSink warn_;
    int warned_ = 0;  // bit set of warnings already given
};

}  // namespace mcuflash::link
