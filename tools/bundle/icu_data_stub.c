/* An empty ICU common-data package: the 32-byte "CmnD" header and a table of contents with no entries.
 * `make bundle` links it in place of the ICU data Foundation carries (34 MB, about 8 MB compressed), so the GPU
 * bundle fits the device machine's transfer limit. The symbol name depends on the ICU version of the toolchain
 * (ICU_DATA_SYMBOL, found with nm by the Makefile's bundle target). Without the data, ICU lookups fail cleanly
 * (U_MISSING_RESOURCE_ERROR): locale-dependent formatting falls back or fails, nothing SanaGraph's GPU tools use. */
#ifndef ICU_DATA_SYMBOL
#error "define ICU_DATA_SYMBOL (e.g. icudt76_dat)"
#endif
/* Linked with `-Xlinker --wrap=ICU_DATA_SYMBOL`: ICU's references go to __wrap_<symbol>, so the archive member
 * holding the real data is never pulled in. */
#define WRAP2(s) __wrap_##s
#define WRAPPED(s) WRAP2(s)
__attribute__((aligned(16))) const unsigned char WRAPPED(ICU_DATA_SYMBOL)[48] = {
    0x20, 0x00,             /* headerSize 32 */
    0xda, 0x27,             /* magic */
    0x14, 0x00, 0x00, 0x00, /* UDataInfo size 20, reserved */
    0x00, 0x00, 0x02, 0x00, /* little endian, ASCII family, sizeof(UChar) 2, reserved */
    'C', 'm', 'n', 'D',     /* data format: common data package */
    0x01, 0x00, 0x00, 0x00, /* format version 1 */
    0x03, 0x00, 0x00, 0x00, /* data version */
    0, 0, 0, 0, 0, 0, 0, 0, /* pad to headerSize */
    0x00, 0x00, 0x00, 0x00, /* table of contents: 0 entries */
};
