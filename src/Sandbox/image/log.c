/*
 * The log: a ring of bytes the host drains (head and tail are byte counts), the console of the sandbox
 * hypervisor. Payloads' hooks write to it through sandbox_log and friends.
 */
#include "xen.h"

#define LOG_SIZE 65536
char sandbox_log_ring[LOG_SIZE];
volatile uint64_t sandbox_log_head;
volatile uint64_t sandbox_bugs;

static void put(const char *s)
{
    uint64_t h = sandbox_log_head;
    for ( ; *s; s++, h++ )
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
    for ( ; prefix[i] && i < 100; i++ )
        buf[i] = prefix[i];
    char digits[24];
    int n = 0;
    unsigned long v = value < 0 ? -(unsigned long)value : (unsigned long)value;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while ( v && n < 24 );
    if ( value < 0 )
        buf[i++] = '-';
    while ( n )
        buf[i++] = digits[--n];
    buf[i] = 0;
    put(buf);
    return value;
}
