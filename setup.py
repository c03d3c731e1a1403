#nsml: pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime
"""NSML reads the image from the first line and installs `install_requires` before running main.py.

torch comes with the image; torchaudio is deliberately not used. The list lives in
requirements.txt so run.sh and CI install exactly the same packages.

The image's torch is 2.7.0; run.sh installs 2.13.0. The tests pass under both on a CPU (repeat
with `tools/test_under_torch.sh 2.7.0 -q tests/...`; which files and counts: docs/nsml.md, "The
image's torch"). The CUDA-only paths (fused AdamW, autocast on a GPU, DDP over NCCL) were not run
under 2.7, so a short `nsml run` on the image is still the first step. The image stays 2.7: no
pytorch/pytorch tag with torch 2.13 was found documented.
"""
import os

from setuptools import setup

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "requirements.txt")) as f:
    requirements = [line.strip() for line in f if line.strip() and not line.startswith("#")]

setup(
    name="korean-asr-nsml-kit",
    version="0.1.0",
    description="Korean speech recognition kit for NSML competitions",
    install_requires=requirements,
    packages=[],  # the kit runs from its folder (main.py + modules/); nothing to install but dependencies
)
