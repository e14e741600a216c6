/*
 * privcmd-shim.so: makes Debian's C xen-livepatch (libxenctrl 4.17) talk to one of our hypervisors instead of
 * real Xen, so that Xen's own tool and ours can be compared on many cases without QEMU. Loaded with LD_PRELOAD;
 * XLP_SHIM_SOCKET names the sandbox socket (SysctlSocketServer, SocketWire framing) to forward to.
 *
 *  - open/open64/openat of /dev/xen/privcmd returns a descriptor of /dev/null that the shim remembers;
 *    /dev/xen/hypercall fails with ENOENT (libxencall then takes locked anonymous pages, its fallback);
 *  - ioctl(IOCTL_PRIVCMD_HYPERCALL) of __HYPERVISOR_sysctl on such a descriptor sends the 136-byte xen_sysctl and
 *    the caller buffers its livepatch op points at (Xen 4.14+ layout) over the socket, copies the structure back,
 *    and writes into the caller's buffers exactly what the hypervisor wrote (for LIST: the entries returned, the
 *    name and metadata bytes it reports); the hypercall's negative result becomes errno, as privcmd does;
 *  - any other ioctl on it fails with ENOTTY (libxendevicemodel probes one and copes).
 *
 * Built by the tests with gcc -shared -fPIC; written for this project.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PRIVCMD "/dev/xen/privcmd"
#define HYPERCALL_DEV "/dev/xen/hypercall"
#define IOCTL_PRIVCMD_HYPERCALL 0x305000UL
#define HYPERVISOR_SYSCTL 35
#define SYSCTL_SIZE 136
#define MAX_FDS 16

static int fake_fds[MAX_FDS];
static int nfake;
static int sock = -1;

static int is_fake(int fd)
{
    for (int i = 0; i < nfake; i++)
        if (fake_fds[i] == fd)
            return 1;
    return 0;
}

static int redirect(const char *path, int flags, int (*real)(const char *, int, ...))
{
    if (strcmp(path, HYPERCALL_DEV) == 0) {
        errno = ENOENT;
        return -1;
    }
    int fd = real("/dev/null", O_RDWR | (flags & O_CLOEXEC));
    if (fd >= 0 && nfake < MAX_FDS)
        fake_fds[nfake++] = fd;
    return fd;
}

#define OPEN_WRAPPER(fn)                                                        \
    int fn(const char *path, int flags, ...)                                    \
    {                                                                           \
        static int (*real)(const char *, int, ...);                             \
        if (!real)                                                              \
            real = dlsym(RTLD_NEXT, #fn);                                       \
        mode_t mode = 0;                                                        \
        if (flags & (O_CREAT | O_TMPFILE)) {                                    \
            va_list ap;                                                         \
            va_start(ap, flags);                                                \
            mode = va_arg(ap, mode_t);                                          \
            va_end(ap);                                                         \
        }                                                                       \
        if ((strcmp(path, PRIVCMD) == 0 || strcmp(path, HYPERCALL_DEV) == 0)) \
            return redirect(path, flags, real);                                 \
        return real(path, flags, mode);                                         \
    }
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

int openat(int dirfd, const char *path, int flags, ...)
{
    static int (*real)(int, const char *, int, ...);
    static int (*real_open)(const char *, int, ...);
    if (!real) {
        real = dlsym(RTLD_NEXT, "openat");
        real_open = dlsym(RTLD_NEXT, "open");
    }
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if ((strcmp(path, PRIVCMD) == 0 || strcmp(path, HYPERCALL_DEV) == 0))
        return redirect(path, flags, real_open);
    return real(dirfd, path, flags, mode);
}

/* ---- the socket ---------------------------------------------------------------------------------------- */

static int io_all(int write_side, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = write_side ? write(sock, p, len) : read(sock, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

struct buffer {
    uint64_t address;
    uint32_t length;
    uint32_t flags; /* 1 in, 2 out */
};

static void put32(unsigned char **p, uint32_t v) { memcpy(*p, &v, 4); *p += 4; }
static void put64(unsigned char **p, uint64_t v) { memcpy(*p, &v, 8); *p += 8; }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Sends one sysctl; returns the hypercall's rc, the reply's sysctl in out_sysctl, the reply (to free) in *reply. */
static int forward(const unsigned char *sysctl, const struct buffer *b, int n, unsigned char *out_sysctl,
                   unsigned char **reply, uint32_t *reply_len)
{
    if (sock < 0) {
        const char *path = getenv("XLP_SHIM_SOCKET");
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (!path || strlen(path) >= sizeof(a.sun_path)) {
            fprintf(stderr, "privcmd-shim: set XLP_SHIM_SOCKET to the sandbox socket\n");
            abort();
        }
        strcpy(a.sun_path, path);
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof(a)) < 0) {
            fprintf(stderr, "privcmd-shim: cannot connect to %s\n", path);
            abort();
        }
    }
    size_t size = 16 + SYSCTL_SIZE;
    for (int i = 0; i < n; i++)
        size += 16 + ((b[i].flags & 1) ? b[i].length : 0);
    unsigned char *m = malloc(4 + size), *p = m;
    put32(&p, (uint32_t)size);
    put32(&p, 0x51504c58); /* XLPQ */
    put32(&p, 1);
    put32(&p, SYSCTL_SIZE);
    put32(&p, (uint32_t)n);
    memcpy(p, sysctl, SYSCTL_SIZE);
    p += SYSCTL_SIZE;
    for (int i = 0; i < n; i++) {
        put64(&p, b[i].address);
        put32(&p, b[i].length);
        put32(&p, b[i].flags);
        if (b[i].flags & 1) {
            memcpy(p, (const void *)(uintptr_t)b[i].address, b[i].length);
            p += b[i].length;
        }
    }
    unsigned char len[4];
    if (io_all(1, m, 4 + size) || io_all(0, len, 4)) {
        fprintf(stderr, "privcmd-shim: the sandbox connection failed\n");
        abort();
    }
    free(m);
    *reply_len = get32(len);
    *reply = malloc(*reply_len);
    if (io_all(0, *reply, *reply_len) || get32(*reply) != 0x52504c58 || get32(*reply + 8) != SYSCTL_SIZE) {
        fprintf(stderr, "privcmd-shim: malformed reply\n");
        abort();
    }
    memcpy(out_sysctl, *reply + 16, SYSCTL_SIZE);
    return (int32_t)get32(*reply + 4);
}

