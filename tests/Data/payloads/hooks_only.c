/* A payload with hooks and no .livepatch.funcs (Xen's action_hooks_nofunc shape). */
#include "livepatch.h"

static int hooks_only_count;

static void hooks_only_load(void)
{
    hooks_only_count++;
}

LIVEPATCH_LOAD_HOOK(hooks_only_load);
