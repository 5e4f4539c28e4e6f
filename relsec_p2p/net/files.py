"""Files the user asked for: encrypted saves and exported records.

Rules of this file:
- Nothing is written unless a person asked for that file. Every write goes to
  a private temporary file (mode 0600) in the target's own folder, is flushed
  to disk, then renamed over the target: a crash or a full disk leaves either
  the old file or the new one, never half of one.
- A save never replaces a file this laptop cannot prove is an older save of
  the same meeting (opened with the same passphrase); an export never
  replaces a save file.
- Deleting a save (the panic key) overwrites its bytes in place with noise,
  flushes them to the disk, then removes the name; a temporary file a crashed
  write left beside it goes the same way. What that can and cannot promise is
  ``delete_save``'s docstring (and the README's).
- Functions here block (Argon2id, disk): the node calls them from a thread.
  Errors are one plain sentence (``SaveError``); logs never name the file.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.i18n import _
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


def _fsync_folder(directory: Path) -> None:
    with contextlib.suppress(OSError):
        folder = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (temp file + fsync + rename)."""
    directory = path.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as error:
        raise SaveError(
            _("Cannot write in the folder of {path} ({reason}).").format(
                path=path, reason=_reason(error)
            )
        ) from None
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
            _("Could not write {path} ({reason}); nothing was changed.").format(
                path=path, reason=_reason(error)
            )
        ) from None
    _fsync_folder(directory)  # make the rename itself durable


OVERWRITE_CHUNK = 1 << 20


def _overwrite_and_unlink(path: Path, *, empty_too: bool) -> bool:
    """Noise over every byte of ``path`` (flushed), then unlink it; a file
    that does not start as a save (or, with ``empty_too``, is not empty: a
    temporary file is created empty) is left alone."""
    # O_NOFOLLOW: a symlink put where the save was is not followed to
    # overwrite whatever it points at.
    handle = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        head = os.read(handle, len(MAGIC))
        if head != MAGIC and not (empty_too and not head):
            return False
        left = os.fstat(handle).st_size
        os.lseek(handle, 0, os.SEEK_SET)
        while left > 0:
            left -= os.write(handle, os.urandom(min(left, OVERWRITE_CHUNK)))
        os.fsync(handle)
    finally:
        os.close(handle)
    os.unlink(path)
    return True


def _temporaries_of(path: Path) -> list[Path]:
    """Temporary files ``write_atomically`` made for ``path`` and a crash left:
    ``.NAME.`` + mkstemp's 8 random characters + ``.part`` (so the ones of a
    save called ``NAME.x`` are not taken for ours)."""
    head, tail = f".{path.name}.", ".part"
    try:
        names = [entry.name for entry in path.parent.iterdir()]
    except OSError:
        return []
    return [
        path.parent / name
        for name in names
        if name.startswith(head)
        and name.endswith(tail)
        and re.fullmatch(r"[a-z0-9_]{8}", name[len(head) : -len(tail)])
    ]


def delete_save(path: Path) -> bool:
    """Overwrite the save at ``path`` with random bytes, flush them to the
    disk, and remove it, with any temporary file a crashed save left beside
    it. False if there was no file; a file that is not a save is refused.

    What this promises: the name is gone, and the file's blocks were written
    over where the file system writes in place (ext4 and XFS on a spinning
    disk). What it cannot promise: a copy-on-write file system (btrfs, ZFS,
    APFS) writes the noise to new blocks; an SSD remaps writes and keeps old
    pages until it erases them; a journal may hold copies; and each earlier
    version of the file, which an atomic save left behind in freed blocks
    when it renamed the next one over it, is not reached at all. Those
    leftovers stay encrypted under the passphrase (and none written by this
    version holds the ring secret: core/save.py)."""
    for temporary in _temporaries_of(path):
        with contextlib.suppress(OSError):
            _overwrite_and_unlink(temporary, empty_too=True)
    try:
        if not _overwrite_and_unlink(path, empty_too=False):
            raise SaveError(
                _("{path} is no longer a relsec save; it is left as it is.").format(path=path)
            )
    except FileNotFoundError:
        return False
    except OSError as error:
        raise SaveError(
            _("Could not delete {path} ({reason}).").format(path=path, reason=_reason(error))
        ) from None
    finally:
        _fsync_folder(path.parent)
    return True


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SaveError(_("There is no file {path}; check the name.").format(path=path)) from None
    except OSError as error:
        raise SaveError(
            _("Cannot read {path} ({reason}).").format(path=path, reason=_reason(error))
        ) from None


def _holds_save(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def write_export(path: Path, text: str) -> None:
    """Write an exported record (Markdown or JSON)."""
    if _holds_save(path):
        raise SaveError(
            _("{path} is a save file; choose another name for the export.").format(path=path)
        )
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
        raise SaveError(_("Say where to write the record: a Markdown file, a JSON file or both."))
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
                raise SaveError(_("The folder for {path} does not exist.").format(path=path))
            return cls(path, derive_key(passphrase))
        blob = read_file(path)
        if not blob.startswith(MAGIC):
            raise SaveError(
                _("{path} already exists and is not a relsec save; choose another name.").format(
                    path=path
                )
            )
        try:
            payload, key = open_save_keyed(blob, passphrase)
        except WrongPassphrase:
            raise SaveError(
                _(
                    "{path} holds a save that this passphrase does not open; choose another "
                    "name, or the passphrase it was saved with."
                ).format(path=path)
            ) from None
        except DamagedSave:
            raise SaveError(
                _("{path} holds a damaged save; it is left as it is: choose another name.").format(
                    path=path
                )
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
                _(
                    "{path} holds the save of another meeting; it is left as it is: "
                    "choose another name."
                ).format(path=self.path)
            )
        blob = seal_save(payload, self.key)
        write_atomically(self.path, blob)
        self.mid = payload.mid
        return len(blob)


__all__ = [
    "SaveFile",
    "delete_save",
    "export_record",
    "read_file",
    "write_atomically",
    "write_export",
]