/* The bytes the reply returned for the buffer at address (NULL when absent). */
static const unsigned char *returned(const unsigned char *reply, uint32_t reply_len, uint64_t address)
{
    uint32_t count = get32(reply + 12);
    const unsigned char *p = reply + 16 + SYSCTL_SIZE;
    for (uint32_t i = 0; i < count && p + 12 <= reply + reply_len; i++) {
        uint32_t len = get32(p + 8);
        if (get64(p) == address)
            return p + 12;
        p += 12 + len;
    }
    return NULL;
}

static void copy_back(const unsigned char *reply, uint32_t reply_len, uint64_t address, size_t length)
{
    const unsigned char *data = returned(reply, reply_len, address);
    if (data && length)
        memcpy((void *)(uintptr_t)address, data, length);
}

/* offsets in struct xen_sysctl (Xen 4.14+ layout): the livepatch op at 8, its union at 16 */
#define OP_CMD 8
#define U 16

static long sysctl_call(unsigned char *sysctl)
{
    uint32_t cmd = get32(sysctl + OP_CMD);
    struct buffer b[5] = { 0 };
    int n = 0;
    unsigned char back[SYSCTL_SIZE], *reply;
    uint32_t reply_len;
    int rc;

    if (get32(sysctl) != 27 /* XEN_SYSCTL_livepatch_op */)
        return -38; /* ENOSYS: only live patching is served */
    switch (cmd) {
    case 0: /* UPLOAD: name, size, payload */
        b[n++] = (struct buffer){ get64(sysctl + U), (uint16_t)get32(sysctl + U + 8), 1 };
        b[n++] = (struct buffer){ get64(sysctl + U + 24), (uint32_t)get64(sysctl + U + 16), 1 };
        break;
    case 1: /* GET */
    case 3: /* ACTION */
        b[n++] = (struct buffer){ get64(sysctl + U), (uint16_t)get32(sysctl + U + 8), 1 };
        break;
    case 2: { /* LIST */
        uint32_t nr = get32(sysctl + U + 8);
        if (nr == 0 || nr > 1024)
            break;
        /* Size the name and metadata buffers from a probe: whatever the hypervisor writes fits in its totals. */
        unsigned char probe[SYSCTL_SIZE];
        memcpy(probe, sysctl, 16);
        memset(probe + 16, 0, SYSCTL_SIZE - 16);
        rc = forward(probe, NULL, 0, back, &reply, &reply_len);
        free(reply);
        uint32_t names = rc == 0 ? get32(back + U + 16) : 0, meta = rc == 0 ? get32(back + U + 20) : 0;
        b[n++] = (struct buffer){ get64(sysctl + U + 24), nr * 8, 2 };   /* status */
        b[n++] = (struct buffer){ get64(sysctl + U + 32), names, 2 };    /* name */
        b[n++] = (struct buffer){ get64(sysctl + U + 40), nr * 4, 2 };   /* len */
        b[n++] = (struct buffer){ get64(sysctl + U + 48), meta, 2 };     /* metadata */
        b[n++] = (struct buffer){ get64(sysctl + U + 56), nr * 4, 2 };   /* metadata_len */
        break;
    }
    }
    rc = forward(sysctl, b, n, back, &reply, &reply_len);
    if (cmd == 2 && n == 5 && rc > 0) {
        /* What Xen writes: rc entries of each array, and the name and metadata bytes it reports. */
        copy_back(reply, reply_len, b[0].address, (size_t)rc * 8);
        copy_back(reply, reply_len, b[1].address, get32(back + U + 16));
        copy_back(reply, reply_len, b[2].address, (size_t)rc * 4);
        copy_back(reply, reply_len, b[3].address, get32(back + U + 20));
        copy_back(reply, reply_len, b[4].address, (size_t)rc * 4);
    }
    free(reply);
    memcpy(sysctl, back, SYSCTL_SIZE);
    return rc;
}

int ioctl(int fd, unsigned long request, ...)
{
    static int (*real)(int, unsigned long, ...);
    if (!real)
        real = dlsym(RTLD_NEXT, "ioctl");
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!is_fake(fd))
        return real(fd, request, arg);
    if (request != IOCTL_PRIVCMD_HYPERCALL) {
        errno = ENOTTY;
        return -1;
    }
    uint64_t *call = arg; /* { op, arg[5] } */
    if (call[0] != HYPERVISOR_SYSCTL) {
        errno = ENOSYS;
        return -1;
    }
    long rc = sysctl_call((unsigned char *)(uintptr_t)call[1]);
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return (int)rc;
}
