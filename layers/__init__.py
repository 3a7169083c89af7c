"""Reusable Keras layers."""

from layers.conv import SubPixelConv2DTranspose

__all__ = ["SubPixelConv2DTranspose"]
