"""What a `--model` / `--baseline` argument names: a local checkpoint folder or a Hub id (owner/name).

Checked before anything is loaded or scored, so that a mistyped path fails at once with its name instead of
after minutes of evaluation with transformers' "Repo id must be in the form ..." or "couldn't connect to
huggingface.co" (which is what a path that does not exist turns into when it is read as a Hub id)."""

from pathlib import Path


def check_model_reference(name, flag="--model"):
    """Raise FileNotFoundError unless `name` is a folder holding a config.json or has the form of a Hub id."""
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{flag} {name}: the folder has no config.json, so it is not a checkpoint folder "
                                    "(give the folder that holds config.json and the weights)")
        return
    if path.exists():
        raise FileNotFoundError(f"{flag} {name}: a file, not a checkpoint folder nor a Hub id (owner/name)")
    if name.startswith((".", "/", "~")) or name.count("/") != 1 or not all(name.split("/")):
        raise FileNotFoundError(f"{flag} {name}: no such folder, and not a Hub id (owner/name)")


def load_failure_message(name, error, flag="--model"):
    """The one-line error of a reference that passed `check_model_reference` but did not load."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = ("the Hub (no local folder has that name; offline, only models already in the cache load)"
             if not Path(name).expanduser().is_dir() else "its folder")
    return f"{flag} {name}: could not load it from {where}: {first_line}"
