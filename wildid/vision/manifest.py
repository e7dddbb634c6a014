"""Model manifests: the JSON file beside every ONNX model that says how to feed and trust it.

A manifest is the contract between an exported model and the app: which file, its sha256,
what the input tensor must look like (size, layout, colour order, scaling), what each
output means, and where the weights came from (licence, provenance).  The shipped
manifests are written by ``models/export/make_models.sh``; a user can drop their own model
plus manifest into the user models folder.  See ``models/README.md`` for the format.

Validation here is strict on what the app relies on and lenient on the rest (unknown keys
are kept in ``extra``), so a hand-written user manifest fails with a message that names the
field, not with a KeyError deep inside inference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wildid.errors import ModelError

MANIFEST_VERSION = 1
TASKS = ("embedder", "keypoints", "matcher", "detector")
IMAGE_TASKS = ("embedder", "keypoints", "detector")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_KNOWN_KEYS = {
    "manifest_version", "id", "version", "task", "name", "description", "file", "sha256",
    "size_bytes", "opset", "input", "inputs", "outputs", "normalised", "params", "licence",
    "provenance", "stages",
}
# the graphs a model may ship in stages, per task (see ``ModelManifest.stages``)
STAGES = {"keypoints": ("detect", "describe")}


@dataclass(frozen=True)
class TensorSpec:
    """One named graph input or output; ``shape`` entries are ints or symbolic names."""

    name: str
    shape: tuple[int | str, ...] = ()
    dtype: str = "float32"
    dim: int | None = None
    meaning: str = ""


@dataclass(frozen=True)
class ImageInput:
    """How an RGB uint8 image becomes the model's image tensor.

    ``value = (pixel - subtract) / divide`` per channel, on 0..255 pixel values (a
    manifest may give ImageNet-style ``mean``/``std`` on 0..1 instead; they are converted).
    ``size`` is (height, width), or None when the graph takes any size (then each side
    must be a multiple of ``multiple_of``).
    """

    name: str
    size: tuple[int, int] | None
    layout: str = "NCHW"
    colour: str = "RGB"
    dtype: str = "float32"
    subtract: tuple[float, float, float] = (0.0, 0.0, 0.0)
    divide: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: str = "letterbox"
    fill: tuple[int, int, int] = (0, 0, 0)
    multiple_of: int = 1


@dataclass(frozen=True)
class Licence:
    spdx: str
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageFile:
    """One graph of a model that also ships in stages, with the digest it is checked against."""

    file: str
    sha256: str
    size_bytes: int | None = None


@dataclass(frozen=True)
class ModelManifest:
    """A validated manifest; ``path`` is the JSON file it was read from."""

    path: Path
    id: str
    version: str
    task: str
    file: str
    sha256: str
    outputs: tuple[TensorSpec, ...]
    licence: Licence
    name: str = ""
    description: str = ""
    input: ImageInput | None = None
    inputs: tuple[TensorSpec, ...] = ()
    normalised: bool = False
    size_bytes: int | None = None
    opset: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The same model cut into consecutive graphs, by stage name (``STAGES``); empty when it
    # ships in one piece.  A keypoints model's ``detect`` stage returns the keypoints and the
    # maps its ``describe`` stage reads, so a caller that keeps only some keypoints
    # describes only those.
    stages: dict[str, StageFile] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        """The ONNX file, resolved relative to the manifest's folder."""
        return self.path.parent / self.file

    def stage_path(self, stage: str) -> Path:
        """The ONNX file of one stage, resolved relative to the manifest's folder."""
        return self.path.parent / self.stages[stage].file

    def output(self, name: str | None = None) -> TensorSpec:
        """The output called ``name`` (default: the first one)."""
        if name is None:
            return self.outputs[0]
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise ModelError(f"{self.path}: the manifest lists no output named {name!r}")


