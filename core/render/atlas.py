"""One square texture atlas for the ICT UV layout, whose sub-meshes reuse overlapping UDIM tiles.

The ICT OBJ places the face in UV tile 0 together with the eyeballs (overlapping: separate materials
upstream), the back of the head, neck, mouth and eye sockets in tile 1, gums and tongue in tile 2, teeth
in tile 3, and the transparent cards (lacrimal fluid, eyelashes) in tiles 4-6. Here every (material,
tile) pair gets its own cell of one square image, texture coordinates in [0, 1] with x right and y DOWN
(image rows), so `coords * size` are pixel positions in an (S, S, 3) albedo map:

    +-------------------------+------+
    |                         | eye  |   eye: eyeballs (tile 0, both eyes share it)
    |                         +------+
    |   face (tile 0)         | head |   head: back of head, neck, mouth and eye sockets (tile 1)
    |   0.75 x 0.75           +------+
    |                         | gums |   gums and tongue (tile 2)
    +--------+--------+-------+------+
    | (free) | (free) | (free)| teeth|   teeth (tile 3)
    +--------+--------+-------+------+
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..facemodel.model import ATLAS_CELLS

# Sub-meshes drawn as transparent cards upstream: never rendered, never textured.
HIDDEN_SUBMESHES = (
    "lacrimal_fluid_left", "lacrimal_fluid_right", "eye_blend_left", "eye_blend_right",
    "eye_occlusion_left", "eye_occlusion_right", "eyelashes_left", "eyelashes_right",
)

# (material, UV tile) -> (x0, y0, scale) of its cell in the atlas (x right, y down, unit square): the
# cells of FaceModel's atlas (ATLAS_CELLS, v up), seen from the image's top-left corner.
_CELL_NAMES = {("skin", 0): "face", ("eye", 0): "eyeball", ("skin", 1): "head", ("skin", 2): "gums",
               ("skin", 3): "teeth"}
CELLS: dict[tuple[str, int], tuple[float, float, float]] = {
    key: (ATLAS_CELLS[name][0], 1.0 - ATLAS_CELLS[name][1] - ATLAS_CELLS[name][2], ATLAS_CELLS[name][2])
    for key, name in _CELL_NAMES.items()
}


def cell_rect(material: str, tile: int, size: int) -> tuple[int, int, int, int]:
    """Pixel rectangle (x0, y0, x1, y1) of one atlas cell in a size x size map."""
    x0, y0, s = CELLS[(material, tile)]
    return int(round(x0 * size)), int(round(y0 * size)), int(round((x0 + s) * size)), int(round((y0 + s) * size))


def _triangle_submesh_mask(model, names) -> np.ndarray:
    first = model.triangles[:, 0]
    mask = np.zeros(len(first), bool)
    for name in names:
        a, b = model.submeshes[name]
        mask |= (first >= a) & (first < b)
    return mask


@lru_cache(maxsize=4)
def visible_triangles(model) -> np.ndarray:
    """(T,) bool: triangles rendered (everything but the transparent cards)."""
    mask = ~_triangle_submesh_mask(model, HIDDEN_SUBMESHES)
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=4)
def texture_coords(model) -> np.ndarray:
    """(T, 3, 2) float64 atlas coordinates per triangle corner, x right and y down in [0, 1].

    Hidden triangles get coordinates outside [0, 1] (-1) so nothing samples them by accident.
    """
    out = model.triangle_atlas_uvs.astype(np.float64)  # (T, 3, 2), v up
    out[..., 1] = 1.0 - out[..., 1]
    out[~visible_triangles(model)] = -1.0
    out.flags.writeable = False
    return out
