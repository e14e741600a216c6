/*
 * sysctl-probe: raw XEN_SYSCTL_livepatch_op calls from dom0, one per line of a command file, each answered on
 * stdout with what the hypervisor returned and wrote back. It reaches what no tool shows: the op's flags word,
 * LIST's buffer sizes in and out, the action's pad word, sub-ops that do not exist.
 *
 *   usage: sysctl-probe COMMANDS        (run as root in dom0; /dev/xen/privcmd)
 *
 * Commands (numbers in C syntax):
 *   interface V                           the XEN_SYSCTL_INTERFACE_VERSION to send (default 0x16)
 *   upload NAME FILE FLAGS                UPLOAD of FILE under NAME, the op's flags word FLAGS
 *   get NAME FLAGS                        GET
 *   list IDX NR NAMESZ METASZ             LIST with name_total_size NAMESZ and metadata_total_size METASZ going in,
 *                                         buffers of that many bytes (and NR entries of status and lengths)
 *   action NAME CMD FLAGS PAD             ACTION (timeout 0: the hypervisor's 30 ms)
 *   op CMD FLAGS                          a sub-op CMD with an all-zero union
 *   sleep MS                              wait (an action completes asynchronously)
 * Each answer is one line: the command, ": rc=N" and, for GET and LIST, what came back.
 *
 * The layout is Xen 4.14+'s (public/sysctl.h): xen_sysctl 136 bytes, the livepatch op at 8, its union at 16.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct privcmd_hypercall { uint64_t op; uint64_t arg[5]; };
#define IOCTL_PRIVCMD_HYPERCALL _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))
#define HYPERVISOR_sysctl 35
#define XEN_SYSCTL_livepatch_op 27

/* One locked arena for the sysctl and every buffer a call hands over. */
#define ARENA (4u << 20)
static uint8_t *arena;
static uint32_t interface_version = 0x16;
static int privcmd;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The sysctl at arena+0; the op at +8, its union at +16. Buffers from +4096 on. */
static uint8_t *sysctl_begin(uint32_t cmd, uint32_t flags)
{
    memset(arena, 0, 4096);
    put32(arena, XEN_SYSCTL_livepatch_op);
    put32(arena + 4, interface_version);
    put32(arena + 8, cmd);
    put32(arena + 12, flags);
    return arena + 16;
}

static int sysctl_call(void)
{
    struct privcmd_hypercall h = { .op = HYPERVISOR_sysctl, .arg = { (uint64_t)(uintptr_t)arena } };
    int rc = ioctl(privcmd, IOCTL_PRIVCMD_HYPERCALL, &h);
    return rc < 0 ? -errno : rc;
}

