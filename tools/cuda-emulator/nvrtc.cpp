// libnvrtc.so stand-in: "compiles" only the kernel sources the emulated driver was built from (any other source is
// a compile error), returning a marker image the emulated cuModuleLoadData accepts.
#include <cstring>
#include <string>

static const char* const built_sources[] = {
#include "sources.inc"
};

struct Program {
    std::string source, log;
};

extern "C" {
int nvrtcVersion(int* major, int* minor) { *major = 0; *minor = 1; return 0; }
int nvrtcCreateProgram(Program** p, const char* src, const char*, int, const char* const*, const char* const*) {
    *p = new Program{src, ""};
    return 0;
}
int nvrtcCompileProgram(Program* p, int, const char* const*) {
    for (const char* built : built_sources)
        if (p->source == built) return 0;
    p->log = "emulator: this source is not one tools/cuda-emulator was built from (rebuild it)";
    return 6;  // NVRTC_ERROR_COMPILATION
}
int nvrtcGetProgramLogSize(Program* p, size_t* n) { *n = p->log.size() + 1; return 0; }
int nvrtcGetProgramLog(Program* p, char* out) { std::memcpy(out, p->log.c_str(), p->log.size() + 1); return 0; }
int nvrtcGetCUBINSize(Program*, size_t* n) { *n = 32; return 0; }
int nvrtcGetCUBIN(Program*, char* out) {
    std::memset(out, 0, 32);
    std::memcpy(out, "\x7f" "ELFSGEMU", 8);
    return 0;
}
int nvrtcDestroyProgram(Program** p) { delete *p; *p = nullptr; return 0; }
const char* nvrtcGetErrorString(int r) { return r == 0 ? "NVRTC_SUCCESS" : "NVRTC_ERROR_COMPILATION"; }
}
