/*
 * Host twin: the firmware's device loop (firmware/src/device.c, the same core) as a POSIX
 * program, for development and tests without hardware.
 *
 *   flipnet-twin            serve a pseudo-terminal; prints its path (/dev/pts/N) on the
 *                           first line of stdout, then serves until killed
 *   flipnet-twin --stdio    speak the protocol on stdin/stdout; exit at end of input
 *   flipnet-twin --link P   also create a symlink P to the pty (a stable name)
 *   flipnet-twin --flash F  keep checkpoints in file F (an emulated NOR flash of 32 sectors
 *                           of 4 KB, created erased): a killed and restarted twin resumes
 *                           from it (docs/protocol.md section 10); without it, no store
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#endif

#include "../../src/board.h"
#include "../../src/ckpt.h"
#include "../../src/device.h"

static int in_fd = 0, out_fd = 1;
static int pty_mode = 1;
static unsigned char in_buf[4096];
static size_t in_len, in_pos;
static unsigned char out_buf[4096];
static size_t out_len;

void board_init(void) {}

static void write_all(const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(out_fd, p, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            if (pty_mode && errno == EIO) { /* no reader: drop, the host will retransmit */
                usleep(1000);
                return;
            }
            exit(0);
        }
        p += w;
        n -= (size_t)w;
    }
}

void board_flush(void)
{
    write_all(out_buf, out_len);
    out_len = 0;
}

void board_putc(uint8_t c)
{
    if (out_len == sizeof(out_buf)) board_flush();
    out_buf[out_len++] = c;
}

int board_getc(void)
{
    while (in_pos == in_len) {
        ssize_t r;
        board_flush();
        r = read(in_fd, in_buf, sizeof(in_buf));
        if (r > 0) {
            in_len = (size_t)r;
            in_pos = 0;
        } else if (r == 0 && !pty_mode) {
            return -1;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (pty_mode) {
            usleep(2000); /* EIO: no process has the terminal open right now */
        } else {
            return -1;
        }
    }
    return in_buf[in_pos++];
}

const char *board_name(void) { return "host"; }

uint32_t board_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}
uint32_t board_tick_hz(void) { return 1000000u; /* microseconds */ }
uint32_t board_ram_static(void) { return 0; }
uint32_t board_stack_size(void) { return 0; }
uint32_t board_stack_used(void) { return 0; }

/* ---- the checkpoint flash: a file, mirrored in memory, with NOR semantics (erase: 0xFF,
 * program: AND). Every operation is written through to the file at once, so the file holds
 * what a killed twin had done (SIGKILL at any moment; not a host power loss). */
#define HOST_SECTOR 4096u
#define HOST_SECTORS 32u
#define HOST_FLASH (HOST_SECTOR * HOST_SECTORS)
static int flash_fd = -1;
static uint8_t *flash_mem;

static int flash_sync(uint32_t off, uint32_t n)
{
    while (n > 0) {
        ssize_t w = pwrite(flash_fd, flash_mem + off, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (uint32_t)w;
        n -= (uint32_t)w;
    }
    return 0;
}

static int in_range(uint32_t off, uint32_t n) { return off <= HOST_FLASH && n <= HOST_FLASH - off; }

static int hf_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t n)
{
    (void)ctx;
    if (!in_range(off, n)) return -1;
    memcpy(buf, flash_mem + off, n);
    return 0;
}

static int hf_prog(void *ctx, uint32_t off, const uint8_t *buf, uint32_t n)
{
    uint32_t i;
    (void)ctx;
    if (!in_range(off, n)) return -1;
    for (i = 0; i < n; i++) flash_mem[off + i] &= buf[i];
    return flash_sync(off, n);
}

static int hf_erase(void *ctx, uint32_t sector)
{
    (void)ctx;
    if (sector >= HOST_SECTORS) return -1;
    memset(flash_mem + sector * HOST_SECTOR, 0xFF, HOST_SECTOR);
    return flash_sync(sector * HOST_SECTOR, HOST_SECTOR);
}

static const uint8_t *hf_map(void *ctx, uint32_t off, uint32_t n)
{
    (void)ctx;
    return in_range(off, n) ? flash_mem + off : NULL;
}

static const fw_bdev host_flash = {HOST_SECTOR, HOST_SECTORS, hf_read, hf_prog, hf_erase,
                                   hf_map, NULL};

const fw_bdev *board_flash(void) { return flash_fd >= 0 ? &host_flash : NULL; }

static int open_flash(const char *path)
{
    ssize_t r;
    size_t got = 0;
    flash_mem = malloc(HOST_FLASH);
    if (flash_mem == NULL) return -1;
    memset(flash_mem, 0xFF, HOST_FLASH); /* a new (or short) file reads as erased flash */
    flash_fd = open(path, O_RDWR | O_CREAT, 0644);
    if (flash_fd < 0) return -1;
    while (got < HOST_FLASH && (r = pread(flash_fd, flash_mem + got, HOST_FLASH - got,
                                          (off_t)got)) > 0)
        got += (size_t)r;
    if (got < HOST_FLASH && flash_sync((uint32_t)got, (uint32_t)(HOST_FLASH - got)) != 0)
        return -1;
    return 0;
}

static void make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(fd, TCSANOW, &t);
    }
}

int main(int argc, char **argv)
{
    const char *link_path = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stdio") == 0) {
            pty_mode = 0;
        } else if (strcmp(argv[i], "--link") == 0 && i + 1 < argc) {
            link_path = argv[++i];
        } else if (strcmp(argv[i], "--flash") == 0 && i + 1 < argc) {
            if (open_flash(argv[++i]) != 0) {
                fprintf(stderr, "flipnet-twin: cannot use %s as the checkpoint flash: %s\n",
                        argv[i], strerror(errno));
                return 1;
            }
        } else {
            fprintf(stderr, "usage: %s [--stdio] [--link PATH] [--flash FILE]\n", argv[0]);
            return 2;
        }
    }
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* do not outlive the process that started us */
#endif
    if (pty_mode) {
        int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
        const char *name;
        if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
            (name = ptsname(master)) == NULL) {
            perror("flipnet-twin: pseudo-terminal");
            return 1;
        }
        /* keep the slave open ourselves: the pty then survives clients closing it, and
         * the line discipline is raw even for a client that does not set it */
        slave = open(name, O_RDWR | O_NOCTTY);
        if (slave < 0) {
            perror("flipnet-twin: open slave");
            return 1;
        }
        make_raw(slave);
        make_raw(master);
        if (link_path) {
            unlink(link_path);
            if (symlink(name, link_path) != 0) perror("flipnet-twin: symlink");
        }
        printf("%s\n", name);
        fflush(stdout);
        in_fd = out_fd = master;
    }
    board_init();
    fw_run();
    board_flush();
    return 0;
}
