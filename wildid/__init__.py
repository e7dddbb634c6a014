"""wildid: photo-identification of individual animals, offline first."""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# NumPy's OpenBLAS keeps its worker threads spinning for a while after every matrix product.
# wildid's heavy work runs in onnxruntime's and OpenCV's own thread pools, and NumPy's products
# here are small (keypoint distances in verification, one query against the global index), so
# those spinning threads only took the cores from the next onnxruntime call: the first
# LightGlue pair after verification took ~95 ms instead of ~30-40 ms on a 2-core machine.
# Set before NumPy is first imported (the app, the CLI and the installers import wildid
# first); a value the user set wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
