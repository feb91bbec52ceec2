"""Synthetic ground truth: random subjects and performances rendered with the ICT model, truth saved beside."""

from ..render.shading import render_frame
from .generate import directional_sh, generate, load_truth, random_lighting

__all__ = ["directional_sh", "generate", "load_truth", "random_lighting", "render_frame"]
