/*
 * simavr-bridge: run a real AVR bootloader (.hex) inside simavr and bridge the MCU's UART0 to a pty.
 *
 * Test code for mcuflash's interop tier ("our client -> a real bootloader"). It is written against
 * the public simavr headers (/usr/include/simavr) of simavr 1.6 and links -lsimavr -lutil.
 *
 *   simavr-bridge --mcu atmega1284p --freq 16000000 --hex BOOTLOADER.hex --pty /tmp/x/link
 *                 [--boot-address ADDR] [--flash-out FILE] [--log-level N]
 *
 * What it emulates (see README.md next to this file):
 *  - the hex is loaded chunk by chunk (read_ihex_chunks), each at its own address;
 *  - the reset vector (avr->reset_pc) is the bootloader base, chosen by: --boot-address, else the
 *    hex's start-address record (type 03 CS:IP or type 05 EIP) when it points into a loaded chunk,
 *    else the base of the largest chunk lying in the upper half of flash, else 0;
 *  - ptys have no DTR, so "a client opened the port" stands in for the Arduino DTR auto-reset: the
 *    AVR is reset with MCUSR = EXTRF whenever the pty's slave goes from closed to open (we watch the
 *    master's POLLHUP; this program never keeps a slave fd open);
 *  - watchdog resets are left to simavr (MCUSR = WDRF, no EXTRF), so the bootloader starts the
 *    application exactly like on hardware;
 *  - simulated time is paced to wall-clock time (the bootloaders' watchdogs and timeouts are in
 *    simulated time, the host's waits in wall-clock time);
 *  - host -> AVR bytes go into the UART receive FIFO only while simavr's UART says it has room
 *    (XON/XOFF IRQs); simavr's receive pump then hands them to the firmware one byte time apart;
 *  - with --flash-out, the whole flash (raw, from address 0) is written on exit (SIGINT/SIGTERM),
 *    whenever a client closes the pty and after each watchdog reset (only if it changed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <simavr/sim_avr.h>
#include <simavr/sim_hex.h>
#include <simavr/sim_io.h>
#include <simavr/sim_irq.h>
#include <simavr/sim_regbit.h>
#include <simavr/avr_uart.h>

/* ------------------------------------------------------------------------------------------------ */
/* options and global state                                                                         */

static const char *opt_mcu = "atmega1284p";
static uint32_t opt_freq = 16000000;
static const char *opt_hex;
static const char *opt_pty;
static const char *opt_flash_out;
static long long opt_boot = -1;
static int opt_log = 1;

static volatile sig_atomic_t g_quit;

static avr_t *g_avr;
static int g_master = -1;
static int g_link_made;

/* host -> AVR bytes waiting for room in the UART receive FIFO */
static uint8_t g_rx[1 << 16];
static size_t g_rx_head, g_rx_len;
/* AVR -> host bytes waiting for the pty */
static uint8_t g_tx[1 << 16];
static size_t g_tx_head, g_tx_len;

static int g_rx_ready;           /* UART receiver enabled and its FIFO not full (XON seen, no XOFF) */
static avr_irq_t *g_uart_in;     /* UART0 INPUT irq */
static int g_client;             /* a client currently holds the pty slave open */

static void (*g_core_reset)(avr_t *);
static int g_in_external_reset;
static unsigned long g_wdt_resets, g_ext_resets;
static int g_wdt_reset_seen, g_wdt_quiet;

static uint8_t *g_flash_shadow;  /* last flash image written to --flash-out */
static size_t g_flash_size;

static unsigned long long g_bytes_in, g_bytes_out;
static uint64_t g_start_ns;
static unsigned long long g_iter, g_runs, g_sleeps;

