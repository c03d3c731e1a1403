"""Checkpoint folders: `{task, state}` written atomically, read back with torch.load(weights_only=True).

A checkpoint is one folder (the one `nsml.save` hands the bound save function):

    model.pt          {'format': 2, 'task': 'transcribe' | 'classify', 'state': the task's state dict}
    blob-<sha256>     each large `bytes` value of the state (the LM counts, a SentencePiece model),
                      which model.pt names by its hash
    manifest.json     sha256 and size of every other file, written last; `read_checkpoint` checks
                      them all before loading, so a flipped byte is an error naming the checkpoint
                      and the file instead of a model that scores quietly wrong (checkpoints
                      written before the manifest load unchecked, their blobs still checked
                      against the hash in their names)

The state holds tensors, numbers, strings, lists, dicts and bytes only, so loading it never
runs code from the file. Large byte strings are the same in every checkpoint of a session
(the LM is counted once, before training), so a process that already wrote one hard-links
its earlier file instead of writing it again: every checkpoint stays a complete folder that
can be copied, pulled or submitted alone, while the disk holds the data once.
"""
import errno
import hashlib
import json
import os
import shutil

import torch

CHECKPOINT_FILE = "model.pt"
MANIFEST_FILE = "manifest.json"
FORMAT = 2
BLOB_MIN_BYTES = 1 << 20  # smaller byte strings stay inside model.pt
_BLOB_KEY = "__blob__"


class CheckpointError(Exception):
    """A checkpoint that cannot be written or read back as written; the message names folder, file and cause."""


_written_blobs = {}  # sha256 -> paths this process wrote it to, newest last (the sources of hard links)


def write_checkpoint(folder: str, task: str, state: dict) -> None:
    """Write `state` of `task` into `folder`; a reader sees either the old model.pt or the whole new one.

    Every file goes through a temporary file renamed into place, so a failed write (a full disk:
    CheckpointError naming file and cause) or a killed process leaves what was there before. An
    earlier manifest is removed once the new model.pt is written, just before it replaces the old one:
    a process killed between the two renames leaves a complete checkpoint without hashes, never one
    whose hashes do not match, and a failed write leaves the old checkpoint verified as before."""
    os.makedirs(folder, exist_ok=True)
    blobs = {}
    payload = {"format": FORMAT, "task": task, "state": _externalise(state, blobs)}
    manifest, model_path = os.path.join(folder, MANIFEST_FILE), os.path.join(folder, CHECKPOINT_FILE)

    def remove_old_manifest():
        if os.path.exists(manifest):
            os.remove(manifest)

    hashes, new_blobs = {}, []
    try:
        for digest, data in blobs.items():  # before model.pt, which refers to them
            existed = os.path.exists(os.path.join(folder, f"blob-{digest}"))
            name = _write_blob(folder, digest, data)
            hashes[name] = {"sha256": digest, "bytes": len(data)}
            if not existed:
                new_blobs.append(name)
        digest = save_file(payload, model_path, before_replace=remove_old_manifest)
    except CheckpointError:  # the old model.pt stays: the blobs only the new one needed go (a full disk)
        for name in new_blobs:
            os.remove(os.path.join(folder, name))
        raise
    hashes[CHECKPOINT_FILE] = {"sha256": digest, "bytes": os.path.getsize(model_path)}
    _write_atomically(manifest, json.dumps({"files": hashes}, indent=1, sort_keys=True).encode("utf-8"))


def read_checkpoint(folder: str):
    """(task, state) of the checkpoint in `folder`, written by this or an earlier version of the kit;
    CheckpointError naming the folder and file when a file is missing, empty or not as written."""
    verified = verify_checkpoint(folder)
    payload = load_file(os.path.join(folder, CHECKPOINT_FILE), where=f"checkpoint {folder}")
    if payload.get("format") == FORMAT:
        return payload["task"], _internalise(payload["state"], folder, verified)
    # Before format 2: {'recognizer', 'trainer'} for speech, {'task': 'classify', 'classifier'} for clips.
    if payload.get("task") == "classify":
        return "classify", {"classifier": payload["classifier"]}
    if "recognizer" in payload:
        return "transcribe", {"recognizer": payload["recognizer"], "trainer": payload.get("trainer")}
    raise ValueError(f"{folder}: {CHECKPOINT_FILE} is not a checkpoint of this kit (keys {sorted(payload)})")


