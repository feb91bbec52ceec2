"""Retarget a capture to another person's face: the same ICT weights on someone else's head (the paper's
"different user's face model"). In ICT terms that is only a change of identity (or of personal blendshapes)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..io.capture import Capture


def _identity_of(person) -> np.ndarray:
    """(100,) identity coefficients of a person: an array, a Capture, or anything with .identity."""
    identity = getattr(person, "identity", person)
    identity = np.asarray(identity, np.float32)
    if identity.ndim != 1:
        raise ValueError(f"a person's identity must be a vector of coefficients, not shape {identity.shape}")
    return identity


def retarget_to_person(capture: Capture, person) -> Capture:
    """The capture's performance (weights, pose, gaze, timing) on another person's head.

    person: that person's identity (100,) coefficients, their Capture, or a personal model with an
    `identity` attribute. Returns a new Capture; the input is left as it was.
    """
    identity = _identity_of(person)
    meta = dict(capture.metadata)
    meta["retargeted_from_identity"] = [round(float(v), 6) for v in capture.identity]
    return dataclasses.replace(capture, identity=identity.copy(), metadata=meta)


def person_vertices(capture: Capture, person, model=None, frames=None) -> np.ndarray:
    """(frames, V, 3) model-space vertices of `person` performing `capture` (metres, Y up).

    person: identity (100,) coefficients, a Capture, or a core.io.personal.PersonalModel (then its personal
    blendshapes and neutral correction are used). model: the FaceModel (loaded when None). frames: optional
    index array to evaluate a subset.
    """
    if model is None:
        from ..facemodel import load_face_model

        model = load_face_model()
    weights = capture.weights if frames is None else capture.weights[np.asarray(frames)]
    index = {n: i for i, n in enumerate(capture.names)}
    w = np.zeros((len(weights), model.n_expressions), np.float32)
    for j, n in enumerate(model.expression_names):
        if n in index:
            w[:, j] = weights[:, index[n]]
    if callable(getattr(person, "expression_deltas", None)):  # a PersonalModel
        return person.vertices(model, w)
    return model.vertices(_identity_of(person), w)