static void logmsg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logmsg(int level, const char *fmt, ...)
{
	if (level > opt_log)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(stderr, "simavr-bridge[%ld.%03ld]: ", (long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	g_quit = 1;
}

/* ------------------------------------------------------------------------------------------------ */
/* flash dump                                                                                       */

static int write_flash_out(const char *why, int only_if_changed)
{
	if (!opt_flash_out || !g_avr)
		return 0;
	if (only_if_changed && g_flash_shadow && memcmp(g_flash_shadow, g_avr->flash, g_flash_size) == 0)
		return 0;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", opt_flash_out, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		logmsg(0, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	size_t n = fwrite(g_avr->flash, 1, g_flash_size, f);
	if (fclose(f) != 0 || n != g_flash_size || rename(tmp, opt_flash_out) != 0) {
		logmsg(0, "cannot write %s: %s", opt_flash_out, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (g_flash_shadow)
		memcpy(g_flash_shadow, g_avr->flash, g_flash_size);
	logmsg(2, "flash (%zu bytes) written to %s (%s)", g_flash_size, opt_flash_out, why);
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* UART glue                                                                                        */

static void rx_inject(void)
{
	/* Feed the UART FIFO while it has room. Raising INPUT may re-enter uart_xoff() (FIFO full). */
	while (g_rx_ready && g_rx_len && g_avr->state != cpu_Crashed && g_avr->state != cpu_Done) {
		uint8_t b = g_rx[g_rx_head];
		g_rx_head = (g_rx_head + 1) % sizeof g_rx;
		g_rx_len--;
		if (opt_log >= 5)
			logmsg(5, "-> AVR %02x", b);
		avr_raise_irq(g_uart_in, b);
	}
}

static void uart_output(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)param;
	g_bytes_out++;
	if (opt_log >= 5)
		logmsg(5, "<- AVR %02x", value & 0xff);
	if (!g_client)
		return; /* nobody listening: a real UART line would drop it too */
	if (g_tx_len == sizeof g_tx)
		return;
	g_tx[(g_tx_head + g_tx_len) % sizeof g_tx] = (uint8_t)value;
	g_tx_len++;
}

static void uart_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)param;
	if (!value)
		return;
	g_rx_ready = 1;
	rx_inject();
}

static void uart_xoff(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)param;
	if (value)
		g_rx_ready = 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* resets                                                                                           */

static void core_reset_hook(avr_t *avr)
{
	if (g_core_reset)
		g_core_reset(avr);
	/* The UART is reset too (receiver off, FIFO flushed): wait for its next XON. */
	g_rx_ready = 0;
	if (!g_in_external_reset) {
		/* simavr resets by itself only when the watchdog fires (MCUSR.WDRF is set after us). */
		g_wdt_resets++;
		g_wdt_reset_seen = 1;
	}
}

static void external_reset(const char *why)
{
	avr_t *avr = g_avr;
	/* A watchdog reset may be pending (simavr swaps avr->run for one step): let it happen first so
	 * that it does not leave WDRF and a 16 ms watchdog behind our external reset. */
	if (avr->run != avr_callback_run_raw && avr->state != cpu_Crashed && avr->state != cpu_Done)
		avr_run(avr);
	g_in_external_reset = 1;
	avr_reset(avr);
	g_in_external_reset = 0;
	/* MCUSR = EXTRF only: the bootloaders run only after an external reset. */
	avr_regbit_clear(avr, avr->reset_flags.porf);
	avr_regbit_clear(avr, avr->reset_flags.borf);
	avr_regbit_clear(avr, avr->reset_flags.wdrf);
	avr_regbit_set(avr, avr->reset_flags.extrf);
	g_ext_resets++;
	logmsg(1, "reset (EXTRF) #%lu: %s; pc=0x%05x", g_ext_resets, why, (unsigned)avr->pc);
}

/* ------------------------------------------------------------------------------------------------ */
/* hex loading and boot address                                                                     */

/* Start address record of an Intel HEX file (type 03 CS:IP or type 05 EIP), or -1. read_ihex_chunks
 * ignores these records (it prints "unsupported check type 03"), so scan for them here. */
static long long hex_start_address(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[600];
	long long start = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned len, addr, type, a, b, c, d;
		if (sscanf(line, ":%2x%4x%2x", &len, &addr, &type) != 3)
			continue;
		if ((type == 3 || type == 5) && len == 4 && sscanf(line + 9, "%2x%2x%2x%2x", &a, &b, &c, &d) == 4) {
			if (type == 3)
				start = (long long)(((a << 8) | b) << 4) + ((c << 8) | d);
			else
				start = (long long)(((uint32_t)a << 24) | (b << 16) | (c << 8) | d);
		}
	}
	fclose(f);
	return start;
}

static int load_hex(avr_t *avr, const char *path, uint32_t *boot_out)
{
	ihex_chunk_p chunks = NULL;
	int n = read_ihex_chunks(path, &chunks);
	if (n <= 0) {
		logmsg(0, "cannot read Intel HEX file %s", path);
		return -1;
	}
	uint32_t flash_size = avr->flashend + 1;
	long long best_base = -1;
	uint32_t best_size = 0;
	for (int i = 0; i < n; i++) {
		ihex_chunk_t *c = &chunks[i];
		if ((uint64_t)c->baseaddr + c->size > flash_size) {
			logmsg(0, "%s: chunk 0x%x+%u does not fit the %u-byte flash of %s", path, c->baseaddr,
			       c->size, flash_size, avr->mmcu);
			free_ihex_chunks(chunks);
			free(chunks);
			return -1;
		}
		avr_loadcode(avr, c->data, c->size, c->baseaddr);
		logmsg(2, "loaded chunk 0x%05x..0x%05x (%u bytes)", c->baseaddr, c->baseaddr + c->size - 1, c->size);
		if (c->baseaddr >= flash_size / 2 && c->size > best_size) {
			best_size = c->size;
			best_base = c->baseaddr;
		}
	}

	const char *how;
	long long boot;
	long long start = hex_start_address(path);
	int start_in_chunk = 0;
	for (int i = 0; i < n && start >= 0; i++)
		if (start >= chunks[i].baseaddr && start < (long long)chunks[i].baseaddr + chunks[i].size)
			start_in_chunk = 1;
	if (opt_boot >= 0) {
		boot = opt_boot;
		how = "--boot-address";
	} else if (start_in_chunk) {
		boot = start;
		how = "the hex's start-address record";
	} else if (best_base >= 0) {
		boot = best_base;
		how = "the largest chunk in the upper half of flash";
	} else {
		boot = 0;
		how = "no bootloader-looking chunk: address 0";
	}
	free_ihex_chunks(chunks);
	free(chunks);
	if (boot < 0 || boot >= flash_size || (boot & 1)) {
		logmsg(0, "boot address 0x%llx is not an even address inside the flash", boot);
		return -1;
	}
	*boot_out = (uint32_t)boot;
	logmsg(1, "%s: boot address 0x%05llx (from %s)", path, boot, how);
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* pty                                                                                              */

static void remove_link(void)
{
	if (g_link_made && opt_pty) {
		unlink(opt_pty);
		g_link_made = 0;
	}
}

static int make_pty(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
		logmsg(0, "cannot create a pty: %s", strerror(errno));
		return -1;
	}
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	fcntl(m, F_SETFD, FD_CLOEXEC);
	const char *slave = ptsname(m);
	if (!slave) {
		logmsg(0, "ptsname: %s", strerror(errno));
		return -1;
	}
	/* termios requests on the master act on the slave side: make it raw from the start. */
	struct termios t;
	if (tcgetattr(m, &t) == 0) {
		cfmakeraw(&t);
		cfsetispeed(&t, B115200);
		cfsetospeed(&t, B115200);
		tcsetattr(m, TCSANOW, &t);
	}
	/* A fresh master does not report POLLHUP until its slave has been opened and closed once:
	 * do that now, so that "POLLHUP cleared" means "a client opened the port". */
	int s = open(slave, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (s >= 0)
		close(s);

	struct stat st;
	if (lstat(opt_pty, &st) == 0) {
		if (!S_ISLNK(st.st_mode)) {
			logmsg(0, "%s exists and is not a symlink; refusing to replace it", opt_pty);
			return -1;
		}
		unlink(opt_pty);
	}
	if (symlink(slave, opt_pty) != 0) {
		logmsg(0, "cannot create symlink %s -> %s: %s", opt_pty, slave, strerror(errno));
		return -1;
	}
	g_link_made = 1;
	g_master = m;
	logmsg(1, "pty %s -> %s", opt_pty, slave);
	return 0;
}

/* Returns 1 if the slave is held open by someone, 0 if not; reads pending input. */
static int service_pty(void)
{
	struct pollfd p = { .fd = g_master, .events = POLLIN | (g_tx_len ? POLLOUT : 0) };
	int r = poll(&p, 1, 0);
	if (r < 0)
		return g_client;
	int present = !(p.revents & POLLHUP);
	if (present && (p.revents & POLLIN)) {
		for (;;) {
			size_t space = sizeof g_rx - g_rx_len;
			if (!space)
				break;
			uint8_t buf[4096];
			ssize_t n = read(g_master, buf, space < sizeof buf ? space : sizeof buf);
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++)
				g_rx[(g_rx_head + g_rx_len + (size_t)i) % sizeof g_rx] = buf[i];
			g_rx_len += (size_t)n;
			g_bytes_in += (unsigned long long)n;
		}
	}
	if (present && g_tx_len) {
		while (g_tx_len) {
			size_t chunk = sizeof g_tx - g_tx_head;
			if (chunk > g_tx_len)
				chunk = g_tx_len;
			ssize_t n = write(g_master, g_tx + g_tx_head, chunk);
			if (n <= 0)
				break;
			g_tx_head = (g_tx_head + (size_t)n) % sizeof g_tx;
			g_tx_len -= (size_t)n;
		}
	}
	return present;
}

static void drop_buffers(void)
{
	g_rx_head = g_rx_len = 0;
	g_tx_head = g_tx_len = 0;
	/* Discard whatever already sits in the pty queues. */
	uint8_t buf[4096];
	while (read(g_master, buf, sizeof buf) > 0)
		;
	tcflush(g_master, TCIOFLUSH);
}

/* ------------------------------------------------------------------------------------------------ */

static void sleep_ns(uint64_t ns, int with_pty)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
	if (with_pty) {
		/* wake early when the host sends something */
		struct pollfd p = { .fd = g_master, .events = POLLIN };
		ppoll(&p, 1, &ts, NULL);
	} else {
		nanosleep(&ts, NULL);
	}
}

