"""Build the compiled hot path (kafka_sink._speedups) where a C compiler is available.

Everything else is declared in pyproject.toml. The extension is optional: when
it cannot be built (no compiler, no Python headers), the install still
succeeds and the pure-Python implementation runs.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kafka_sink._speedups",
            sources=["kafka_sink/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
        )
    ]
)
