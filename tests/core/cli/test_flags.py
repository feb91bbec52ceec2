"""The command lines' switches that change what a run makes: their defaults and their spelling."""

import argparse

import pytest

from core.cli import capture, model


@pytest.mark.parametrize("command", [capture, model])
def test_personal_shapes_are_opt_in(command):
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    base = ["clip.mp4", "-o", "out.npz"] if command is capture else ["clip.mp4", "cap.npz", "-o", "out.npz"]
    assert p.parse_args(base).shapes is False
    assert p.parse_args(base + ["--shapes"]).shapes is True
    assert p.parse_args(base + ["--no-shapes"]).shapes is False  # scripts written for the old default still run


def test_options_default_to_the_generic_shapes():
    from core.modeling import ModelingOptions
    from core.pipeline import CaptureOptions

    assert ModelingOptions().personal_shapes is False
    assert CaptureOptions().personal_shapes is False
