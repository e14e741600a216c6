/* A second source file: the functions unit.c calls, and one that uses a header macro. */
#include "xen.h"

void printk(const char *fmt, ...)
{
    (void)fmt;
}

void do_crash(const char *file, int line)
{
    (void)file;
    (void)line;
    for ( ;; )
        asm volatile ( "hlt" );
}

int other_checked(int x)
{
    if ( x > 10 )
        WARN();
    return x + 1;
}
