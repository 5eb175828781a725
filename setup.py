"""The one compiled part of lwm2m: the optional SenML CBOR decoding accelerator.

Everything else is in pyproject.toml. The extension is optional: where it cannot be built (no C
compiler, no Python headers) the install goes on without it and the pure-Python decoder is used
(lwm2m.codec.senml_cbor.ACCELERATED says which). ``make test`` requires it under CI=true.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "lwm2m.codec._senml_cbor_fast",
            ["src/lwm2m/codec/_senml_cbor_fast.c"],
            optional=True,
        )
    ]
)
