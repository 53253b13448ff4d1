// CPU features from CPUID and XCR0 (x86-64); zeros elsewhere.
#define _GNU_SOURCE
#include "CKernels.h"

#include <malloc.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

void sg_cpu_detect(sg_cpu_info *out) {
    memset(out, 0, sizeof *out);
    cpu_set_t set;
    out->logical_cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__x86_64__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned int max_leaf = a;
    memcpy(out->vendor, &b, 4); memcpy(out->vendor + 4, &d, 4); memcpy(out->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned int base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    out->family = (int)(base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family);
    out->model = (int)((base_family == 0x6 || base_family == 0xf) ? (((a >> 16) & 0xf) << 4) + base_model : base_model);
    out->stepping = (int)(a & 0xf);
    out->sse3 = (c >> 0) & 1; out->ssse3 = (c >> 9) & 1; out->sse41 = (c >> 19) & 1; out->sse42 = (c >> 20) & 1;
    out->popcnt = (c >> 23) & 1; out->f16c = (c >> 29) & 1;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int os_ymm = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
    int os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
    int os_amx = (xcr0 & 0x60000) == 0x60000;     // XTILECFG, XTILEDATA
    out->avx = avx && os_ymm; out->fma = fma && os_ymm;
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        out->avx2 = ((b >> 5) & 1) && os_ymm; out->bmi2 = (b >> 8) & 1;
        out->avx512f = ((b >> 16) & 1) && os_zmm; out->avx512dq = ((b >> 17) & 1) && os_zmm;
        out->avx512cd = ((b >> 28) & 1) && os_zmm; out->avx512bw = ((b >> 30) & 1) && os_zmm;
        out->avx512vl = ((b >> 31) & 1) && os_zmm; out->avx512_vnni = ((c >> 11) & 1) && os_zmm;
        out->avx512_fp16 = ((d >> 23) & 1) && os_zmm;
        out->amx_bf16 = ((d >> 22) & 1) && os_amx; out->amx_tile = ((d >> 24) & 1) && os_amx;
        out->amx_int8 = ((d >> 25) & 1) && os_amx;
        unsigned int subleaves = a;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            out->avx_vnni = ((a >> 4) & 1) && os_ymm; out->avx512_bf16 = ((a >> 5) & 1) && os_zmm;
        }
    }
    __get_cpuid(0x80000000, &a, &b, &c, &d);
    if (a >= 0x80000004) {
        unsigned int regs[12];
        for (unsigned int i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
        memcpy(out->brand, regs, 48);
        out->brand[48] = 0;
        // Trim the padding some CPUs put around the name.
        char *s = out->brand; while (*s == ' ') s++;
        memmove(out->brand, s, strlen(s) + 1);
        for (size_t n = strlen(out->brand); n > 0 && out->brand[n - 1] == ' '; n--) out->brand[n - 1] = 0;
    }
#endif
}

int sg_amx_request_permission(void) {
#if defined(__x86_64__) && defined(SYS_arch_prctl)
    // ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 (Linux ≥ 5.16). Granting twice is harmless.
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return 0;
#endif
}

void sg_malloc_retain(int mmap_threshold, int trim_threshold) {
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    mallopt(M_TRIM_THRESHOLD, trim_threshold);
}
