// The oneDNN C API functions SanaGraph calls, resolved with dlsym (types come from dnnl.h; nothing is linked).
#ifndef SANAGRAPH_DNNL_SYMBOLS_H
#define SANAGRAPH_DNNL_SYMBOLS_H

#include <oneapi/dnnl/dnnl.h>

#define SG_DNNL_SYMBOLS(X)                     \
    X(dnnl_version)                            \
    X(dnnl_set_max_cpu_isa)                    \
    X(dnnl_get_effective_cpu_isa)              \
    X(dnnl_engine_create)                      \
    X(dnnl_stream_create)                      \
    X(dnnl_stream_wait)                        \
    X(dnnl_memory_desc_init_by_tag)            \
    X(dnnl_memory_desc_equal)                  \
    X(dnnl_memory_desc_get_size)               \
    X(dnnl_memory_create)                      \
    X(dnnl_memory_destroy)                     \
    X(dnnl_matmul_desc_init)                   \
    X(dnnl_convolution_forward_desc_init)      \
    X(dnnl_reorder_primitive_desc_create)      \
    X(dnnl_primitive_desc_create)              \
    X(dnnl_primitive_desc_query)               \
    X(dnnl_primitive_desc_query_md)            \
    X(dnnl_primitive_desc_destroy)             \
    X(dnnl_primitive_create)                   \
    X(dnnl_primitive_destroy)                  \
    X(dnnl_primitive_execute)                  \
    X(dnnl_primitive_get_primitive_desc)       \
    X(dnnl_primitive_attr_create)              \
    X(dnnl_primitive_attr_set_scratchpad_mode) \
    X(dnnl_primitive_attr_set_post_ops)        \
    X(dnnl_post_ops_create)                    \
    X(dnnl_post_ops_append_eltwise)            \
    X(dnnl_post_ops_destroy)

#define SG_DECLARE(name) extern __typeof__(name) *sg_p_##name;
SG_DNNL_SYMBOLS(SG_DECLARE)
#undef SG_DECLARE

extern dnnl_engine_t sg_dnnl_engine;
dnnl_stream_t sg_dnnl_stream(void);

#endif
