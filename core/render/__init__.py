"""Rendering shared by the synthetic generator, texture unwrapping and overlays: camera and rasterizer."""
