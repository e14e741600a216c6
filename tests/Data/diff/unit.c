/* A hypervisor-like source file: what the diff tests patch. */
#include "xen.h"

int tunable = 5;
int __initdata boot_flag = 1;
static int hits;
static const int table[4] = { 1, 2, 3, 4 };
DEFINE_PER_CPU(int, ticks);

const char *xen_extra_version(void)
{
    return "-base";
}

static noinline int scale(int x)
{
    return x * 3 + hits;
}

int compute(int x)
{
    hits++;
    return scale(x) + 1;
}

int counter_next(void)
{
    static int calls;
    return ++calls;
}

int lookup(int i)
{
    return table[i & 3];
}

int checked(int x)
{
    if ( x < 0 )
        WARN();
    return x;
}

void guard(int x)
{
    if ( x > 1000 )
        crash();
}

int probe(const int *p)
{
    int v;
    return read_safe(p, &v) ? -1 : v;
}

void barrier_fn(int *p)
{
    *p = 1;
    /* An empty replacement first: the next one starts where it does (Xen has many such pairs). */
    asm volatile ( ALTERNATIVE("nop", "", 7) ::: "memory" );
    asm volatile ( ALTERNATIVE("nop; nop; nop", "lfence", 5) ::: "memory" );
    *p = 2;
}

static noinline int mul_add(int a, int b, int c)
{
    return a * b + c + tunable;
}

int apply_mul(int x)
{
    return mul_add(x, 7, 3);
}

int maybe_fail(int x)
{
    if ( unlikely(x == 42) )
    {
        printk("maybe_fail: %d\n", x);
        return -1;
    }
    return x * 2;
}

void tick(void)
{
    this_cpu(ticks)++;
}

/* Not __init: only its name begins with init (its section is .text.init_count). */
int init_count(int x)
{
    return x + hits;
}

int __init unit_init(void)
{
    boot_flag = 2;
    return tunable;
}

__attribute__((__section__(".weird.text"))) int weird(int x)
{
    return x + 1;
}
