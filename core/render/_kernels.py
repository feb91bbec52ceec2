"""numba kernels behind the rasterizer and the renderer, compiled lazily on first use.

Hand-written loops because neither numpy nor OpenCV offers a z-buffered rasterizer with barycentrics,
and the per-pixel gather + SH shading as numpy array expressions costs ~5x more (temporaries per step).
Compiled code is cached in the Likeness user cache (core/compiled.py), never beside the source.
"""

from __future__ import annotations

import numpy as np

from ..compiled import lazy_kernels, njit


def _compile() -> dict[str, object]:
    kernels: dict[str, object] = {}

    jit = njit(__name__, nogil=True)

    @jit
    def raster(px, py, pz, tris, perspective, cull, tri_out, bary_out, depth_out):
        height, width = depth_out.shape
        for t in range(tris.shape[0]):
            i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
            x0, y0, z0 = px[i0], py[i0], pz[i0]
            x1, y1, z1 = px[i1], py[i1], pz[i1]
            x2, y2, z2 = px[i2], py[i2], pz[i2]
            if perspective and (z0 <= 0.0 or z1 <= 0.0 or z2 <= 0.0):
                continue
            # Twice the signed area in pixel coordinates (y down): < 0 is counter-clockwise seen with y up,
            # the front side of an outward-wound mesh after project_mesh; > 0 its back.
            area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
            if area == 0.0 or not (area == area):
                continue
            if area > 0.0 and cull[t]:
                continue
            xmin = max(int(np.ceil(min(x0, x1, x2))), 0)
            xmax = min(int(np.floor(max(x0, x1, x2))), width - 1)
            ymin = max(int(np.ceil(min(y0, y1, y2))), 0)
            ymax = min(int(np.floor(max(y0, y1, y2))), height - 1)
            if xmin > xmax or ymin > ymax:
                continue
            inv = 1.0 / area
            q0 = q1 = q2 = 0.0
            if perspective:
                q0, q1, q2 = 1.0 / z0, 1.0 / z1, 1.0 / z2
            for y in range(ymin, ymax + 1):
                for x in range(xmin, xmax + 1):
                    # Each edge function straight from its two vertices: a neighbour sharing the edge
                    # computes the exact negation, so shared edges leave no cracks.
                    w0 = ((x1 - x) * (y2 - y) - (x2 - x) * (y1 - y)) * inv
                    w1 = ((x2 - x) * (y0 - y) - (x0 - x) * (y2 - y)) * inv
                    w2 = ((x0 - x) * (y1 - y) - (x1 - x) * (y0 - y)) * inv
                    if w0 < 0.0 or w1 < 0.0 or w2 < 0.0:
                        continue
                    if perspective:
                        # 1/depth is affine in screen space; the weights follow from it.
                        a0, a1, a2 = w0 * q0, w1 * q1, w2 * q2
                        z = 1.0 / (a0 + a1 + a2)
                        if z < depth_out[y, x]:
                            depth_out[y, x] = z
                            tri_out[y, x] = t
                            bary_out[y, x, 0] = a0 * z
                            bary_out[y, x, 1] = a1 * z
                            bary_out[y, x, 2] = a2 * z
                    else:
                        z = w0 * z0 + w1 * z1 + w2 * z2
                        if z < depth_out[y, x]:
                            depth_out[y, x] = z
                            tri_out[y, x] = t
                            bary_out[y, x, 0] = w0
                            bary_out[y, x, 1] = w1
                            bary_out[y, x, 2] = w2

    @jit
    def gather(tri_map, bary, corner_rows, values, out):
        """out[y, x] = sum_k bary[y, x, k] * values[corner_rows[tri, k]] over covered pixels."""
        height, width = tri_map.shape
        channels = values.shape[1]
        for y in range(height):
            for x in range(width):
                t = tri_map[y, x]
                if t < 0:
                    continue
                r0, r1, r2 = corner_rows[t, 0], corner_rows[t, 1], corner_rows[t, 2]
                b0, b1, b2 = bary[y, x, 0], bary[y, x, 1], bary[y, x, 2]
                for c in range(channels):
                    out[y, x, c] = b0 * values[r0, c] + b1 * values[r1, c] + b2 * values[r2, c]

    @jit
    def shade_pixels(tri_map, bary, tris, normals, tex_corners, coeffs, texture, image):
        """Per covered pixel: bilinear atlas albedo times SH irradiance at the normalized interpolated normal."""
        height, width = tri_map.shape
        tex_h, tex_w = texture.shape[0], texture.shape[1]
        for y in range(height):
            for x in range(width):
                t = tri_map[y, x]
                if t < 0:
                    continue
                b0, b1, b2 = bary[y, x, 0], bary[y, x, 1], bary[y, x, 2]
                i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
                nx = b0 * normals[i0, 0] + b1 * normals[i1, 0] + b2 * normals[i2, 0]
                ny = b0 * normals[i0, 1] + b1 * normals[i1, 1] + b2 * normals[i2, 1]
                nz = b0 * normals[i0, 2] + b1 * normals[i1, 2] + b2 * normals[i2, 2]
                norm = np.sqrt(nx * nx + ny * ny + nz * nz)
                if norm > 0.0:
                    nx, ny, nz = nx / norm, ny / norm, nz / norm
                # Same constants and order as core.render.sh.sh_basis.
                basis = (0.282095, 0.488603 * ny, 0.488603 * nz, 0.488603 * nx,
                         1.092548 * nx * ny, 1.092548 * ny * nz, 0.315392 * (3.0 * nz * nz - 1.0),
                         1.092548 * nx * nz, 0.546274 * (nx * nx - ny * ny))
                # Bilinear texel lookup, texel centres at (i + 0.5) / size, clamped at the border.
                u = (b0 * tex_corners[t, 0, 0] + b1 * tex_corners[t, 1, 0] + b2 * tex_corners[t, 2, 0])
                v = (b0 * tex_corners[t, 0, 1] + b1 * tex_corners[t, 1, 1] + b2 * tex_corners[t, 2, 1])
                fx = min(max(u * tex_w - 0.5, 0.0), tex_w - 1.0)
                fy = min(max(v * tex_h - 0.5, 0.0), tex_h - 1.0)
                tx, ty = int(fx), int(fy)
                tx1, ty1 = min(tx + 1, tex_w - 1), min(ty + 1, tex_h - 1)
                ax, ay = fx - tx, fy - ty
                for c in range(3):
                    s = 0.0
                    for k in range(9):
                        s += basis[k] * coeffs[k, c]
                    top = texture[ty, tx, c] * (1.0 - ax) + texture[ty, tx1, c] * ax
                    bottom = texture[ty1, tx, c] * (1.0 - ax) + texture[ty1, tx1, c] * ax
                    image[y, x, c] = (top * (1.0 - ay) + bottom * ay) * s

    @jit
    def normals(vertices, tris, out):
        for t in range(tris.shape[0]):
            i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
            ax = vertices[i1, 0] - vertices[i0, 0]
            ay = vertices[i1, 1] - vertices[i0, 1]
            az = vertices[i1, 2] - vertices[i0, 2]
            bx = vertices[i2, 0] - vertices[i0, 0]
            by = vertices[i2, 1] - vertices[i0, 1]
            bz = vertices[i2, 2] - vertices[i0, 2]
            cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
            for i in (i0, i1, i2):
                out[i, 0] += cx
                out[i, 1] += cy
                out[i, 2] += cz
        for i in range(out.shape[0]):
            n = np.sqrt(out[i, 0] ** 2 + out[i, 1] ** 2 + out[i, 2] ** 2)
            if n > 0.0:
                out[i, 0] /= n
                out[i, 1] /= n
                out[i, 2] /= n

    kernels.update(raster=raster, gather=gather, shade_pixels=shade_pixels, normals=normals)
    return kernels


get = lazy_kernels(_compile)  # get(name): raster, gather, shade_pixels, normals
