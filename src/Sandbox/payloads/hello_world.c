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
    sample_log("Hook executing.");
}

static void revert_hook(void)
{
    sample_log("Hook unloaded.");
}

static void hi_func(void)
{
    cnt++;
    sample_log_number("hi_func: Hi! (called times) ", cnt);
}

static void check_fnc(void)
{
    sample_log_number("check_fnc: Hi func called ", cnt);
    if (cnt == 0 || cnt > 2)
        sample_bug("check_fnc: BUG: cnt out of range");
}

LIVEPATCH_LOAD_HOOK(apply_hook);
LIVEPATCH_LOAD_HOOK(hi_func);
LIVEPATCH_UNLOAD_HOOK(revert_hook);
LIVEPATCH_UNLOAD_HOOK(hi_func);
LIVEPATCH_UNLOAD_HOOK(check_fnc);
