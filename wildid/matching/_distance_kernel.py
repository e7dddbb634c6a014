"""8-bit nearest-neighbour kernel run by onnxruntime (used by :mod:`wildid.matching._ivf`).

Why: the inverted-file search must compare a few query descriptors with every row of each probed
list. In NumPy that means converting the list's 8-bit rows to float32 (to use BLAS) and then a
thin matrix product; at 10,000 catalog annotations (10 million rows) nearly every list is probed
by some query descriptor, so each query converted the whole store: 2.3 s per identification,
half of it in ``astype``. onnxruntime's ``MatMulInteger`` multiplies the 8-bit rows directly
(exact int32 dot products) and ``TopK`` selects the k nearest in the same call. The product,
the ``-2`` and the rows' bias are one ``MatMulIntegerToFloat`` (onnxruntime's contrib domain,
in every CPU build): separate ``MatMulInteger``, ``Cast``, ``Mul`` and ``Add`` nodes made three
more passes over the [M, N] product, and a 2-core AVX2 machine spent a third of the kernel's time
on them (150 queries x 8,000 rows: 6.9 ms vs 4.8 ms fused, median of nine alternating runs).

Operand order and types matter on CPUs without AVX-512 VNNI (most laptops): onnxruntime's fast
integer GEMM there is unsigned x signed (``vpmaddubsw``) and wants the few query rows as the
left operand, the long list as the right one. Measured on a 2-core AVX2 machine, 14,000 rows x
20 queries: queries(u8) x rows_t(s8) 1.25 ms, rows(u8) x queries(u8) 2.35 ms. ``vpmaddubsw``
adds pairs of products in saturating 16-bit integers, so both operands are kept to 7 bits
(0..127): 2 x 127 x 127 = 32,258 never saturates, and the products stay exact.

The graph is tiny and fixed, so it ships as ``defaults/ivf_kernel.onnx`` (the app does not
depend on the ``onnx`` package). :func:`build_model` regenerates it (needs ``onnx``, a dev
dependency); a unit test checks that the shipped file is what it builds.

Inputs: ``queries`` uint8 [M, D] (quantised queries, 0..127), ``rows_t`` int8 [D, N] (one list,
stored transposed, 0..127), ``bias`` float32 [N] (each row's squared norm in quantised units;
+inf masks a row), ``k`` int64 [1]. Outputs: ``dist2`` float32 [M, k] (``bias - 2 * dot``, the
k smallest in no particular order, which saves a tenth of a call's top-k time; add the query's
own squared norm for the squared distance) and ``index`` int64 [M, k].
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

KERNEL_PATH = Path(__file__).with_name("defaults") / "ivf_kernel.onnx"

_lock = threading.Lock()
_sessions: dict[int, Any] = {}
_failed = False


def build_model() -> Any:
    """The kernel as an ONNX ModelProto (requires the ``onnx`` package)."""
    from onnx import TensorProto as T
    from onnx import helper as h

    a_scale = h.make_tensor("a_scale", T.FLOAT, [], [-2.0])
    b_scale = h.make_tensor("b_scale", T.FLOAT, [], [1.0])
    nodes = [
        # (queries . rows_t) x -2 x 1 + bias in one pass over the [M, N] product
        h.make_node("MatMulIntegerToFloat",
                    ["queries", "rows_t", "a_scale", "b_scale", "", "", "bias"], ["partial"],
                    domain="com.microsoft"),
        # unsorted: the index sorts each query row's candidates from all its lists anyway
        h.make_node("TopK", ["partial", "k"], ["dist2", "index"], axis=1, largest=0, sorted=0),
    ]
    graph = h.make_graph(
        nodes, "wildid_ivf_kernel",
        [h.make_tensor_value_info("queries", T.UINT8, ["M", "D"]),
         h.make_tensor_value_info("rows_t", T.INT8, ["D", "N"]),
         h.make_tensor_value_info("bias", T.FLOAT, ["N"]),
         h.make_tensor_value_info("k", T.INT64, [1])],
        [h.make_tensor_value_info("dist2", T.FLOAT, ["M", "K"]),
         h.make_tensor_value_info("index", T.INT64, ["M", "K"])],
        initializer=[a_scale, b_scale])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17),
                                               h.make_opsetid("com.microsoft", 1)],
                         producer_name="wildid")
    model.ir_version = 8
    return model


def session(threads: int = 1) -> Any | None:
    """The shared onnxruntime session with ``threads`` intra-op threads, or None (logged once)
    when the kernel cannot be loaded.

    Two kinds of call (see ``IvfStore._kernel_lists``): many calls with a few query rows each
    (a large catalog) run single-threaded side by side, while a few calls with hundreds of
    query rows each (a small catalog) each run on all the threads.
    """
    global _failed
    if threads in _sessions or _failed:
        return _sessions.get(threads)
    with _lock:
        if threads not in _sessions and not _failed:
            try:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = max(1, threads)
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                _sessions[threads] = ort.InferenceSession(str(KERNEL_PATH), opts,
                                                          providers=["CPUExecutionProvider"])
            except Exception as exc:  # a broken install must not stop matching: NumPy still works
                _failed = True
                log.warning("8-bit distance kernel %s unavailable (%s); using the slower NumPy "
                            "search", KERNEL_PATH, exc)
    return _sessions.get(threads)


def nearest(sess: Any, rows_t: np.ndarray, queries: np.ndarray, bias: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(bias - 2 * dot, column index)`` of the ``k`` smallest per query, each [M, k],
    unsorted."""
    dist2, index = sess.run(None, {"queries": queries, "rows_t": rows_t, "bias": bias,
                                   "k": np.array([k], np.int64)})
    return dist2, index