def load_manifest(path: str | Path) -> ModelManifest:
    """Read and validate one manifest; raises ``ModelError`` naming the file and field."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as Notepad writes
    except FileNotFoundError as exc:
        raise ModelError(f"model manifest {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"model manifest {path} cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"model manifest {path} is not valid JSON: {exc}") from exc
    return parse_manifest(raw, path)


def parse_manifest(raw: Any, path: Path) -> ModelManifest:
    """Validate an already-decoded manifest (``path`` is used for messages and ``file``)."""
    v = _Validator(path)
    if not isinstance(raw, dict):
        v.fail("the top level must be a JSON object")
    version = raw.get("manifest_version", MANIFEST_VERSION)
    if version != MANIFEST_VERSION:
        v.fail(f"manifest_version {version!r} is not supported (this wildid reads {MANIFEST_VERSION})")
    model_id = v.string(raw, "id")
    if not _ID_RE.match(model_id):
        v.fail(f"id {model_id!r} must be 1-100 letters, digits, '_', '.' or '-'")
    task = v.string(raw, "task")
    if task not in TASKS:
        v.fail(f"task {task!r} is not one of {', '.join(TASKS)}")
    file = v.string(raw, "file")
    if Path(file).name != file or file in (".", ".."):
        v.fail(f"file {file!r} must be a plain file name in the manifest's folder")
    sha = v.string(raw, "sha256").lower()
    if not _SHA_RE.match(sha):
        v.fail("sha256 must be 64 hexadecimal digits")
    image = _image_input(v, raw["input"]) if raw.get("input") is not None else None
    if task in IMAGE_TASKS and image is None:
        v.fail(f"a {task} model needs an 'input' object describing its image tensor")
    outputs = tuple(_tensor(v, o, "outputs") for o in v.list(raw, "outputs", required=True))
    if not outputs:
        v.fail("outputs must list at least one tensor")
    inputs = tuple(_tensor(v, i, "inputs") for i in v.list(raw, "inputs", required=False))
    if task == "matcher" and not inputs:
        v.fail("a matcher model needs an 'inputs' list")
    licence_raw = raw.get("licence")
    if not isinstance(licence_raw, dict):
        v.fail("licence must be an object with 'spdx' (and optional 'files')")
    licence = Licence(
        spdx=v.string(licence_raw, "spdx", where="licence"),
        files=tuple(str(f) for f in v.list(licence_raw, "files", required=False)),
    )
    size_bytes = raw.get("size_bytes")
    if size_bytes is not None and (not isinstance(size_bytes, int) or size_bytes < 0):
        v.fail("size_bytes must be a non-negative integer")
    for key in ("params", "provenance"):
        if not isinstance(raw.get(key, {}), dict):
            v.fail(f"{key} must be an object")
    stages = _stages(v, raw.get("stages"), task) if raw.get("stages") is not None else {}
    return ModelManifest(
        path=path,
        id=model_id,
        version=v.string(raw, "version"),
        task=task,
        file=file,
        sha256=sha,
        outputs=outputs,
        licence=licence,
        name=str(raw.get("name", "")),
        description=str(raw.get("description", "")),
        input=image,
        inputs=inputs,
        normalised=bool(raw.get("normalised", False)),
        size_bytes=size_bytes,
        opset=raw.get("opset"),
        params=dict(raw.get("params", {})),
        provenance=dict(raw.get("provenance", {})),
        extra={k: raw[k] for k in raw if k not in _KNOWN_KEYS},
        stages=stages,
    )


class _Validator:
    """Small helpers that raise ``ModelError`` with the manifest path in the message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> None:
        raise ModelError(f"model manifest {self.path}: {message}")

    def string(self, obj: dict[str, Any], key: str, where: str = "") -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            name = f"{where}.{key}" if where else key
            self.fail(f"missing or empty field '{name}' (a string)")
        return str(value)

    def list(self, obj: dict[str, Any], key: str, required: bool) -> list[Any]:
        value = obj.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            self.fail(f"field '{key}' must be a list")
        return list(value)

    def triple(self, value: Any, key: str) -> tuple[float, float, float]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (float(value),) * 3  # type: ignore[return-value]
        if (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        ):
            return (float(value[0]), float(value[1]), float(value[2]))
        self.fail(f"input.scaling.{key} must be a number or a list of 3 numbers")
        raise AssertionError  # unreachable


def _stages(v: _Validator, raw: Any, task: str) -> dict[str, StageFile]:
    """``stages``: every stage the task names, each a plain file name with its sha256; other
    keys (``method``, ``verification``) are notes for people."""
    names = STAGES.get(task)
    if names is None:
        v.fail(f"stages are not supported for a {task} model")
    if not isinstance(raw, dict):
        v.fail(f"stages must be an object with {', '.join(names)}")
    out = {}
    for name in names:
        entry = raw.get(name)
        if not isinstance(entry, dict):
            v.fail(f"stages.{name} must be an object with 'file' and 'sha256'")
        file = v.string(entry, "file", where=f"stages.{name}")
        if Path(file).name != file or file in (".", ".."):
            v.fail(f"stages.{name}.file {file!r} must be a plain file name in the manifest's folder")
        sha = v.string(entry, "sha256", where=f"stages.{name}").lower()
        if not _SHA_RE.match(sha):
            v.fail(f"stages.{name}.sha256 must be 64 hexadecimal digits")
        size = entry.get("size_bytes")
        if size is not None and (not isinstance(size, int) or size < 0):
            v.fail(f"stages.{name}.size_bytes must be a non-negative integer")
        out[name] = StageFile(file=file, sha256=sha, size_bytes=size)
    return out


