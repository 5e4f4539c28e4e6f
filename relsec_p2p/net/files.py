"""Files the user asked for: encrypted saves and exported records.

Rules of this file:
- Nothing is written unless a person asked for that file. Every write goes to
  a private temporary file (mode 0600) in the target's own folder, is flushed
  to disk, then renamed over the target: a crash or a full disk leaves either
  the old file or the new one, never half of one.
- A save never replaces a file this laptop cannot prove is an older save of
  the same meeting (opened with the same passphrase); an export never
  replaces a save file.
- Functions here block (Argon2id, disk): the node calls them from a thread.
  Errors are one plain sentence (``SaveError``); logs never name the file.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.record import render_json, render_markdown
from ..core.save import (
    MAGIC,
    DamagedSave,
    OtherMeeting,
    SaveError,
    SaveKey,
    SavePayload,
    WrongPassphrase,
    derive_key,
    open_save_keyed,
    seal_save,
)
from ..core.state import MeetingState
from ..core.template import Template


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (temp file + fsync + rename)."""
    directory = path.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as error:
        raise SaveError(f"Cannot write in the folder of {path} ({_reason(error)}).") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise SaveError(
            f"Could not write {path} ({_reason(error)}); nothing was changed."
        ) from None
    with contextlib.suppress(OSError):  # make the rename itself durable
        folder = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SaveError(f"There is no file {path}; check the name.") from None
    except OSError as error:
        raise SaveError(f"Cannot read {path} ({_reason(error)}).") from None


def _holds_save(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def write_export(path: Path, text: str) -> None:
    """Write an exported record (Markdown or JSON)."""
    if _holds_save(path):
        raise SaveError(f"{path} is a save file; choose another name for the export.")
    write_atomically(path, text.encode("utf-8"))


def export_record(
    state: MeetingState,
    *,
    safety_number: str,
    template: Template | None,
    markdown: Path | None = None,
    json: Path | None = None,
) -> None:
    """Write the meeting's record where asked: Markdown, JSON, or both."""
    if markdown is None and json is None:
        raise SaveError("Say where to write the record: a Markdown file, a JSON file or both.")
    if markdown is not None:
        text = render_markdown(state, safety_number=safety_number, template=template)
        write_export(markdown, text)
    if json is not None:
        data = render_json(state, safety_number=safety_number, template=template)
        write_export(json, jsonlib.dumps(data, indent=2, ensure_ascii=False) + "\n")


@dataclass(slots=True)
class SaveFile:
    """A file this laptop saves the meeting to, with its stretched key.

    ``mid`` is the meeting the file already holds (None: no file yet). Saving
    another meeting over it is refused."""

    path: Path
    key: SaveKey
    mid: bytes | None = None

    @classmethod
    def prepare(cls, path: Path, passphrase: str) -> SaveFile:
        """Get ready to save at ``path``: a new file gets a fresh salt; an
        existing file must be a save this passphrase opens (it is then kept
        until a save of the same meeting replaces it)."""
        if not path.exists():
            if not path.parent.is_dir():
                raise SaveError(f"The folder for {path} does not exist.")
            return cls(path, derive_key(passphrase))
        blob = read_file(path)
        if not blob.startswith(MAGIC):
            raise SaveError(f"{path} already exists and is not a relsec save; choose another name.")
        try:
            payload, key = open_save_keyed(blob, passphrase)
        except WrongPassphrase:
            raise SaveError(
                f"{path} holds a save that this passphrase does not open; choose another "
                "name, or the passphrase it was saved with."
            ) from None
        except DamagedSave:
            raise SaveError(
                f"{path} holds a damaged save; it is left as it is: choose another name."
            ) from None
        return cls(path, key, payload.mid)

    @classmethod
    def opened(cls, path: Path, passphrase: str) -> tuple[SaveFile, SavePayload]:
        """Open an existing save to resume from it (and to save back to it)."""
        payload, key = open_save_keyed(read_file(path), passphrase)
        return cls(path, key, payload.mid), payload

    def write(self, payload: SavePayload) -> int:
        """Seal ``payload`` and replace the file; returns the bytes written."""
        if self.mid is not None and self.mid != payload.mid:
            raise OtherMeeting(
                f"{self.path} holds the save of another meeting; it is left as it is: "
                "choose another name."
            )
        blob = seal_save(payload, self.key)
        write_atomically(self.path, blob)
        self.mid = payload.mid
        return len(blob)


__all__ = ["SaveFile", "export_record", "read_file", "write_atomically", "write_export"]
