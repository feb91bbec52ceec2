"""Likeness core: facial performance capture from video, independent of Blender."""

__version__ = "0.1.0"
