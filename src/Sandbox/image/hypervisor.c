/*
 * The sandbox hypervisor: a freestanding x86-64 image that plays the part of xen-syms. vCPU threads enter it
 * through hypercall(), which dispatches through a table in .rodata; the functions Xen's livepatch tests patch
 * are here (do_xen_version calls xen_extra_version and xen_minor_version), with a function shorter than a
 * jump, a static local, strings, a hypercall that holds its caller (for deadline tests), and a log the
 * payloads' hooks write to. Built with -fcf-protection=branch: like Xen with CET-IBT, functions start with
 * ENDBR64 and patches go after it.
 */
#include "sandbox.h"

static const char extra_version[] = "-sandbox";
static const char major_minor[] = "4.17";

/* The log: a ring of bytes the host drains (head and tail are byte counts). */
#define LOG_SIZE 65536
char sandbox_log_ring[LOG_SIZE];
volatile uint64_t sandbox_log_head;
volatile uint64_t sandbox_bugs;

/* Set by the host; the hold hypercall spins while it is non-zero. */
volatile int sandbox_hold_gate;
volatile uint64_t sandbox_held;

__attribute__((noinline)) const char *xen_extra_version(void)
{
    return extra_version;
}

__attribute__((noinline)) int xen_major_version(void)
{
    return major_minor[0] - '0';
}

__attribute__((noinline)) int xen_minor_version(void)
{
    return 17;
}

/* A lone 'ret' and no ENDBR64: too short for any patch but a 1-byte NOP. */
__attribute__((noinline, nocf_check)) void xen_tiny(void)
{
}

static void put(const char *s)
{
    uint64_t h = sandbox_log_head;
    for (; *s; s++, h++)
        sandbox_log_ring[h % LOG_SIZE] = *s;
    sandbox_log_ring[h % LOG_SIZE] = '\n';
    __atomic_store_n(&sandbox_log_head, h + 1, __ATOMIC_RELEASE);
}

void sandbox_log(const char *message)
{
    put(message);
}

void sandbox_bug(const char *message)
{
    __atomic_add_fetch(&sandbox_bugs, 1, __ATOMIC_SEQ_CST);
    put(message);
}

long sandbox_log_number(const char *prefix, long value)
{
    char buf[128];
    size_t i = 0;
    for (; prefix[i] && i < 100; i++)
        buf[i] = prefix[i];
    char digits[24];
    int n = 0;
    unsigned long v = value < 0 ? -(unsigned long)value : (unsigned long)value;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 24);
    if (value < 0)
        buf[i++] = '-';
    while (n)
        buf[i++] = digits[--n];
    buf[i] = 0;
    put(buf);
    return value;
}

static long do_xen_version(long cmd, long arg, long unused)
{
    static unsigned long calls; /* a static local */
    (void)unused;
    calls++;
    switch (cmd) {
    case XENVER_version:
        return ((long)xen_major_version() << 16) | xen_minor_version();
    case XENVER_extraversion: {
        char *out = (char *)arg;
        const char *s = xen_extra_version();
        size_t i = 0;
        for (; s[i] && i < XEN_EXTRAVERSION_LEN - 1; i++)
            out[i] = s[i];
        out[i] = 0;
        return 0;
    }
    default:
        return -38; /* -ENOSYS */
    }
}

/* Holds its vCPU inside the hypervisor while the host keeps the gate closed. */
static long do_hold(long a1, long a2, long a3)
{
    (void)a1; (void)a2; (void)a3;
    __atomic_add_fetch(&sandbox_held, 1, __ATOMIC_SEQ_CST);
    while (sandbox_hold_gate)
        __builtin_ia32_pause();
    return 0;
}

static long do_count(long a1, long a2, long a3)
{
    (void)a2; (void)a3;
    long total = 0;
    for (long i = 0; i < a1; i++)
        total += xen_minor_version();
    return total;
}

typedef long (*hypercall_fn)(long, long, long);

static hypercall_fn const hypercall_table[] = {
    [HYPERCALL_xen_version] = do_xen_version,
    [HYPERCALL_hold] = do_hold,
    [HYPERCALL_count] = do_count,
};

/* The entry vCPUs call: hypercall(op, a1, a2, a3). */
long hypercall(unsigned long op, long a1, long a2, long a3)
{
    if (op >= sizeof(hypercall_table) / sizeof(hypercall_table[0]))
        return -38;
    return hypercall_table[op](a1, a2, a3);
}

/* Calls fn n times: the patched-call benchmark measures this loop, in native code. */
long call_loop(int (*fn)(void), long n)
{
    long total = 0;
    for (long i = 0; i < n; i++)
        total += fn();
    return total;
}
