/*
 * Limits: a data table the boot fills (__init code reading __initdata), a static function that clamps a value
 * to it and WARNs when it must, and the query hypercall that reads them. What source patches to the sandbox
 * change: logic in a static function, a static local, new functions and variables; and what they may not:
 * __init code and data, the initial value of a variable.
 */
#include "xen.h"

volatile uint64_t sandbox_warnings;
volatile uint64_t sandbox_last_warn;

/* A tunable with an initial value: live state once booted. */
long __read_mostly sandbox_threshold = 1000;

static int __initdata boot_scale = 10;
static long limits[8];

int __init sandbox_setup_limits(void)
{
    for ( int i = 0; i < 8; i++ )
        limits[i] = (i + 1) * boot_scale;
    return 0;
}

static noinline long clamp(long value, long which)
{
    long limit = limits[which & 7];
    if ( value > limit )
    {
        WARN();
        return limit;
    }
    return value;
}

long sandbox_query(long cmd, long arg, long unused)
{
    static long served; /* a static local: queries answered */
    (void)unused;
    served++;
    switch ( cmd )
    {
    case QUERY_clamp:
        return clamp(arg, arg >> 8);
    case QUERY_limit:
        return limits[arg & 7];
    case QUERY_served:
        return served;
    case QUERY_threshold:
        return sandbox_threshold;
    default:
        return -38; /* -ENOSYS */
    }
}
