"""Build script: package metadata lives in pyproject.toml; the native extension is added here."""
from setuptools import setup

setup()
