"""Rendering shared by the synthetic generator, texture unwrapping and overlays: camera and rasterizer."""

from .atlas import texture_coords, visible_triangles
from .camera import Camera, euler_to_matrix, matrix_to_euler, transform
from .rasterize import Fragments, interpolate, project_mesh, rasterize, uv_rasterize
from .sh import SH_C0, sh_basis, shade, vertex_normals
from .shading import render_face, render_frame, rotate_eyes, sample_texture, to_uint8_bgr

__all__ = [
    "SH_C0",
    "Camera",
    "Fragments",
    "euler_to_matrix",
    "interpolate",
    "matrix_to_euler",
    "project_mesh",
    "rasterize",
    "render_face",
    "render_frame",
    "rotate_eyes",
    "sample_texture",
    "sh_basis",
    "shade",
    "texture_coords",
    "to_uint8_bgr",
    "transform",
    "uv_rasterize",
    "vertex_normals",
    "visible_triangles",
]
