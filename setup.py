# The metadata lives in pyproject.toml; this file only hooks the CFFI extension into setuptools.
from setuptools import setup

setup(cffi_modules=["madam/_build_cmadam.py:ffibuilder"])
