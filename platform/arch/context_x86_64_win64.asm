; Context switch for x86_64 Windows (Microsoft x64 ABI), MASM syntax for MSVC.
; The same code as context_x86_64_win64.S (GAS, mingw-w64): keep them in step,
; and read that file for the frame layout and why the TIB bounds are saved.
;   [rsp+0]   xmm6..xmm15      [rsp+160] MXCSR, x87 CW
;   [rsp+168] StackBase, StackLimit, DeallocationStack    [rsp+192] ExceptionList
;   [rsp+200] r15 r14 r13 r12 rsi rdi rbx rbp              [rsp+264] return

.code

; void keel_context_switch(Context* from /*rcx*/, const Context* to /*rdx*/)
keel_context_switch PROC
        push    rbp
        push    rbx
        push    rdi
        push    rsi
        push    r12
        push    r13
        push    r14
        push    r15
        sub     rsp, 200
        movaps  [rsp+0], xmm6
        movaps  [rsp+16], xmm7
        movaps  [rsp+32], xmm8
        movaps  [rsp+48], xmm9
        movaps  [rsp+64], xmm10
        movaps  [rsp+80], xmm11
        movaps  [rsp+96], xmm12
        movaps  [rsp+112], xmm13
        movaps  [rsp+128], xmm14
        movaps  [rsp+144], xmm15
        stmxcsr dword ptr [rsp+160]
        fnstcw  word ptr [rsp+164]
        mov     rax, qword ptr gs:[08h]
        mov     [rsp+168], rax
        mov     rax, qword ptr gs:[10h]
        mov     [rsp+176], rax
        mov     rax, qword ptr gs:[1478h]
        mov     [rsp+184], rax
        mov     rax, qword ptr gs:[0]
        mov     [rsp+192], rax

        mov     [rcx], rsp
        mov     rsp, [rdx]

        movaps  xmm6, [rsp+0]
        movaps  xmm7, [rsp+16]
        movaps  xmm8, [rsp+32]
        movaps  xmm9, [rsp+48]
        movaps  xmm10, [rsp+64]
        movaps  xmm11, [rsp+80]
        movaps  xmm12, [rsp+96]
        movaps  xmm13, [rsp+112]
        movaps  xmm14, [rsp+128]
        movaps  xmm15, [rsp+144]
        ldmxcsr dword ptr [rsp+160]
        fldcw   word ptr [rsp+164]
        mov     rax, [rsp+168]
        mov     qword ptr gs:[08h], rax
        mov     rax, [rsp+176]
        mov     qword ptr gs:[10h], rax
        mov     rax, [rsp+184]
        mov     qword ptr gs:[1478h], rax
        mov     rax, [rsp+192]
        mov     qword ptr gs:[0], rax
        add     rsp, 200
        pop     r15
        pop     r14
        pop     r13
        pop     r12
        pop     rsi
        pop     rdi
        pop     rbx
        pop     rbp
        ret
keel_context_switch ENDP

keel_context_start PROC
        mov     rcx, r12
        call    r13
        ud2
keel_context_start ENDP

; void keel_context_make(Context* ctx /*rcx*/, const ContextStack* s /*rdx*/,
;                        void (*entry)(void*) /*r8*/, void* arg /*r9*/)
keel_context_make PROC
        mov     rax, [rdx+8]
        and     rax, -16
        xor     r10d, r10d
        mov     [rax-8], r10
        mov     [rax-16], r10
        mov     [rax-24], r10
        mov     [rax-32], r10
        mov     [rax-40], r10
        mov     [rax-48], r10
        lea     r11, [rax-320]
        xorps   xmm0, xmm0
        movaps  [r11+0], xmm0
        movaps  [r11+16], xmm0
        movaps  [r11+32], xmm0
        movaps  [r11+48], xmm0
        movaps  [r11+64], xmm0
        movaps  [r11+80], xmm0
        movaps  [r11+96], xmm0
        movaps  [r11+112], xmm0
        movaps  [r11+128], xmm0
        movaps  [r11+144], xmm0
        stmxcsr dword ptr [r11+160]
        fnstcw  word ptr [r11+164]
        mov     rax, [rdx+8]
        mov     [r11+168], rax
        mov     rax, [rdx+0]
        mov     [r11+176], rax
        mov     rax, [rdx+16]
        mov     [r11+184], rax
        mov     qword ptr [r11+192], -1
        mov     [r11+200], r10
        mov     [r11+208], r10
        mov     [r11+216], r8
        mov     [r11+224], r9
        mov     [r11+232], r10
        mov     [r11+240], r10
        mov     [r11+248], r10
        mov     [r11+256], r10
        lea     rax, keel_context_start
        mov     [r11+264], rax
        mov     [rcx], r11
        ret
keel_context_make ENDP

END
