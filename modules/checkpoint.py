"""Checkpoint folders: `{task, state}` written atomically, read back with torch.load(weights_only=True).

A checkpoint is one folder (the one `nsml.save` hands the bound save function):

    model.pt          {'format': 2, 'task': 'transcribe' | 'classify', 'state': the task's state dict}
    blob-<sha256>     each large `bytes` value of the state (the LM counts, a SentencePiece model),
                      which model.pt names by its hash

The state holds tensors, numbers, strings, lists, dicts and bytes only, so loading it never
runs code from the file. Large byte strings are the same in every checkpoint of a session
(the LM is counted once, before training), so a process that already wrote one hard-links
its earlier file instead of writing it again: every checkpoint stays a complete folder that
can be copied, pulled or submitted alone, while the disk holds the data once.
"""
import hashlib
import os

import torch

CHECKPOINT_FILE = "model.pt"
FORMAT = 2
BLOB_MIN_BYTES = 1 << 20  # smaller byte strings stay inside model.pt
_BLOB_KEY = "__blob__"

_written_blobs = {}  # sha256 -> paths this process wrote it to, newest last (the sources of hard links)


def write_checkpoint(folder: str, task: str, state: dict) -> None:
    """Write `state` of `task` into `folder`; a reader sees either the old model.pt or the whole new one."""
    os.makedirs(folder, exist_ok=True)
    blobs = {}
    payload = {"format": FORMAT, "task": task, "state": _externalise(state, blobs)}
    for digest, data in blobs.items():  # before model.pt, which refers to them
        _write_blob(folder, digest, data)
    save_file(payload, os.path.join(folder, CHECKPOINT_FILE))


def read_checkpoint(folder: str):
    """(task, state) of the checkpoint in `folder`, written by this or an earlier version of the kit."""
    payload = load_file(os.path.join(folder, CHECKPOINT_FILE))
    if payload.get("format") == FORMAT:
        return payload["task"], _internalise(payload["state"], folder)
    # Before format 2: {'recognizer', 'trainer'} for speech, {'task': 'classify', 'classifier'} for clips.
    if payload.get("task") == "classify":
        return "classify", {"classifier": payload["classifier"]}
    if "recognizer" in payload:
        return "transcribe", {"recognizer": payload["recognizer"], "trainer": payload.get("trainer")}
    raise ValueError(f"{folder}: {CHECKPOINT_FILE} is not a checkpoint of this kit (keys {sorted(payload)})")


def save_file(payload: dict, path: str) -> None:
    """torch.save `payload` to `path` through a temporary file, fsynced, then renamed into place."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: a process killed before this leaves `path` as it was
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def _externalise(value, blobs: dict):
    """`value` with each large bytes object replaced by {'__blob__': sha256}, collected in `blobs`."""
    if isinstance(value, dict):
        return {k: _externalise(v, blobs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_externalise(v, blobs) for v in value)
    if isinstance(value, (bytes, bytearray)) and len(value) >= BLOB_MIN_BYTES:
        digest = hashlib.sha256(value).hexdigest()
        blobs[digest] = bytes(value)
        return {_BLOB_KEY: digest}
    return value


def _internalise(value, folder: str):
    if isinstance(value, dict):
        if set(value) == {_BLOB_KEY}:
            path = os.path.join(folder, f"blob-{value[_BLOB_KEY]}")
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as e:
                raise FileNotFoundError(f"{folder}: checkpoint data file {os.path.basename(path)} is missing "
                                        f"({e.strerror})") from e
        return {k: _internalise(v, folder) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_internalise(v, folder) for v in value)
    return value


def _write_blob(folder: str, digest: str, data: bytes) -> None:
    path = os.path.join(folder, f"blob-{digest}")
    if os.path.exists(path):
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    sources = _written_blobs.setdefault(digest, [])
    for source in reversed(sources):  # an earlier checkpoint's copy: link it, write nothing
        try:
            os.link(source, tmp)
            break
        except OSError:  # gone (a replaced checkpoint), another file system, no hard links
            continue
    else:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    sources.append(path)
    del sources[:-8]  # a few recent sources are enough: checkpoints are replaced, rarely all at once
