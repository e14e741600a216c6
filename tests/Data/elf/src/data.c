/* Data: initialised, zeroed (.bss), read-only, strings, static locals, pointer tables, common symbols. */
typedef int (*op_fn)(int, int);

static int add(int a, int b) { return a + b; }
static int sub(int a, int b) { return a - b; }
static int mul(int a, int b) { return a * b; }

const op_fn operations[] = { add, sub, mul };          /* function-pointer table: relocations in rodata */
static op_fn local_ops[2] = { mul, add };

int initialised = 0x1234;
long long big_value = 0x1122334455667788LL;
int zeroed[64];
static char local_buffer[100];
const char greeting[] = "Hello World";
const char *const messages[] = { "first", "second", greeting };   /* pointers to strings */
int tentative;                                             /* SHN_COMMON with -fcommon */

int counter(void)
{
    static int calls;          /* static local */
    static const char *last = "never";
    calls++;
    last = messages[calls % 3];
    local_buffer[calls % 100] = last[0];
    return calls + tentative;
}

int apply(unsigned i, int a, int b) { return i < 2 ? local_ops[i](a, b) : operations[i % 3](a, b); }

const char *name_of(int i)
{
    switch (i) {                 /* jump table */
    case 0: return "zero";
    case 1: return "one";
    case 2: return "two";
    case 3: return "three";
    case 4: return "four";
    case 5: return "five";
    case 6: return "six";
    default: return "many";
    }
}