def _tensor(v: _Validator, raw: Any, where: str) -> TensorSpec:
    if not isinstance(raw, dict):
        v.fail(f"every entry of '{where}' must be an object with at least 'name'")
    shape = raw.get("shape", [])
    if not isinstance(shape, list) or not all(isinstance(s, (int, str)) for s in shape):
        v.fail(f"{where}: shape of {raw.get('name')!r} must be a list of ints or names")
    dim = raw.get("dim")
    if dim is not None and (not isinstance(dim, int) or dim < 1):
        v.fail(f"{where}: dim of {raw.get('name')!r} must be a positive integer")
    return TensorSpec(
        name=v.string(raw, "name", where=where),
        shape=tuple(shape),
        dtype=str(raw.get("dtype", "float32")),
        dim=dim,
        meaning=str(raw.get("meaning", "")),
    )


def _image_input(v: _Validator, raw: Any) -> ImageInput:
    if not isinstance(raw, dict):
        v.fail("input must be an object")
    size_raw = raw.get("size")
    size: tuple[int, int] | None
    if size_raw == "dynamic":
        size = None
    elif (
        isinstance(size_raw, list)
        and len(size_raw) == 2
        and all(isinstance(s, int) and s > 0 for s in size_raw)
    ):
        size = (size_raw[0], size_raw[1])
    else:
        v.fail("input.size must be [height, width] or \"dynamic\"")
        raise AssertionError  # unreachable
    layout = str(raw.get("layout", "NCHW"))
    if layout not in ("NCHW", "NHWC"):
        v.fail(f"input.layout {layout!r} must be NCHW or NHWC")
    colour = str(raw.get("colour", raw.get("color", "RGB")))
    if colour not in ("RGB", "BGR"):
        v.fail(f"input.colour {colour!r} must be RGB or BGR")
    dtype = str(raw.get("dtype", "float32"))
    if dtype not in ("float32", "float16", "uint8"):
        v.fail(f"input.dtype {dtype!r} must be float32, float16 or uint8")
    scaling = raw.get("scaling", {})
    if not isinstance(scaling, dict):
        v.fail("input.scaling must be an object")
    if "mean" in scaling or "std" in scaling:
        mean = v.triple(scaling.get("mean"), "mean")
        std = v.triple(scaling.get("std"), "std")
        subtract = tuple(m * 255.0 for m in mean)
        divide = tuple(s * 255.0 for s in std)
    else:
        subtract = v.triple(scaling.get("subtract", 0.0), "subtract")
        divide = v.triple(scaling.get("divide", 1.0), "divide")
    if any(d == 0 for d in divide):
        v.fail("input.scaling divides by zero")
    resize = str(raw.get("resize", "letterbox" if size else "max_side"))
    if resize not in ("letterbox", "stretch", "max_side"):
        v.fail(f"input.resize {resize!r} must be letterbox, stretch or max_side")
    if size is None and resize != "max_side":
        v.fail("a dynamic-size input can only use resize \"max_side\"")
    fill = raw.get("fill", [0, 0, 0])
    if not (isinstance(fill, list) and len(fill) == 3 and all(isinstance(f, int) for f in fill)):
        v.fail("input.fill must be a list of 3 integers (0-255)")
    multiple_of = raw.get("multiple_of", 1)
    if not isinstance(multiple_of, int) or multiple_of < 1:
        v.fail("input.multiple_of must be a positive integer")
    return ImageInput(
        name=v.string(raw, "name", where="input"),
        size=size,
        layout=layout,
        colour=colour,
        dtype=dtype,
        subtract=subtract,  # type: ignore[arg-type]
        divide=divide,  # type: ignore[arg-type]
        resize=resize,
        fill=(fill[0], fill[1], fill[2]),
        multiple_of=multiple_of,
    )
