/* Entry code, as Xen's x86_64/entry.S keeps it: assembly in .text.entry, labels without sizes. */
    .section .text.entry, "ax", @progbits
    .globl entry_int80
entry_int80:
    endbr64
    movl $1, %eax
    ret

    .section .note.GNU-stack, "", @progbits
