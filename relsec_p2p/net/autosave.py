"""A node's encrypted save: written when asked, kept up to date, resumed from.

Rules of this file:
- Nothing is written unless someone asked for that file (``save``, or
  ``keep_saved`` for ``--save``); the sealing and the atomic write are
  ``net/files.py``'s and ``core/save.py``'s.
- The meeting is snapshotted on the event loop (the log changes under it);
  sealing and writing run off it, one at a time (``_writing``).
- A save never holds the ring secret (core/save.py), so when to rewrite does
  not depend on what is open: a save written during an anonymous poll holds
  no more than one written after it.
- Every save file of this meeting this node wrote or opened is remembered, so
  the panic key can delete them (``delete_saves``); after that nothing is
  written again, and a save that was being written when it was asked for
  finishes first, so it cannot land after the deletion.
- While the meeting changes, the kept save is rewritten at most every
  ``AUTOSAVE_S``, and once more when the node closes; a failed automatic save
  is reported (``SaveFailed``) and retried, never silently dropped.
- Logs say how many entries and bytes, never what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import LocalProtocolError
from ..core.save import OtherMeeting, SaveError, payload_of, restore_session
from ..core.template import TemplateError, parse_template
from .files import SaveFile, delete_save

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("relsec.node")

AUTOSAVE_S = 2.0  # at most this often while the meeting changes (and once on close)
AUTOSAVE_RETRY_S = 30.0  # after a failed automatic save

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


@dataclass(frozen=True, slots=True)
class SaveFailed:
    """An automatic save did not happen; ``message`` is for the person, not the log."""

    message: str

    def __str__(self) -> str:
        return "automatic save failed"


class Autosave:
    """The save file of one node's meeting and when to write it."""

    def __init__(
        self, node: Node, *, spawn: Spawn, on_failed: Callable[[SaveFailed], None]
    ) -> None:
        self._node = node
        self._spawn = spawn
        self._on_failed = on_failed
        self._save_file: SaveFile | None = None  # where --save keeps the meeting
        self._saved_marker: tuple[int, int] | None = None
        self._last_save = 0.0
        self._autosave_task: asyncio.Task[Any] | None = None
        self._closing = False
        self._writing = asyncio.Lock()
        self._known: dict[Path, None] = {}  # save files of this meeting, in order
        self._deleted = False

    def _log_marker(self) -> tuple[int, int]:
        session = self._node.session
        return (0, 0) if session is None else (len(session.log), len(session.log.forks))

    def _remember(self, path: Path) -> None:
        self._known[path.absolute()] = None

    async def _write_save(self, target: SaveFile) -> int:
        async with self._writing:
            if self._deleted:
                raise SaveError("The saves of this meeting were deleted; nothing more is saved.")
            session = self._node.session
            if session is None:
                raise LocalProtocolError("There is no meeting to save yet.")
            template = self._node.template
            # Snapshot on the loop (the log changes under it), seal and write off it.
            payload = payload_of(session, template=template.text if template else None)
            marker = self._log_marker()
            if target.mid == payload.mid:  # already holds this meeting, whatever happens next
                self._remember(target.path)
            size = await asyncio.to_thread(target.write, payload)
            self._remember(target.path)  # only now: a file of another meeting is not ours
        if target is self._save_file:
            self._saved_marker = marker
        log.info("meeting saved: %d entries, %d bytes", len(payload.envelopes), size)
        return size

    async def save(self, path: Path, passphrase: str) -> int:
        """Save the meeting to ``path`` now (encrypted); returns the bytes written."""
        if self._node.session is None:
            raise LocalProtocolError("There is no meeting to save yet.")
        target = await asyncio.to_thread(SaveFile.prepare, path, passphrase)
        return await self._write_save(target)

    async def keep_saved(self, path: Path, passphrase: str) -> None:
        """Keep an encrypted save at ``path`` from now on: rewritten while the
        meeting changes (at most every ``AUTOSAVE_S``) and when the node closes."""
        self._save_file = await asyncio.to_thread(SaveFile.prepare, path, passphrase)
        self._saved_marker = None
        if self._node.session is not None:
            await self._write_save(self._save_file)

    def keep_saving_to(self, save_file: SaveFile) -> None:
        """Keep the file a meeting was just resumed from up to date: what it
        holds now is what the node holds."""
        self._save_file = save_file
        self._saved_marker = self._log_marker()
        self._remember(save_file.path)

    def tick(self) -> None:
        """Start an automatic save if the meeting changed since the last one
        and the last was long enough ago (called by the node's timer)."""
        target = self._save_file
        if target is None or self._node.session is None or self._closing:
            return
        if self._autosave_task is not None and not self._autosave_task.done():
            return
        if self._log_marker() == self._saved_marker:
            return
        if time.monotonic() - self._last_save < AUTOSAVE_S:
            return
        self._last_save = time.monotonic()
        self._autosave_task = self._spawn(self._autosave(target))

    async def _autosave(self, target: SaveFile) -> None:
        try:
            await self._write_save(target)
        except (SaveError, LocalProtocolError) as error:  # the disk, or no meeting: one sentence
            if self._deleted:
                return  # deleted on purpose while this one waited: nothing failed
            log.warning("automatic save failed: %s", error.code)
            self._on_failed(SaveFailed(str(error)))
            if isinstance(error, OtherMeeting):
                self._save_file = None  # that file stays as it is: stop trying
            else:  # a full disk, say: try again, but not every tick
                self._last_save = time.monotonic() + AUTOSAVE_RETRY_S - AUTOSAVE_S

    async def final_save(self) -> None:
        """On close: let a running save finish (so it cannot land after this
        one with older content), then save what changed since; no automatic
        save starts after this."""
        self._closing = True
        if self._autosave_task is not None and not self._autosave_task.done():
            with contextlib.suppress(Exception):
                await self._autosave_task
        if (
            self._save_file is not None
            and self._node.session is not None
            and self._log_marker() != self._saved_marker
        ):
            await self._autosave(self._save_file)

    def kept_at(self) -> tuple[Path, bool] | None:
        """Where the meeting is kept saved now, and whether a save of it has
        been written there yet (None: nowhere, or not any more)."""
        if self._save_file is None:
            return None
        return self._save_file.path, self._saved_marker is not None

    def files(self) -> list[Path]:
        """The save files of this meeting that this node wrote or opened and
        that are still there (files of earlier runs it did not open are not
        known to it)."""
        return [path for path in self._known if path.exists()]

    async def delete_saves(self) -> list[Path]:
        """Overwrite and delete every save file of this meeting this node wrote
        or opened (``net/files.py`` ``delete_save``: what that does and does
        not guarantee); nothing is saved after this. Returns the files
        deleted; raises ``SaveError`` (after trying them all) if one could not be."""
        self._closing = True
        self._deleted = True
        self._save_file = None
        if self._autosave_task is not None and not self._autosave_task.done():
            with contextlib.suppress(Exception):
                await self._autosave_task
        deleted: list[Path] = []
        failed: list[str] = []
        async with self._writing:  # a save being written lands first, then goes
            for path in list(self._known):
                try:
                    if await asyncio.to_thread(delete_save, path):
                        deleted.append(path)
                except SaveError as error:
                    failed.append(str(error))
        log.info("saves deleted: %d, failed: %d", len(deleted), len(failed))
        if failed:
            raise SaveError(" ".join(failed))
        return deleted

    async def resume_from(
        self,
        path: Path,
        passphrase: str,
        *,
        expected_mid: bytes | None = None,
        keep_saving: bool = False,
    ) -> None:
        """Open the save at ``path`` and carry on its meeting; with
        ``keep_saving`` the save is kept up to date at the same path."""
        node = self._node
        if node.session is not None:
            raise LocalProtocolError(
                "This laptop is already in a meeting; resume the save in a new relsec."
            )
        save_file, payload = await asyncio.to_thread(SaveFile.opened, path, passphrase)
        if expected_mid is not None and payload.mid != expected_mid:
            raise OtherMeeting("This save file belongs to another meeting.")
        self._remember(path)  # it holds this meeting, kept up to date or not
        session = await asyncio.to_thread(restore_session, payload, node.clock)
        template = None
        if payload.template:
            with contextlib.suppress(TemplateError):
                template = parse_template(payload.template, "the saved template")
        node.resume(session, template=template, save_file=save_file if keep_saving else None)
        log.info("meeting resumed: %d entries", len(session.log))


__all__ = ["AUTOSAVE_RETRY_S", "AUTOSAVE_S", "Autosave", "SaveFailed"]