/* xen_livepatch_name at u: a handle to NAME (with its NUL) at buffer, the size, zero pad. */
static void put_name(uint8_t *u, uint8_t *buffer, const char *name)
{
    size_t n = strlen(name) + 1;
    memcpy(buffer, name, n);
    put64(u, (uint64_t)(uintptr_t)buffer);
    put32(u + 8, (uint32_t)n);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sysctl-probe COMMANDS\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) { perror(argv[1]); return 1; }
    privcmd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    if (privcmd < 0) { perror("/dev/xen/privcmd"); return 1; }
    arena = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (arena == MAP_FAILED || mlock(arena, ARENA)) { perror("arena"); return 1; }
    setvbuf(stdout, NULL, _IOLBF, 0);

    char line[512], a[256], b[256];
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        unsigned long x, y, z, w;
        uint8_t *u;
        int rc;
        if (sscanf(line, "interface %li", (long *)&x) == 1) {
            interface_version = (uint32_t)x;
            printf("%s\n", line);
        } else if (sscanf(line, "sleep %lu", &x) == 1) {
            struct timespec t = { (time_t)(x / 1000), (long)(x % 1000) * 1000000 };
            while (nanosleep(&t, &t) && errno == EINTR)
                ;
        } else if (sscanf(line, "upload %255s %255s %li", a, b, (long *)&x) == 3) {
            int fd = open(b, O_RDONLY);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) || (size_t)st.st_size > ARENA - 8192) { printf("%s: cannot read %s\n", line, b); continue; }
            u = sysctl_begin(0, (uint32_t)x);
            uint8_t *data = arena + 8192;
            if (read(fd, data, (size_t)st.st_size) != st.st_size) { printf("%s: cannot read %s\n", line, b); close(fd); continue; }
            close(fd);
            put_name(u, arena + 4096, a);
            put64(u + 16, (uint64_t)st.st_size);
            put64(u + 24, (uint64_t)(uintptr_t)data);
            printf("%s: rc=%d\n", line, sysctl_call());
        } else if (sscanf(line, "get %255s %li", a, (long *)&x) == 2) {
            u = sysctl_begin(1, (uint32_t)x);
            put_name(u, arena + 4096, a);
            rc = sysctl_call();
            printf("%s: rc=%d state=%u status_rc=%d\n", line, rc, get32(u + 16), (int32_t)get32(u + 20));
        } else if (sscanf(line, "list %lu %lu %lu %lu", &x, &y, &z, &w) == 4) {
            uint8_t *status = arena + 4096, *len = status + 65536, *mlen = len + 65536, *names = mlen + 65536, *meta = names + 262144;
            /* Xen stops a LIST early when hypercall_preempt_check() says so (a busy host): a positive rc below NR
             * with entries remaining. A toolstack asks again; so does the probe, so that the answer is the one an
             * unhurried hypervisor gives, which is what the kept output and our core record. */
            for (int tries = 0; tries < 1000; tries++) {
                u = sysctl_begin(2, 0);
                memset(status, 0xee, 4096 * 128);
                put32(u + 4, (uint32_t)x);
                put32(u + 8, (uint32_t)y);
                put32(u + 16, (uint32_t)z);
                put32(u + 20, (uint32_t)w);
                put64(u + 24, (uint64_t)(uintptr_t)status);
                put64(u + 32, (uint64_t)(uintptr_t)names);
                put64(u + 40, (uint64_t)(uintptr_t)len);
                put64(u + 48, (uint64_t)(uintptr_t)meta);
                put64(u + 56, (uint64_t)(uintptr_t)mlen);
                rc = sysctl_call();
                if (!(rc > 0 && (unsigned long)rc < y && get32(u + 8) > 0))
                    break;
            }
            printf("%s: rc=%d version=%u nr=%u name_total_size=%u metadata_total_size=%u", line, rc,
                   get32(u), get32(u + 8), get32(u + 16), get32(u + 20));
            uint32_t at = 0;
            for (int k = 0; k < rc && k < 1024; k++) {
                uint32_t n = get32(len + 4 * k);
                printf(" [%.*s len=%u state=%u rc=%d metadata_len=%u]", n < 128 ? (int)n : 128, names + at, n,
                       get32(status + 8 * k), (int32_t)get32(status + 8 * k + 4), get32(mlen + 4 * k));
                at += n;
            }
            printf("\n");
        } else if (sscanf(line, "action %255s %lu %li %li", a, &x, (long *)&y, (long *)&z) == 4) {
            u = sysctl_begin(3, 0);
            put_name(u, arena + 4096, a);
            put32(u + 16, (uint32_t)x);
            put32(u + 24, (uint32_t)y);
            put32(u + 28, (uint32_t)z);
            printf("%s: rc=%d\n", line, sysctl_call());
        } else if (sscanf(line, "op %lu %li", &x, (long *)&y) == 2) {
            sysctl_begin((uint32_t)x, (uint32_t)y);
            printf("%s: rc=%d\n", line, sysctl_call());
        } else {
            printf("%s: unknown command\n", line);
        }
    }
    return 0;
}
