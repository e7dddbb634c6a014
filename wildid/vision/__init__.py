"""Vision: image loading, the ONNX model registry and the models that compute features.

Import the submodules directly (``wildid.vision.registry``, ``wildid.vision.embedder``,
``wildid.vision.keypoints``); this package imports nothing heavy on its own.
"""
