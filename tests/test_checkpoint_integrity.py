"""Checkpoints are verified on load (sha256 of every file, from the manifest written last) and a failed
write names the file and the cause, leaving the previous checkpoint as it was."""
import builtins
import collections
import json
import os
import shutil

import pytest
import torch

import modules.checkpoint as checkpoint
from modules.checkpoint import (BLOB_MIN_BYTES, CHECKPOINT_FILE, MANIFEST_FILE, CheckpointError, read_checkpoint,
                                write_checkpoint)


@pytest.fixture(autouse=True)
def fresh_blob_sources(monkeypatch):
    """Each test writes its blobs itself instead of hard-linking an earlier test's files."""
    monkeypatch.setattr(checkpoint, "_written_blobs", {})


def state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"weights": torch.randn(5000, generator=g), "lm": torch.randint(0, 256, (BLOB_MIN_BYTES + 10,),
                                                                          generator=g, dtype=torch.uint8)
            .numpy().tobytes(), "name": f"run {seed}"}


def blob_name(folder):
    return next(f for f in os.listdir(folder) if f.startswith("blob-"))


def flip(path, at, count=64):
    data = bytearray(open(path, "rb").read())
    at = at % len(data)
    data[at:at + count] = bytes(b ^ 0xFF for b in data[at:at + count])
    open(path, "wb").write(bytes(data))


def test_manifest_lists_every_file_with_its_sha256(tmp_path):
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", state())
    files = json.load(open(os.path.join(folder, MANIFEST_FILE)))["files"]
    assert sorted(files) == sorted([CHECKPOINT_FILE, blob_name(folder)])
    for name, entry in files.items():
        assert entry["sha256"] == checkpoint._file_sha256(os.path.join(folder, name))
        assert entry["bytes"] == os.path.getsize(os.path.join(folder, name))
    task, loaded = read_checkpoint(folder)
    assert task == "transcribe" and loaded["lm"] == state()["lm"] and torch.equal(loaded["weights"], state()["weights"])


@pytest.mark.parametrize("where", [100, 2000, -300])
def test_flipped_bytes_in_model_pt_are_an_error_naming_checkpoint_and_file(tmp_path, where):
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", state())
    flip(os.path.join(folder, CHECKPOINT_FILE), where)
    with pytest.raises(CheckpointError, match=rf"checkpoint {folder}: model.pt is corrupt"):
        read_checkpoint(folder)


@pytest.mark.parametrize("with_manifest", [True, False])
def test_a_flipped_byte_in_a_blob_is_an_error_naming_it(tmp_path, with_manifest):
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", state())
    if not with_manifest:  # a checkpoint from before manifests: the blob's name is its hash
        os.remove(os.path.join(folder, MANIFEST_FILE))
    flip(os.path.join(folder, blob_name(folder)), 12345, count=1)
    with pytest.raises(CheckpointError, match=rf"{blob_name(folder)} is corrupt"):
        read_checkpoint(folder)


def test_an_emptied_model_pt_is_named_as_empty(tmp_path):
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", state())
    for manifest in (True, False):
        open(os.path.join(folder, CHECKPOINT_FILE), "wb").close()
        if not manifest:
            os.remove(os.path.join(folder, MANIFEST_FILE))
        with pytest.raises(CheckpointError, match=r"model.pt is empty"):
            read_checkpoint(folder)
    with pytest.raises(CheckpointError, match=rf"{folder}/model.pt is empty"):
        checkpoint.load_file(os.path.join(folder, CHECKPOINT_FILE))


def test_a_damaged_earlier_blob_is_not_linked_into_a_new_checkpoint(tmp_path):
    first, second = str(tmp_path / "1"), str(tmp_path / "2")
    write_checkpoint(first, "transcribe", state())
    flip(os.path.join(first, blob_name(first)), 7, count=1)  # bit rot in the source of the hard link
    write_checkpoint(second, "transcribe", state())
    assert read_checkpoint(second)[1]["lm"] == state()["lm"]
    assert os.stat(os.path.join(second, blob_name(second))).st_nlink == 1


def test_checkpoints_without_a_manifest_still_load(tmp_path):
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", state())
    os.remove(os.path.join(folder, MANIFEST_FILE))
    assert read_checkpoint(folder)[1]["name"] == "run 0"
    old = str(tmp_path / "old")  # format 1: one torch file, no blobs
    os.makedirs(old)
    checkpoint.save_file({"recognizer": {"w": torch.ones(3)}, "trainer": None}, os.path.join(old, CHECKPOINT_FILE))
    assert read_checkpoint(old)[0] == "transcribe"


def full_disk_open(monkeypatch, target):
    """Writes to temporary files of `target` go to /dev/full: ENOSPC, as on a full disk."""
    def open_(path, mode="r", *args, **kwargs):
        if ".tmp-" in str(path) and target in os.path.basename(str(path)) and "w" in mode:
            return builtins.open("/dev/full", "wb")
        return builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "open", open_, raising=False)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("target", [CHECKPOINT_FILE, MANIFEST_FILE, "blob-"])
def test_a_full_disk_names_file_and_cause_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, target):
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", state(0))
    before = sorted(os.listdir(folder))
    full_disk_open(monkeypatch, target)
    with pytest.raises(CheckpointError, match=rf"cannot write checkpoint file {folder}/{target}.*: the disk is full"):
        write_checkpoint(folder, "transcribe", state(1))
    monkeypatch.undo()
    if target != MANIFEST_FILE:  # the new model.pt never replaced the old one
        assert sorted(os.listdir(folder)) == before  # no temporary file left
        assert read_checkpoint(folder)[1]["name"] == "run 0"  # verified against its manifest
    else:  # model.pt was replaced, its manifest could not be written: complete, loads unverified
        assert read_checkpoint(folder)[1]["name"] == "run 1"


def test_torch_unexpected_pos_on_a_full_disk_is_named(tmp_path, monkeypatch):
    """torch reports a failed write as `unexpected pos A vs B`; with no OSError underneath, the free
    space says why."""
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", {"w": torch.ones(3)})

    def failing_save(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 909376 vs 909264")

    monkeypatch.setattr(torch, "save", failing_save)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 10 << 30, 4096))
    with pytest.raises(CheckpointError, match=r"model.pt: the disk is probably full \(4096 bytes free; "
                                              r"RuntimeError: .*unexpected pos"):
        write_checkpoint(folder, "transcribe", {"w": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(folder)[1]["w"], torch.ones(3))


def test_killed_between_model_and_manifest_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    """Rewriting a folder: the old manifest goes before the new model.pt comes, so a process killed
    between the renames never leaves hashes that do not match."""
    folder = str(tmp_path / "ck")
    write_checkpoint(folder, "transcribe", state(0))

    def killed(path, data):
        raise KeyboardInterrupt  # stands for SIGKILL after model.pt's rename

    monkeypatch.setattr(checkpoint, "_write_atomically", killed)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(folder, "transcribe", state(1))
    monkeypatch.undo()
    assert not os.path.exists(os.path.join(folder, MANIFEST_FILE))
    assert read_checkpoint(folder)[1]["name"] == "run 1"
