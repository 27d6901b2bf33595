"""Hugging Face Hub ids: downloaded (where the network allows) before conversion; bad paths refused."""

import sys
import types

import pytest
from conftest import TINY, make_inputs

import electra_tf
from electra_tf.conversion.huggingface import HUB_FILES, resolve_huggingface_path


def test_a_hub_id_is_downloaded_then_converted(tmp_path, monkeypatch):
    encoder = electra_tf.ElectraEncoder(**TINY)
    encoder(make_inputs())
    checkpoint = tmp_path / "snapshot"
    encoder.save_huggingface(str(checkpoint))
    calls = []

    def snapshot_download(repo_id, allow_patterns):  # what Colab's network would fetch
        calls.append((repo_id, allow_patterns))
        return str(checkpoint)

    monkeypatch.setitem(sys.modules, "huggingface_hub",
                        types.SimpleNamespace(snapshot_download=snapshot_download))
    loaded = electra_tf.ElectraEncoder.from_huggingface("google/electra-small-discriminator")
    assert calls == [("google/electra-small-discriminator", HUB_FILES)]
    inputs = make_inputs()
    assert (loaded(inputs)["sequence_output"].numpy()
            == encoder(inputs)["sequence_output"].numpy()).all()


def test_a_local_directory_is_used_as_it_is(tmp_path):
    assert resolve_huggingface_path(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("path", ["no_such_folder", "a/b/c", "./owner/name", "/abs/model"])
def test_neither_a_directory_nor_a_hub_id_is_refused(path):
    with pytest.raises(ValueError, match="is not one"):
        resolve_huggingface_path(path)


def test_a_missing_huggingface_hub_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ImportError, match="huggingface_hub"):
        resolve_huggingface_path("google/electra-small-discriminator")
