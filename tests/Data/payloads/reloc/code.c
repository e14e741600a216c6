/*
 * Relocation corpus: code and data that reference the hypervisor (functions, data, strings), each other
 * (static functions, function-pointer tables, static locals) and their own strings. Compiled at several
 * optimisation levels and code models; the loader's result must equal GNU ld's at the same addresses.
 */
#include "livepatch.h"

extern int hv_counter;
extern char hv_buffer[64];
extern int hv_function(int x);
extern void xen_tiny(void);
extern const char *xen_extra_version(void);

typedef int (*op_fn)(int);

static int twice(int x) { return 2 * x; }
static int plus_one(int x) { return x + 1; }

static op_fn table[] = { twice, plus_one, hv_function };
const char *const names[] = { "twice", "plus_one", "hv_function" };
static int local_counter = 5;
int global_zeroed[16];

__attribute__((noinline)) int reloc_compute(int i)
{
    static int calls;
    calls++;
    hv_buffer[i & 63] = names[i % 3][0];
    return table[i % 3](i) + hv_counter + local_counter + calls + global_zeroed[i & 15];
}

__attribute__((noinline)) const char *reloc_strings(int i)
{
    xen_tiny();
    switch (i) {
    case 0: return "zero";
    case 1: return "one";
    case 2: return xen_extra_version();
    case 3: return names[1];
    case 4: return "four";
    case 5: return "five";
    default: return "many";
    }
}

static void reloc_load_hook(void)
{
    hv_counter += reloc_compute(3) + (int)(long)reloc_strings(2)[0];
}

LIVEPATCH_LOAD_HOOK(reloc_load_hook);
