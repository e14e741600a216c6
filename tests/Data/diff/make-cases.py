#!/usr/bin/env python3
"""Writes cases/<name>.patch: one source patch per diff test case, against unit.c, other.c, xen.h, entry.S.
Run it after changing those files (the patches' line numbers follow them), then review the patches' diff."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', '..', 'tools'))
source_patches = __import__('source-patches')


def case(name, note, *edits):
    source_patches.write_patch(os.path.join(HERE, 'cases', name + '.patch'), '# ' + note, HERE, edits)


shutil.rmtree(os.path.join(HERE, 'cases'), ignore_errors=True)
os.makedirs(os.path.join(HERE, 'cases'))
U = 'unit.c'
case('string', 'a string literal', (U, 'return "-base";', 'return "-patched";'))
case('logic-static', 'logic in a static function', (U, 'return x * 3 + hits;', 'return x * 4 + hits;'))
case('new-function', 'a new static function, called by a changed one',
     (U, 'int compute(int x)\n{\n    hits++;\n    return scale(x) + 1;',
      'static noinline int twice(int x)\n{\n    return x * 2 + hits;\n}\n\nint compute(int x)\n{\n    hits++;\n    return twice(scale(x)) + 1;'))
case('new-variable', 'a new variable', (U, 'int counter_next(void)\n{', 'static int seen;\n\nint counter_next(void)\n{\n    seen++;'))
case('static-local', 'logic around a static local: the original keeps its storage', (U, 'return ++calls;', 'calls += 2;\n    return calls;'))
case('line-only', 'only line numbers move', (U, '#include "xen.h"\n', '#include "xen.h"\n\n/* Lines added above everything: every __LINE__ moves. */\n\n'))
case('comment-only', 'a comment', (U, 'what the diff tests patch. */', 'what the diff tests patch (a comment). */'))
case('bug-frame', 'a changed function with a WARN', (U, 'if ( x < 0 )\n        WARN();', 'if ( x < -1 )\n        WARN();'))
case('extable', 'a changed function with an exception-table entry and its fixup', (U, 'return read_safe(p, &v) ? -1 : v;', 'return read_safe(p, &v) ? -2 : v + 1;'))
case('alternative', 'only the replacement of an alternative changes', (U, '"lfence", 5)', '"mfence", 5)'))
case('changed-data', 'the initial value of an existing variable', (U, 'int tunable = 5;', 'int tunable = 6;'))
case('init-code', '__init code', (U, 'boot_flag = 2;', 'boot_flag = 3;'))
case('init-named', 'a function whose name begins with init, which is no __init function', (U, 'return x + hits;\n}\n\nint __init', 'return x - hits;\n}\n\nint __init'))
case('init-data', '__init data', (U, 'int __initdata boot_flag = 1;', 'int __initdata boot_flag = 4;'))
case('percpu-new', 'a new per-CPU variable', (U, 'DEFINE_PER_CPU(int, ticks);', 'DEFINE_PER_CPU(int, ticks);\nDEFINE_PER_CPU(int, tocks);'),
     (U, 'this_cpu(ticks)++;', 'this_cpu(ticks)++;\n    this_cpu(tocks)++;'))
case('constant-table', 'a static constant table: its users get a new copy', (U, '{ 1, 2, 3, 4 }', '{ 1, 2, 3, 5 }'))
case('hooks', "a load hook, with Xen's macro",
     (U, 'int __init unit_init(void)', 'static void patch_loaded(void)\n{\n    printk("loaded\\n");\n}\nLIVEPATCH_LOAD_HOOK(patch_loaded);\n\nint __init unit_init(void)'))
case('cold', 'a function with a cold part', (U, 'return x * 2;\n}\n\nvoid tick', 'return x * 3;\n}\n\nvoid tick'))
case('clone', 'a gcc clone (mul_add.constprop.N)', (U, 'return a * b + c + tunable;', 'return a * b - c + tunable;'))
case('entry', 'assembly entry code', ('entry.S', 'movl $1, %eax', 'movl $2, %eax'))
case('unknown-section', 'a function in a section the tool does not know', (U, 'return x + 1;\n}\n', 'return x + 2;\n}\n'))
case('header', 'a header change: every object is rebuilt, only the code using the changed inline changes',
     ('xen.h', '#define DIFF_XEN_H\n', '#define DIFF_XEN_H\n\n/* Lines added to a header move no __LINE__ of the sources. */\n'),
     ('xen.h', '"3: movl $-14, %0\\n"', '"3: movl $-22, %0\\n"'))
