"""Build script: package metadata lives in pyproject.toml; this adds the native extension gantools._C."""
import glob
import os

import torch
from setuptools import setup
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _with_cuda() -> bool:
    """CUDA kernels are built when a GPU, or a CUDA toolkit with a CUDA torch, is there (or FORCE_CUDA=1)."""
    if os.environ.get("FORCE_CUDA", "0") == "1":
        return True
    return torch.cuda.is_available() or (cpp_extension.CUDA_HOME is not None and torch.version.cuda is not None)


def _cpu_flags() -> list:
    """Flags that let the CPU kernels use torch's thread pool and the machine's vector unit."""
    flags = []
    # at::parallel_for runs serially unless the code is compiled for torch's OpenMP backend.
    if "OpenMP" in torch.__config__.parallel_info():
        flags.append("-fopenmp")
    # at::vec picks its intrinsics from CPU_CAPABILITY; its portable fallback is several
    # times slower. The build is made ahead of time on the machine that runs it, so it
    # targets what torch reports there; GANTOOLS_CPU_CAPABILITY=DEFAULT builds a portable one.
    capability = os.environ.get("GANTOOLS_CPU_CAPABILITY", torch.backends.cpu.get_cpu_capability())
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return flags


def _sources(pattern: str) -> list:
    # setuptools wants paths relative to the project root; csrc/tests is the ctest program.
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", pattern)))


def _extension():
    # C++20: ATen's headers need it from torch 2.14 on, and torch 2.13's autograd headers
    # (included for the C++ autograd functions) already use C++20 bit-field initialisers.
    std = "-std=c++20"
    sources = _sources("*.cpp")
    cpu_flags = _cpu_flags()
    args = {"cxx": ["-O3", std] + cpu_flags}
    builder = cpp_extension.CppExtension
    if _with_cuda():
        sources += _sources(os.path.join("cuda", "*.cu"))
        args["nvcc"] = ["-O3", std, "-lineinfo"]
        builder = cpp_extension.CUDAExtension
    link = ["-fopenmp"] if "-fopenmp" in cpu_flags else []
    return builder("gantools._C", sources, include_dirs=[os.path.join(ROOT, "csrc")], extra_compile_args=args,
                   extra_link_args=link)


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
