"""gandeploy: train GAN generators and ship them behind NVIDIA Triton, fast and provably correct."""

__version__ = "0.1.0"

__all__ = ["__version__"]
