"""mimo_hf/hub/references.py: what a --model / --baseline argument may name, checked before anything loads."""

import pytest

from mimo_hf.hub.references import check_model_reference, load_failure_message


def test_a_checkpoint_folder_and_a_hub_id_pass(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    check_model_reference(tmp_path)
    check_model_reference("mimo-hf/mimoconv16-2-n4-cifar10")  # a Hub id: only the Hub can say whether it exists


@pytest.mark.parametrize("name, message", [
    ("zoo/nothing/", "no such folder, and not a Hub id"),
    ("./zoo/nothing", "no such folder, and not a Hub id"),
    ("runs/zoo/nothing", "no such folder, and not a Hub id"),
    ("nothing", "no such folder, and not a Hub id"),
    ("/owner/name", "no such folder, and not a Hub id"),
])
def test_what_is_neither_is_refused_with_its_name(name, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"--baseline {name}: {message}"):
        check_model_reference(name, "--baseline")


def test_a_folder_without_config_and_a_file_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        check_model_reference(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="a file, not a checkpoint folder"):
        check_model_reference(tmp_path / "model.safetensors")


def test_a_load_failure_names_the_flag_where_it_looked_and_the_first_line(tmp_path):
    error = OSError("We couldn't connect to 'https://huggingface.co'\nCheck your internet connection")
    text = load_failure_message("owner/name", error, "--baseline")
    assert text.startswith("--baseline owner/name: could not load it from the Hub") and text.endswith("huggingface.co'")
    assert "its folder" in load_failure_message(str(tmp_path), OSError("no file named model.safetensors"))
