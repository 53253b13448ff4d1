/* Plugins that answer the host's request as a plugin built with another SDK or compiler would (the request is
 * eight 64-bit slots: magic, host SDK version, host compiler, plugin SDK version, plugin compiler, registrar,
 * failure message; see SanaGraphKit/Sources/SanaGraphKit/Plugin.swift). Built with -DMODE=... */
#include <stdint.h>

#define MAGIC 0x5347504C55473031ULL

int32_t sanagraph_plugin_entry(uint64_t *slots) {
    if (slots[0] != MAGIC) return 3;
#if MODE == 1   /* another SDK version */
    slots[3] = 999;
    slots[4] = (uint64_t)(uintptr_t)"6.3.1";
    return 1;
#elif MODE == 2 /* same SDK version, another compiler */
    slots[3] = slots[1];
    slots[4] = (uint64_t)(uintptr_t)"5.10.0";
    return 1;
#else           /* an answer no host knows */
    return 42;
#endif
}
