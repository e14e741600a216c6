/*
 * xen_hello_world, as in Xen's tests: replaces xen_extra_version with a function returning "Hello World".
 * Load hooks run at every apply, unload hooks at every revert; cnt lives in .bss, so once reverted the
 * payload cannot be applied again (it must be unloaded and uploaded anew).
 */
#include "livepatch.h"

static unsigned int cnt;

const char *xen_extra_version(void)
{
    return "Hello World";
}

static void apply_hook(void)
{
    printk("xen_hello_world: Hook executing.\n");
}

static void revert_hook(void)
{
    printk("xen_hello_world: Hook unloaded.\n");
}

static void hi_func(void)
{
    cnt++;
    printk("xen_hello_world: hi_func: Hi! (called %u times)\n", cnt);
}

static void check_fnc(void)
{
    printk("xen_hello_world: check_fnc: Hi func called %u times\n", cnt);
    if (cnt == 0 || cnt > 2)
        printk("xen_hello_world: check_fnc: BUG: cnt out of range\n");
}

LIVEPATCH_LOAD_HOOK(apply_hook);
LIVEPATCH_LOAD_HOOK(hi_func);
LIVEPATCH_UNLOAD_HOOK(revert_hook);
LIVEPATCH_UNLOAD_HOOK(hi_func);
LIVEPATCH_UNLOAD_HOOK(check_fnc);