/* The core sleeps (SLEEP instruction) by jumping its cycle counter ahead; pacing is done by us. */
static void core_sleep_noop(avr_t *avr, avr_cycle_count_t how_long)
{
	(void)avr;
	(void)how_long;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: simavr-bridge --hex FILE --pty LINK [--mcu NAME] [--freq HZ] [--boot-address ADDR]\n"
	        "                     [--flash-out FILE] [--log-level N]\n"
	        "  --mcu NAME          simavr core (default atmega1284p; see simavr --list-cores)\n"
	        "  --freq HZ           core clock (default 16000000)\n"
	        "  --hex FILE          bootloader (Intel HEX); every chunk is loaded at its address\n"
	        "  --pty LINK          symlink to create to the pty slave (removed at exit)\n"
	        "  --boot-address ADDR reset vector (byte address); default: the hex's start-address record,\n"
	        "                      else the base of the largest chunk in the upper half of flash\n"
	        "  --flash-out FILE    write the whole flash (raw, from 0) on exit, client close, watchdog reset\n"
	        "  --log-level N       0 quiet, 1 events (default), 2 more, 3-5 simavr warnings/trace + bytes\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mcu", required_argument, NULL, 'm' },
		{ "freq", required_argument, NULL, 'f' },
		{ "hex", required_argument, NULL, 'x' },
		{ "pty", required_argument, NULL, 'p' },
		{ "boot-address", required_argument, NULL, 'b' },
		{ "flash-out", required_argument, NULL, 'o' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "m:f:x:p:b:o:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': opt_mcu = optarg; break;
		case 'f': opt_freq = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'x': opt_hex = optarg; break;
		case 'p': opt_pty = optarg; break;
		case 'b': opt_boot = strtoll(optarg, NULL, 0); break;
		case 'o': opt_flash_out = optarg; break;
		case 'l': opt_log = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (!opt_hex || !opt_pty || optind != argc || opt_freq == 0) {
		usage(stderr);
		return 64;
	}

	g_start_ns = mono_ns();
	avr_t *avr = avr_make_mcu_by_name(opt_mcu);
	if (!avr) {
		logmsg(0, "unknown mcu '%s' (simavr --list-cores)", opt_mcu);
		return 64;
	}
	avr_init(avr);
	g_avr = avr;
	avr->frequency = opt_freq;
	avr->log = opt_log >= 2 ? (opt_log > 5 ? 5 : opt_log) : LOG_ERROR;
	if (opt_log == 0)
		avr->log = LOG_NONE;
	avr->sleep = core_sleep_noop;
	g_flash_size = (size_t)avr->flashend + 1;
	if (opt_flash_out)
		g_flash_shadow = calloc(1, g_flash_size);

	uint32_t boot = 0;
	if (load_hex(avr, opt_hex, &boot) != 0)
		return 65;
	avr->reset_pc = boot;
	avr->codeend = avr->flashend;

	/* UART0: no stdio echo, no usleep() inside the firmware's status polling (we pace ourselves). */
	uint32_t uflags = 0;
	avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &uflags);
	g_uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
	avr_irq_t *uout = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT);
	avr_irq_t *uxon = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON);
	avr_irq_t *uxoff = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF);
	if (!g_uart_in || !uout || !uxon || !uxoff) {
		logmsg(0, "%s has no UART0 in simavr", opt_mcu);
		return 69;
	}
	avr_irq_register_notify(uout, uart_output, NULL);
	avr_irq_register_notify(uxon, uart_xon, NULL);
	avr_irq_register_notify(uxoff, uart_xoff, NULL);

	g_core_reset = avr->reset;
	avr->reset = core_reset_hook;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (make_pty() != 0) {
		remove_link();
		return 74;
	}

	/* Power-on: run the bootloader once as after an external reset (it times out into the empty
	 * application, or waits); the first client open resets it again. */
	external_reset("power on");
	if (opt_flash_out)
		write_flash_out("start", 0);
	logmsg(1, "ready: mcu=%s freq=%u flash=%zu bytes", avr->mmcu, opt_freq, g_flash_size);

	const uint64_t slice = opt_freq / 1000;              /* run ahead by at most 1 ms of simulated time */
	const uint64_t max_lag = opt_freq / 20;              /* forget more than 50 ms of debt */
	uint64_t base_ns = mono_ns();
	uint64_t base_cycle = avr->cycle;
	int halted_reported = 0;

	while (!g_quit) {
		g_iter++;
		int present = service_pty();
		if (present && !g_client) {
			g_client = 1;
			drop_buffers();
			external_reset("client opened the pty");
			halted_reported = 0;
			base_ns = mono_ns();
			base_cycle = avr->cycle;
		} else if (!present && g_client) {
			g_client = 0;
			logmsg(1, "client closed the pty (bytes in %llu, out %llu)", g_bytes_in, g_bytes_out);
			drop_buffers();
			write_flash_out("client closed", 1);
		}
		rx_inject();

		int runnable = avr->state == cpu_Running || avr->state == cpu_Sleeping;
		if (!runnable) {
			if (!halted_reported) {
				logmsg(1, "core %s at pc=0x%05x; waiting for the next client open",
				       avr->state == cpu_Crashed ? "crashed" : "stopped", (unsigned)avr->pc);
				halted_reported = 1;
				write_flash_out("core halted", 1);
			}
			g_rx_len = 0;
			sleep_ns(2000000, 0);
			base_ns = mono_ns();
			base_cycle = avr->cycle;
			continue;
		}

		uint64_t now = mono_ns();
		uint64_t due = base_cycle + (uint64_t)((unsigned __int128)(now - base_ns) * opt_freq / 1000000000u);
		if (due > avr->cycle + max_lag) {
			/* We cannot keep up (or were stopped): do not try to catch up in a burst. */
			base_cycle += due - (avr->cycle + max_lag);
			due = avr->cycle + max_lag;
		}
		if (avr->cycle <= due) {
			/* Run up to one slice ahead of the wall clock, then sleep until it catches up. */
			uint64_t stop = due + slice;
			while (avr->cycle < stop) {
				int st = avr_run(avr);
				g_runs++;
				if (st == cpu_Crashed || st == cpu_Done || st == cpu_Stopped)
					break;
			}
			if (g_wdt_reset_seen) {
				g_wdt_reset_seen = 0;
				if (g_wdt_resets <= 5 || opt_log >= 2) {
					logmsg(1, "watchdog reset #%lu (WDRF; the bootloader starts the application)",
					       g_wdt_resets);
				} else if (!g_wdt_quiet) {
					g_wdt_quiet = 1;
					logmsg(1, "watchdog reset #%lu; further ones are not logged", g_wdt_resets);
				}
				write_flash_out("watchdog reset", 1);
			}
		} else {
			uint64_t ahead_ns = (avr->cycle - due) * 1000000000ull / opt_freq;
			if (ahead_ns > 2000000)
				ahead_ns = 2000000;
			if (ahead_ns < 50000)
				ahead_ns = 50000;
			sleep_ns(ahead_ns, g_client);
			g_sleeps++;
		}
	}

	double wall_s = (double)(mono_ns() - g_start_ns) / 1e9;
	logmsg(1, "exiting after %.1f s (simulated %.1f s; external resets %lu, watchdog resets %lu, "
	       "bytes in %llu, out %llu)", wall_s, (double)avr->cycle / opt_freq, g_ext_resets, g_wdt_resets,
	       g_bytes_in, g_bytes_out);
	logmsg(2, "loop iterations %llu, avr_run calls %llu, sleeps %llu", g_iter, g_runs, g_sleeps);
	int rc = 0;
	if (opt_flash_out && write_flash_out("exit", 0) != 0)
		rc = 74;
	remove_link();
	if (g_master >= 0)
		close(g_master);
	avr_terminate(avr);
	return rc;
}
