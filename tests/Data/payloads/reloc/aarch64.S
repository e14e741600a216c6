/* arm64: the relocation types of the livepatch loader, in range, against the hypervisor and the payload. */
    .text
    .globl asm_func
    .type asm_func, %function
asm_func:
    bl hv_function                          /* R_AARCH64_CALL26 */
    b xen_tiny                              /* R_AARCH64_JUMP26 */
    b.eq asm_target                         /* R_AARCH64_CONDBR19 */
    tbz x0, #3, asm_target                  /* R_AARCH64_TSTBR14 */
    adr x1, asm_target                      /* R_AARCH64_ADR_PREL_LO21 */
    adrp x2, hv_buffer                      /* R_AARCH64_ADR_PREL_PG_HI21 */
    add x2, x2, :lo12:hv_buffer             /* R_AARCH64_ADD_ABS_LO12_NC */
    ldrb w3, [x2, :lo12:hv_buffer]          /* R_AARCH64_LDST8_ABS_LO12_NC */
    ldrh w3, [x2, :lo12:hv_buffer]          /* R_AARCH64_LDST16_ABS_LO12_NC */
    ldr w3, [x2, :lo12:hv_buffer]           /* R_AARCH64_LDST32_ABS_LO12_NC */
    ldr x3, [x2, :lo12:hv_buffer]           /* R_AARCH64_LDST64_ABS_LO12_NC */
    ldr q3, [x2, :lo12:hv_buffer]           /* R_AARCH64_LDST128_ABS_LO12_NC */
    movz x4, #:abs_g3:hv_counter            /* R_AARCH64_MOVW_UABS_G3 */
    movk x4, #:abs_g2_nc:hv_counter         /* R_AARCH64_MOVW_UABS_G2_NC */
    movk x4, #:abs_g1_nc:hv_counter         /* R_AARCH64_MOVW_UABS_G1_NC */
    movk x4, #:abs_g0_nc:hv_counter         /* R_AARCH64_MOVW_UABS_G0_NC */
    movz x5, #:prel_g0:asm_target           /* R_AARCH64_MOVW_PREL_G0 */
    movz x5, #:prel_g1:hv_counter           /* R_AARCH64_MOVW_PREL_G1 */
    movk x5, #:prel_g0_nc:hv_counter        /* R_AARCH64_MOVW_PREL_G0_NC */
    movz x6, #:prel_g3:hv_counter           /* R_AARCH64_MOVW_PREL_G3 */
    movk x6, #:prel_g2_nc:hv_counter        /* R_AARCH64_MOVW_PREL_G2_NC */
    movk x6, #:prel_g1_nc:hv_counter        /* R_AARCH64_MOVW_PREL_G1_NC */
    adrp x7, hv_counter                     /* R_AARCH64_ADR_PREL_PG_HI21 */
    ret

    .section .text.other, "ax", %progbits
asm_target:
    b asm_func                              /* R_AARCH64_JUMP26 back */

    .section .rodata, "a"
    .balign 8
    .xword hv_function                      /* R_AARCH64_ABS64 */
    .xword asm_target - .                   /* R_AARCH64_PREL64 */
    .word hv_counter - .                    /* R_AARCH64_PREL32 */
    .hword asm_target - .                   /* R_AARCH64_PREL16 */
    .hword 0
    .word 0                                 /* Xen checks 4 bytes for every arm64 relocation, even 16-bit ones */

    .section .livepatch.hooks.load, "a"
    .balign 8
    .xword asm_func

    .section .note.GNU-stack, "", %progbits
