/* Compiled with -fcf-protection=branch: these functions start with ENDBR64 on x86. */
#pragma GCC visibility push(hidden)

__attribute__((noinline)) int cet_function(int x)
{
    return x * 3 + 1;
}

/* ENDBR64 then 4 bytes of code: a patch must keep its ENDBR64 and needs 4 + 5 bytes. */
__attribute__((noinline, naked)) void cet_short(void)
{
    __asm__ volatile("nop\n\tnop\n\tnop\n\tret"); /* gcc puts the ENDBR64 before it */
}
