"""8-bit nearest-neighbour kernel run by onnxruntime (used by :mod:`wildid.matching._ivf`).

Why: the inverted-file search must compare a few query descriptors with every row of each probed
list. In NumPy that means converting the list's 8-bit rows to float32 (to use BLAS) and then a
thin matrix product; at 10,000 catalog annotations (10 million rows) nearly every list is probed
by some query descriptor, so each query converted the whole store: 2.3 s per identification,
half of it in ``astype``. onnxruntime's ``MatMulInteger`` multiplies the 8-bit rows directly
(exact int32 dot products) and ``TopK`` selects the k nearest in the same call, 2.5-4x faster per
list on a 2-core CPU.

The graph is tiny and fixed, so it ships as ``defaults/ivf_kernel.onnx`` (the app does not
depend on the ``onnx`` package). :func:`build_model` regenerates it (needs ``onnx``, a dev
dependency); a unit test checks that the shipped file is what it builds.

Inputs: ``rows`` uint8 [N, D] (one list), ``queries_t`` uint8 [D, M] (quantised queries,
transposed), ``bias`` float32 [N, 1] (each row's squared norm in quantised units; +inf masks a
row), ``k`` int64 [1]. Outputs: ``dist2`` float32 [k, M] (``bias - 2 * dot``, smallest first; add
the query's own squared norm for the squared distance) and ``index`` int64 [k, M].
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

KERNEL_PATH = Path(__file__).with_name("defaults") / "ivf_kernel.onnx"

_lock = threading.Lock()
_session: Any = None
_failed = False


def build_model() -> Any:
    """The kernel as an ONNX ModelProto (requires the ``onnx`` package)."""
    from onnx import TensorProto as T
    from onnx import helper as h

    minus_two = h.make_tensor("minus_two", T.FLOAT, [], [-2.0])
    nodes = [
        h.make_node("MatMulInteger", ["rows", "queries_t"], ["dot"]),
        h.make_node("Cast", ["dot"], ["dot_f"], to=T.FLOAT),
        h.make_node("Mul", ["dot_f", "minus_two"], ["minus_2dot"]),
        h.make_node("Add", ["minus_2dot", "bias"], ["partial"]),
        h.make_node("TopK", ["partial", "k"], ["dist2", "index"], axis=0, largest=0, sorted=1),
    ]
    graph = h.make_graph(
        nodes, "wildid_ivf_kernel",
        [h.make_tensor_value_info("rows", T.UINT8, ["N", "D"]),
         h.make_tensor_value_info("queries_t", T.UINT8, ["D", "M"]),
         h.make_tensor_value_info("bias", T.FLOAT, ["N", 1]),
         h.make_tensor_value_info("k", T.INT64, [1])],
        [h.make_tensor_value_info("dist2", T.FLOAT, ["K", "M"]),
         h.make_tensor_value_info("index", T.INT64, ["K", "M"])],
        initializer=[minus_two])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)],
                         producer_name="wildid")
    model.ir_version = 8
    return model


def session() -> Any | None:
    """The shared onnxruntime session, or None (logged once) when it cannot be loaded."""
    global _session, _failed
    if _session is not None or _failed:
        return _session
    with _lock:
        if _session is None and not _failed:
            try:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                _session = ort.InferenceSession(str(KERNEL_PATH), opts,
                                                providers=["CPUExecutionProvider"])
            except Exception as exc:  # a broken install must not stop matching: NumPy still works
                _failed = True
                log.warning("8-bit distance kernel %s unavailable (%s); using the slower NumPy "
                            "search", KERNEL_PATH, exc)
    return _session


def nearest(sess: Any, rows: np.ndarray, queries_t: np.ndarray, bias: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(bias - 2 * dot, row index)`` of the ``k`` smallest per query, each [M, k]."""
    dist2, index = sess.run(None, {"rows": rows, "queries_t": queries_t, "bias": bias,
                                   "k": np.array([k], np.int64)})
    return dist2.T, index.T
