"""Save and load a fitted Classifier as a portable ``.npz``: no pickle anywhere.

The archive holds one array per parameter (``param/W1`` ...), the
standardization (``mean``, ``scale``), each categorical column's level values
(``encoding/<j>/values``, ``encoding/<j>/infrequent``) and ``meta``: UTF-8 JSON bytes
with the format version, specs, dtype, shapes, classes, the input columns and how each
is encoded (kind, levels, fill value, indicator), and a sha256 over every array and
the metadata. Version 1 files (numeric inputs only) still load. Loading uses
``allow_pickle=False``, checks every name, shape, dtype and the digest, and raises
``ModelFileError`` with the reason otherwise.
"""

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine.classifier import Classifier, build_model
from engine.encoding import ColumnTransform
from engine.parameters import Parameters
from engine.preprocessing import LabelEncoder, Standardizer
from engine.specs import ModelSpec, SpecError, TrainingSpec, model_spec_from_dict

FORMAT = "backprop-model"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before categorical columns; its inputs are the features


class ModelFileError(ValueError):
    """The file is not a model this engine wrote, or it was truncated or altered."""


def to_bytes(classifier: Classifier) -> bytes:
    arrays = _arrays(classifier)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_spec": _spec_dict(classifier.model_spec),
        "training_spec": classifier.training_spec.to_dict(),
        "dtype": str(classifier.model.dtype),
        "n_features": classifier.n_features,
        "shapes": {name: list(shape) for name, shape in classifier.model.parameters.shapes.items()},
        "classes": classifier.classes,
        "feature_names": classifier.feature_names,
        "transform": classifier.transform.to_json(),
        "metadata": classifier.metadata,
    }
    meta["sha256"] = _digest(arrays, meta)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return buffer.getvalue()


def save(classifier: Classifier, path: str | Path | BinaryIO) -> None:
    data = to_bytes(classifier)
    if hasattr(path, "write"):
        path.write(data)
    else:
        Path(path).write_bytes(data)


def load(source: str | Path | bytes | BinaryIO) -> Classifier:
    """Read a model written by ``save``; ``ModelFileError`` says what is wrong otherwise."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with np.load(source, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise ModelFileError(
            f"not a readable model file ({type(error).__name__}: {error})"
        ) from error
    meta = _meta(contents.pop("meta", None))
    if _digest(contents, meta) != meta.get("sha256"):
        raise ModelFileError("checksum mismatch: the file was altered or damaged")
    try:
        return _classifier(meta, contents)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"inconsistent model file: {error}") from error


def _arrays(classifier: Classifier) -> dict[str, np.ndarray]:
    arrays = {f"param/{name}": value for name, value in classifier.model.parameters.items()}
    arrays["mean"] = classifier.standardizer.mean
    arrays["scale"] = classifier.standardizer.scale
    arrays |= classifier.transform.arrays()
    return arrays


def _digest(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """sha256 over the metadata (but its own digest) and every array's name, dtype, shape, bytes."""
    digest = hashlib.sha256()
    described = {key: value for key, value in meta.items() if key != "sha256"}
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _meta(raw: np.ndarray | None) -> dict[str, Any]:
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError("missing metadata: not a backprop model file")
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"unreadable metadata: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError("not a backprop model file")
    if meta.get("version") not in READABLE_VERSIONS:
        raise ModelFileError(f"unsupported model format version {meta.get('version')!r}")
    return meta


def _classifier(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Classifier:
    try:
        model_spec = model_spec_from_dict(meta["model_spec"]).validate()
        training_spec = TrainingSpec.from_dict(meta["training_spec"]).validate()
    except SpecError as error:
        raise ModelFileError(f"invalid spec in model file: {error}") from error
    dtype = np.dtype(meta["dtype"])
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"unsupported dtype {dtype}")
    encoder = LabelEncoder(meta["classes"])
    model = build_model(model_spec, int(meta["n_features"]), len(encoder.classes))
    expected = {name: list(shape) for name, shape in model.shapes().items()}
    if meta["shapes"] != expected:
        raise ValueError(f"parameter shapes {meta['shapes']} do not match the spec's {expected}")
    model.parameters = Parameters(model.shapes(), dtype)
    for name in model.parameters:
        value = arrays[f"param/{name}"]
        if value.shape != model.parameters[name].shape or value.dtype != dtype:
            raise ValueError(f"parameter {name} is {value.shape} {value.dtype}")
        model.parameters[name][...] = value
    n_x = model.n_features
    mean, scale = arrays["mean"], arrays["scale"]
    if mean.shape != (n_x,) or scale.shape != (n_x,) or not (scale > 0).all():
        raise ValueError("standardization arrays do not fit the model")
    feature_names = [str(name) for name in meta["feature_names"]]
    if "transform" in meta:
        transform = ColumnTransform.from_saved(meta["transform"], arrays)
    else:
        transform = None  # the classifier's identity, filling with the training means
        if len(feature_names) != n_x:
            raise ValueError(f"{len(feature_names)} feature names for {n_x} features")
    if transform is not None and (
        transform.input_names != feature_names or transform.n_outputs != n_x
    ):
        raise ValueError(
            f"the column encoding ({len(transform.input_names)} columns, "
            f"{transform.n_outputs} features) does not fit {n_x} features"
        )
    return Classifier(
        model=model,
        standardizer=Standardizer(mean=mean.astype(np.float64), scale=scale.astype(np.float64)),
        encoder=encoder,
        feature_names=feature_names,
        model_spec=model_spec,
        training_spec=training_spec,
        metadata=dict(meta.get("metadata") or {}),
        transform=transform,
    )


def _spec_dict(spec: ModelSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in ModelSpec.__dataclass_fields__}
