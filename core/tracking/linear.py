"""The face model restricted to the tracked landmark points: P(id, w) = mean + id @ identity + w @ expressions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..facemodel.model import FaceModel


@dataclass(frozen=True, eq=False)
class LandmarkModel:
    """A small linear model over L surface points, built once per clip (float64, metres, model space).

    mean: (L, 3); identity: (K, L, 3); expressions: (E, L, 3); names: (E,) ICT expression names.
    """

    mean: np.ndarray
    identity: np.ndarray
    expressions: np.ndarray
    names: tuple[str, ...]

    @property
    def n_points(self) -> int:
        return self.mean.shape[0]

    @property
    def n_identity(self) -> int:
        return self.identity.shape[0]

    @property
    def n_expressions(self) -> int:
        return self.expressions.shape[0]

    def base(self, identity: np.ndarray | None) -> np.ndarray:
        """(L, 3) neutral points of a person with identity (K,) coefficients (None: the mean head)."""
        if identity is None:
            return self.mean
        identity = np.asarray(identity, np.float64)
        return self.mean + np.tensordot(identity, self.identity[: len(identity)], axes=1)

    def points(self, identity: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
        """(L, 3) or (frames, L, 3) model-space points for expression weights (E,) or (frames, E)."""
        return self.base(identity) + np.tensordot(np.asarray(weights, np.float64), self.expressions, axes=1)

    def subset(self, index: np.ndarray) -> LandmarkModel:
        """The same model over a subset of its points."""
        return LandmarkModel(self.mean[index], self.identity[:, index], self.expressions[:, index], self.names)

    @classmethod
    def from_vertices(cls, model: FaceModel, index: np.ndarray, n_identity: int = 100) -> LandmarkModel:
        """Points that are model vertices (e.g. model.landmarks68)."""
        index = np.asarray(index)
        return cls(
            model.neutral[index].astype(np.float64),
            np.ascontiguousarray(model.identity[:n_identity, index], np.float64),
            np.ascontiguousarray(model.expressions[:, index], np.float64),
            tuple(model.expression_names),
        )

    @classmethod
    def from_barycentric(
        cls, model: FaceModel, triangle: np.ndarray, bary: np.ndarray, n_identity: int = 100
    ) -> LandmarkModel:
        """Points inside model triangles: triangle (L,) indices into model.triangles, bary (L, 3) weights."""
        corners = model.triangles[np.asarray(triangle)]  # (L, 3) vertex ids
        bary = np.asarray(bary, np.float64)

        def mix(a: np.ndarray) -> np.ndarray:  # a (..., V, 3) -> (..., L, 3)
            # C order: einsum's result is strided, and every reshape of it (base(), the solvers' flat bases)
            # would copy it (a megabyte for the identity basis, ~0.4 ms each time).
            return np.ascontiguousarray(np.einsum("...lcj,lc->...lj", a[..., corners, :].astype(np.float64), bary))

        return cls(mix(model.neutral), mix(model.identity[:n_identity]), mix(model.expressions),
                   tuple(model.expression_names))
