"""Compiled cores. Metadata lives in pyproject.toml; this file only declares the C extensions."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "toe_bench._pingpong",
            sources=["toe_bench/_pingpong.c"],
            depends=["csrc/int64_buffer.h"],
            include_dirs=["csrc"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
        ),
        Extension(
            "toe_bench._afxdp",
            sources=["toe_bench/_afxdp.c", "toe_bench/afxdp_core.c"],
            depends=["toe_bench/afxdp_core.h", "csrc/int64_buffer.h", "csrc/byteorder.h"],
            include_dirs=["csrc"],
            libraries=["xdp", "bpf"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
        ),
        Extension(
            "udp_multicast._mold",
            sources=["udp_multicast/_mold.c", "udp_multicast/mold_core.c"],
            depends=["udp_multicast/mold_core.h", "csrc/rx_timestamp.h", "csrc/byteorder.h"],
            include_dirs=["csrc"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
        ),
        Extension(
            "rdma._verbs",
            sources=["rdma/_verbs.c"],
            depends=["csrc/stage_clock.h"],
            include_dirs=["csrc"],
            libraries=["ibverbs"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
        ),
        Extension(
            "feed_handler._book",
            sources=["feed_handler/_book.c", "feed_handler/book_core.c"],
            depends=["feed_handler/book_api.h", "feed_handler/book_core.h", "csrc/named_counts.h",
                     "csrc/byteorder.h"],
            include_dirs=["csrc"],
            extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wextra"],
        ),
        Extension(
            "feed_handler._gen",
            sources=["feed_handler/_gen.c", "feed_handler/gen_core.c"],
            depends=["feed_handler/gen_core.h", "feed_handler/book_api.h", "csrc/byteorder.h"],
            include_dirs=["feed_handler", "csrc"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
        ),
        Extension(
            "trader._trader",
            sources=["trader/_trader.c", "trader/path_core.c", "trader/router_core.c", "feed_handler/book_core.c"],
            depends=["feed_handler/book_api.h", "feed_handler/book_core.h", "trader/path_core.h",
                     "trader/router_core.h", "trader/floor.h",
                     "trader/feed_io.h",
                     "trader/t2t_common.h", "trader/fix_order.h", "csrc/rx_timestamp.h",
                     "csrc/named_counts.h", "csrc/stage_clock.h", "csrc/byteorder.h"],
            include_dirs=["trader", "feed_handler", "csrc"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
        ),
    ],
)
