"""A fitted model saves to a portable .npz (no pickle) and loads back exactly;
anything else fails with a clear ModelFileError."""

import io
import json
import zipfile

import numpy as np
import pytest

from engine import ModelFileError, ModelSpec, TrainingSpec, fit, load, save, to_bytes


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    labels = np.array(["no", "yes", "maybe"] * 30)
    rows = rng.standard_normal((90, 4)) * 5 + np.unique(labels, return_inverse=True)[1][:, None]
    model = ModelSpec(type="two_layer_network", hidden_units=6, activation="relu")
    result = fit(
        rows, labels, model, TrainingSpec(epochs=20, dtype="float32"), feature_names=list("abcd")
    )
    return result.classifier, rows


def test_save_and_load_round_trip_everything(fitted, tmp_path):
    classifier, rows = fitted
    path = tmp_path / "model.npz"
    save(classifier, path)
    loaded = load(path)
    for name, value in classifier.model.parameters.items():
        np.testing.assert_array_equal(loaded.model.parameters[name], value)
        assert loaded.model.parameters[name].dtype == np.float32
    np.testing.assert_array_equal(loaded.predict_proba(rows), classifier.predict_proba(rows))
    assert list(loaded.predict(rows)) == list(classifier.predict(rows))
    assert loaded.classes == ["maybe", "no", "yes"]
    assert loaded.feature_names == ["a", "b", "c", "d"]
    assert (loaded.model_spec, loaded.training_spec) == (
        classifier.model_spec,
        classifier.training_spec,
    )
    np.testing.assert_array_equal(loaded.standardizer.mean, classifier.standardizer.mean)


def test_the_file_is_a_plain_npz_readable_without_pickle(fitted):
    classifier, _ = fitted
    with np.load(io.BytesIO(to_bytes(classifier)), allow_pickle=False) as archive:
        assert {"param/W1", "param/b1", "param/W2", "param/b2", "mean", "scale", "meta"} <= set(
            archive.files
        )
        meta = json.loads(archive["meta"].tobytes())
    assert meta["shapes"] == {"W1": [6, 4], "b1": [6, 1], "W2": [3, 6], "b2": [3, 1]}
    assert meta["dtype"] == "float32"


def _rewrite(data: bytes, member: str, change) -> bytes:
    """Copy the zip, passing one member's bytes through ``change``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(info, change(content) if info.filename == member else content)
    return out.getvalue()


def _flip_last_byte(content: bytes) -> bytes:
    return content[:-1] + bytes([content[-1] ^ 0x01])


def test_an_altered_parameter_fails_the_checksum(fitted):
    tampered = _rewrite(to_bytes(fitted[0]), "param/W1.npy", _flip_last_byte)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load(tampered)


def test_altered_metadata_is_refused(fitted):
    def rename_class(content: bytes) -> bytes:
        return content.replace(b'"maybe"', b'"never"')

    tampered = _rewrite(to_bytes(fitted[0]), "meta.npy", rename_class)
    with pytest.raises(ModelFileError):
        load(tampered)


@pytest.mark.parametrize("cut", [10, 200, -50])
def test_a_truncated_file_is_refused(fitted, cut):
    data = to_bytes(fitted[0])
    with pytest.raises(ModelFileError, match=r"not a readable model file|missing metadata"):
        load(data[:cut])


def test_a_pickle_inside_is_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"format": "backprop-model"}], dtype=object))
    with pytest.raises(ModelFileError):
        load(path)


def test_shapes_that_disagree_with_the_spec_are_refused(fitted):
    data = to_bytes(fitted[0])

    def more_features(content: bytes) -> bytes:
        return content.replace(b'"n_features": 4', b'"n_features": 5')

    with pytest.raises(ModelFileError):
        load(_rewrite(data, "meta.npy", more_features))