def verify_checkpoint(folder: str) -> set:
    """Check every file the manifest lists against its size and sha256; the names checked (none for a
    checkpoint written before manifests). CheckpointError naming the checkpoint and file otherwise."""
    model_path = os.path.join(folder, CHECKPOINT_FILE)
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"no checkpoint file at {model_path}")
    if os.path.getsize(model_path) == 0:
        raise CheckpointError(f"checkpoint {folder}: {CHECKPOINT_FILE} is empty (0 bytes)")
    manifest_path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.exists(manifest_path):
        return set()
    try:
        with open(manifest_path, "rb") as f:
            files = json.loads(f.read().decode("utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {folder}: {MANIFEST_FILE} cannot be read ({e})") from e
    for name, expected in sorted(files.items()):
        path = os.path.join(folder, name)
        if os.path.basename(name) != name or not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {folder}: {name} is missing")
        try:
            actual = _file_sha256(path)
        except OSError as e:
            raise CheckpointError(f"checkpoint {folder}: {name} cannot be read ({e.strerror})") from e
        if actual != expected.get("sha256"):
            size = os.path.getsize(path)
            what = "empty (0 bytes)" if size == 0 else f"{size} bytes, {expected.get('bytes')} when written"
            raise CheckpointError(f"checkpoint {folder}: {name} is corrupt: its sha256 differs from the one "
                                  f"recorded when it was written ({what})")
    return set(files)


def save_file(payload: dict, path: str, before_replace=None) -> str:
    """torch.save `payload` to `path` through a temporary file, fsynced, then renamed into place; the
    sha256 of what was written. A failed write (a full disk) raises CheckpointError naming the file
    and cause, and leaves `path` as it was. `before_replace()` runs once the file is written, just
    before the rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        digest = _file_sha256(tmp)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)  # atomic on POSIX: a process killed before this leaves `path` as it was
        return digest
    except (OSError, RuntimeError) as e:
        raise CheckpointError(f"cannot write checkpoint file {path}: {_write_failure(e, path)}") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_file(path: str, where: str = None) -> dict:
    """torch.load(weights_only=True) of `path`; CheckpointError naming it (and `where`) when it is empty
    or not a readable torch file (an `EOFError:` or zip error alone names neither)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path}")
    prefix = f"{where}: " if where else ""
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{prefix}{path} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        # weights_only's refusal of a pickle that would run code is an UnpicklingError: say so as it is
        raise CheckpointError(f"{prefix}{path} cannot be loaded ({type(e).__name__}: {e})") from e


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_failure(error: Exception, path: str) -> str:
    """Why a write failed, in words: the full disk that torch reports as `unexpected pos 909376 vs
    909264` is found in the exception chain (the OSError underneath) or by asking for free space."""
    chain, e = [], error
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"the disk is full ({os.strerror(e.errno)})"
        if isinstance(e, OSError) and e.errno:
            return os.strerror(e.errno)
    try:
        free = shutil.disk_usage(os.path.dirname(path) or ".").free
    except OSError:
        free = None
    if free is not None and free < 16 << 20:
        return f"the disk is probably full ({free} bytes free; {type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


def _write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint file {path}: {_write_failure(e, path)}") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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


def _internalise(value, folder: str, verified: set = frozenset()):
    """`value` with each blob reference replaced by the blob's bytes; a blob the manifest did not
    cover (a checkpoint from before manifests) is checked against the sha256 in its name."""
    if isinstance(value, dict):
        if set(value) == {_BLOB_KEY}:
            name = f"blob-{value[_BLOB_KEY]}"
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    data = f.read()
            except OSError as e:
                raise FileNotFoundError(f"{folder}: checkpoint data file {name} is missing ({e.strerror})") from e
            if name not in verified and hashlib.sha256(data).hexdigest() != value[_BLOB_KEY]:
                raise CheckpointError(f"checkpoint {folder}: {name} is corrupt: its sha256 is not the one "
                                      "in its name")
            return data
        return {k: _internalise(v, folder, verified) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_internalise(v, folder, verified) for v in value)
    return value


def _write_blob(folder: str, digest: str, data: bytes) -> str:
    """Write (or hard-link) blob `digest` into `folder`; its file name."""
    name = f"blob-{digest}"
    path = os.path.join(folder, name)
    if os.path.exists(path):
        return name
    tmp = f"{path}.tmp-{os.getpid()}"
    sources = _written_blobs.setdefault(digest, [])
    for source in reversed(sources):  # an earlier checkpoint's copy: link it, write nothing
        try:
            if _file_sha256(source) != digest:  # damaged since: a link would copy the damage
                continue
            os.link(source, tmp)
            break
        except OSError:  # gone (a replaced checkpoint), another file system, no hard links
            continue
    else:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise CheckpointError(f"cannot write checkpoint file {path}: {_write_failure(e, path)}") from e
    os.replace(tmp, path)
    sources.append(path)
    del sources[:-8]  # a few recent sources are enough: checkpoints are replaced, rarely all at once
    return name
