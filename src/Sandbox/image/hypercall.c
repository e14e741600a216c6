/*
 * The entry vCPUs call, hypercall(op, a1, a2, a3), dispatching through a table in read-only data, as Xen's
 * hypercall table; the first entry boots the hypervisor (runs its __init code) once.
 */
#include "xen.h"

long do_xen_version(long cmd, long arg, long unused);

/* Set by the host; the hold hypercall spins while it is non-zero. */
volatile int sandbox_hold_gate;
volatile uint64_t sandbox_held;

/* 0: not booted, 1: booting, 2: booted. */
static volatile int boot_state;

/* Holds its vCPU inside the hypervisor while the host keeps the gate closed. */
static long do_hold(long a1, long a2, long a3)
{
    (void)a1; (void)a2; (void)a3;
    __atomic_add_fetch(&sandbox_held, 1, __ATOMIC_SEQ_CST);
    while ( sandbox_hold_gate )
        __builtin_ia32_pause();
    return 0;
}

int xen_minor_version(void);

static long do_count(long a1, long a2, long a3)
{
    (void)a2; (void)a3;
    long total = 0;
    for ( long i = 0; i < a1; i++ )
        total += xen_minor_version();
    return total;
}

typedef long (*hypercall_fn)(long, long, long);

static hypercall_fn const hypercall_table[] = {
    [HYPERCALL_xen_version] = do_xen_version,
    [HYPERCALL_hold] = do_hold,
    [HYPERCALL_count] = do_count,
    [HYPERCALL_query] = sandbox_query,
};

/* The boot: what Xen's __start_xen does before the first guest runs, here on the first entry. */
noinline void sandbox_boot(void)
{
    int expected = 0;
    if ( __atomic_compare_exchange_n(&boot_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) )
    {
        sandbox_setup_limits();
        __atomic_store_n(&boot_state, 2, __ATOMIC_RELEASE);
        return;
    }
    while ( __atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) != 2 )
        __builtin_ia32_pause();
}

long hypercall(unsigned long op, long a1, long a2, long a3)
{
    if ( unlikely(boot_state != 2) )
        sandbox_boot();
    if ( op >= sizeof(hypercall_table) / sizeof(hypercall_table[0]) )
        return -38;
    return hypercall_table[op](a1, a2, a3);
}

/* Calls fn n times: the patched-call benchmark measures this loop, in native code. */
long call_loop(int (*fn)(void), long n)
{
    long total = 0;
    for ( long i = 0; i < n; i++ )
        total += fn();
    return total;
}
