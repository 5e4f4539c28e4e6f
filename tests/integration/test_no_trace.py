"""No trace by default: a whole meeting writes nothing to disk except the
export or save someone asked for; saves resume, and bad saves are refused
without being touched.

Every process runs with HOME, the XDG folders, TMPDIR and the working folder
pointed at empty folders, and with an audit hook (``sys.addaudithook``,
loaded through ``sitecustomize``) that lists every file any of them opens for
writing, creates, renames or removes: the test checks both the folders and
that list, so a write anywhere else on the machine is caught too."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from relsec_p2p.peerproc import PeerProcess, wait_all_equal

PASS = "a long shared passphrase"  # noqa: S105 -- a test passphrase
NAMES = ["Ana", "Bo", "Cy"]

AUDIT_HOOK = r"""
import os, sys
_LOG = os.environ.get("RELSEC_AUDIT_LOG")
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_busy = False
_PATH_FIRST = {"os.mkdir", "os.remove", "os.rmdir", "os.truncate", "os.chmod",
               "tempfile.mkstemp", "tempfile.mkdtemp", "shutil.copyfile", "shutil.move"}

def _hook(event, args):
    global _busy
    if _busy or not _LOG:
        return
    if event == "open":
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE)
        if not writing:
            return
    elif event in ("os.rename", "os.link", "os.symlink"):
        path = args[1]
    elif event in _PATH_FIRST:
        path = args[0]
    else:
        return
    if isinstance(path, int):
        return
    _busy = True
    try:
        with open(_LOG, "a", encoding="utf-8") as out:
            out.write(f"{event}\t{os.path.abspath(os.fsdecode(path))}\n")
    finally:
        _busy = False

if _LOG:
    sys.addaudithook(_hook)
"""


class Sandbox:
    """Empty HOME, XDG, TMPDIR and working folders, and the audit log."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.folders = {
            name: root / name
            for name in ("home", "config", "data", "state", "cache", "runtime", "tmp", "work")
        }
        for folder in self.folders.values():
            folder.mkdir()
        self.folders["runtime"].chmod(0o700)
        hook = root / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(AUDIT_HOOK, encoding="utf-8")
        self.audit_log = root / "audit.log"
        self.env = {
            "HOME": str(self.folders["home"]),
            "XDG_CONFIG_HOME": str(self.folders["config"]),
            "XDG_DATA_HOME": str(self.folders["data"]),
            "XDG_STATE_HOME": str(self.folders["state"]),
            "XDG_CACHE_HOME": str(self.folders["cache"]),
            "XDG_RUNTIME_DIR": str(self.folders["runtime"]),
            "TMPDIR": str(self.folders["tmp"]),
            "TMP": str(self.folders["tmp"]),
            "TEMP": str(self.folders["tmp"]),
            "PYTHONPATH": os.pathsep.join(
                [str(hook), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "RELSEC_AUDIT_LOG": str(self.audit_log),
        }
        self.work = self.folders["work"]

    def files(self) -> dict[str, list[str]]:
        """Every file now in the sandbox folders, relative to each folder."""
        return {
            name: sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
            for name, folder in self.folders.items()
            if any(folder.iterdir())
        }

    def writes(self) -> list[tuple[str, str]]:
        """(event, path) for every write the audit hook saw, less Python's own
        bytecode cache (program files, not meeting content)."""
        if not self.audit_log.exists():
            return []
        found = []
        for line in self.audit_log.read_text(encoding="utf-8").splitlines():
            event, path = line.split("\t", 1)
            if "__pycache__" in path or path.endswith(".pyc") or path.startswith("/dev/"):
                continue
            found.append((event, path))
        return found

    def check_only(self, *asked: pathlib.Path) -> None:
        """Nothing but ``asked`` (all in the work folder) is on disk or was written."""
        assert self.files() == ({"work": sorted(p.name for p in asked)} if asked else {}), (
            self.files()
        )
        allowed = {str(p) for p in asked}
        for event, path in self.writes():
            name = pathlib.Path(path).name
            # Atomic writes pass through a private temp file beside the target.
            temporary = any(
                pathlib.Path(path).parent == p.parent
                and name.startswith(f".{p.name}.")
                and name.endswith(".part")
                for p in asked
            )
            assert path in allowed or temporary, (event, path)


@pytest.fixture
def sandbox(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    box = Sandbox(tmp_path)
    monkeypatch.chdir(box.work)  # child processes start in the empty work folder
    return box


def relsec(
    sandbox: Sandbox, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relsec_p2p", *args],
        env={**os.environ, **sandbox.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def quit_all(peers: list[PeerProcess]) -> None:
    for peer in peers:
        peer.close()
        assert peer.proc.returncode == 0, "".join(peer.stderr_lines[-20:])


# --- the demo ------------------------------------------------------------------------


def test_the_demo_leaves_nothing_but_the_export(sandbox: Sandbox) -> None:
    record = sandbox.work / "record.md"
    result = relsec(sandbox, "demo", "--headless", "--export", str(record))
    assert result.returncode == 0, result.stderr[-2000:]
    assert record.read_text(encoding="utf-8").startswith("# ")
    sandbox.check_only(record)
    # The hook really ran in every process (the demo starts peer processes):
    # it saw the export being written, and more than one process wrote it down.
    assert any(path == str(record) for _, path in sandbox.writes())


def test_the_demo_without_export_leaves_nothing(sandbox: Sandbox) -> None:
    result = relsec(sandbox, "demo", "--headless")
    assert result.returncode == 0, result.stderr[-2000:]
    sandbox.check_only()
    assert sandbox.writes() == []


# --- a meeting of real peers: exports and saves only on request ------------------------


def talk(peers: list[PeerProcess], step: int, texts: list[str]) -> None:
    peers[0].ok(cmd="open_step", step=step)
    for peer in peers:
        peer.wait_state(lambda s: s["current"] == step)
    for peer, text in zip(peers, texts, strict=False):
        peer.ok(cmd="contribute", step=step, text=text)
    wait_all_equal(peers)


def test_a_meeting_writes_only_the_export_and_saves_asked_for(
    sandbox: Sandbox, peers: list[PeerProcess]
) -> None:
    autosave = sandbox.work / "ana.save"
    peers.append(
        PeerProcess(
            "--log-level",
            "DEBUG",
            "--save",
            str(autosave),
            env={**sandbox.env, "RELSEC_PASSPHRASE": PASS},
        )
    )
    peers.append(PeerProcess("--log-level", "DEBUG", env=sandbox.env))
    peers.append(PeerProcess("--log-level", "DEBUG", env=sandbox.env))
    answer = peers[0].ok(cmd="start", template="healing", name=NAMES[0])
    for peer, name in zip(peers[1:], NAMES[1:], strict=True):
        peer.ok(cmd="join", code=answer["code"], name=name)
    texts = ["I need rest more than plans", "Time off the rota", "Someone to talk to"]
    talk(peers, 0, texts)
    manual = sandbox.work / "bo.save"
    assert peers[1].ok(cmd="save", path=str(manual), passphrase=PASS)["bytes"] > 0
    record = sandbox.work / "record.md"
    peers[2].ok(cmd="export", markdown=str(record))
    final = wait_all_equal(peers)[0]
    quit_all(peers)
    sandbox.check_only(autosave, manual, record)
    # The hook saw the three files being written (so it was really running).
    written = {pathlib.Path(path).name for _, path in sandbox.writes()}
    assert {"ana.save", "bo.save", "record.md"} <= written
    # The autosave holds the whole meeting as it was at quit.
    result = relsec(
        sandbox,
        "export",
        "--resume",
        str(autosave),
        "--json",
        str(sandbox.root / "check.json"),
        env={"RELSEC_PASSPHRASE": PASS},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((sandbox.root / "check.json").read_text())
    assert data["state_digest"] == final["digest"]
    # Logs (at DEBUG) never hold what was said, names, keys, the passphrase or paths.
    logs = "".join(line for peer in peers for line in peer.stderr_lines)
    assert "meeting saved" in logs  # the logs were really captured
    secrets = [*texts, *NAMES, PASS, final["code"], str(sandbox.work)]
    secrets += [m["key"] for m in final["members"]] + [final["mid"]]
    for secret in secrets:
        assert secret not in logs, secret


# --- save and resume across processes ----------------------------------------------------


def test_save_then_resume_carries_the_meeting_on(
    sandbox: Sandbox, peers: list[PeerProcess]
) -> None:
    ana_file, bo_file = sandbox.work / "ana.save", sandbox.work / "bo.save"
    peers.append(
        PeerProcess("--save", str(ana_file), env={**sandbox.env, "RELSEC_PASSPHRASE": PASS})
    )
    peers.extend(PeerProcess(env=sandbox.env) for _ in range(2))
    answer = peers[0].ok(cmd="start", template="healing", name=NAMES[0])
    for peer, name in zip(peers[1:], NAMES[1:], strict=True):
        peer.ok(cmd="join", code=answer["code"], name=name)
    talk(peers, 0, ["first evening, Ana", "first evening, Bo", "first evening, Cy"])
    peers[1].ok(cmd="save", path=str(bo_file), passphrase=PASS)
    before = wait_all_equal(peers)[0]
    quit_all(peers)
    peers.clear()
    # The next evening: Ana resumes from her --save file (passphrase from the
    # environment), Bo from his with the resume command; Cy stays home.
    ana = PeerProcess(
        "--resume", str(ana_file), "--save", str(ana_file),
        env={**sandbox.env, "RELSEC_PASSPHRASE": PASS},
    )  # fmt: skip
    bo = PeerProcess(env=sandbox.env)
    peers.extend([ana, bo])
    assert ana.wait_event(lambda e: e.get("event") == "ready")["needs_passphrase"] is False
    resumed = bo.ok(cmd="resume", path=str(bo_file), passphrase=PASS)
    assert resumed["mid"] == before["mid"]
    for peer in (ana, bo):
        state = peer.state()
        assert state["digest"] == before["digest"]
        assert state["mid"] == before["mid"]
    assert ana.state()["me"] == before["members"][0]["key"]
    # They find each other again and carry on.
    bo_key = before["members"][1]["key"]  # the resumed identity, not the one bo started with
    assert bo.state()["me"] == bo_key
    ana.wait_state(lambda s: bo_key in s["links"], 20)
    ana.ok(cmd="open_step", step=1)
    bo.wait_state(lambda s: s["current"] == 1)
    bo.ok(cmd="contribute", step=1, text="second evening, Bo")
    ana.wait_state(lambda s: any(c["text"] == "second evening, Bo" for c in s["contributions"]))
    quit_all(peers)
    out = sandbox.work / "after.md"
    result = relsec(
        sandbox,
        "export",
        "--resume",
        str(ana_file),
        "--markdown",
        str(out),
        env={"RELSEC_PASSPHRASE": PASS},
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "first evening, Cy" in text and "second evening, Bo" in text
    sandbox.check_only(ana_file, bo_file, out)


def test_bad_saves_are_refused_and_left_alone(sandbox: Sandbox, peers: list[PeerProcess]) -> None:
    good = sandbox.work / "meeting.save"
    peers.extend(PeerProcess(env=sandbox.env) for _ in range(2))
    answer = peers[0].ok(cmd="start", template="healing", name=NAMES[0])
    peers[1].ok(cmd="join", code=answer["code"], name=NAMES[1])
    talk(peers, 0, ["something to keep", "something else"])
    peers[0].ok(cmd="save", path=str(good), passphrase=PASS)
    kept = good.read_bytes()
    truncated = sandbox.work / "cut.save"
    truncated.write_bytes(kept[: len(kept) // 2])

    # A wrong passphrase at start (from the environment): the peer says so,
    # waits, and the right one given later works.
    late = PeerProcess(
        "--resume", str(good), env={**sandbox.env, "RELSEC_PASSPHRASE": "not the passphrase"}
    )
    peers.append(late)
    error = late.wait_event(lambda e: e.get("code") == "wrong_passphrase")
    assert error["message"] == "That passphrase does not open this save file."
    assert late.wait_event(lambda e: e.get("event") == "ready")["needs_passphrase"] is True
    assert late.state()["in_meeting"] is False
    assert late.ok(cmd="passphrase", passphrase=PASS)["resumed"] is True
    assert late.state()["mid"] == answer["mid"]

    # A truncated file: a plain error, from the peer and from `relsec export`.
    other = PeerProcess(env=sandbox.env)
    peers.append(other)
    refused = other.cmd(cmd="resume", path=str(truncated), passphrase=PASS)
    assert refused["code"] == "damaged_save" and "damaged" in refused["message"]
    result = relsec(
        sandbox, "export", "--resume", str(truncated), "--markdown", "x.md",
        env={"RELSEC_PASSPHRASE": PASS},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("relsec: ") and "Traceback" not in result.stderr
    assert "damaged" in result.stderr

    # A file from another meeting: resuming with the expected meeting refuses
    # it, and a laptop in another meeting may not save over it.
    mismatch = other.cmd(cmd="resume", path=str(good), passphrase=PASS, mid="00" * 16)
    assert mismatch["code"] == "other_meeting"
    assert other.state()["in_meeting"] is False
    other.ok(cmd="start", template="movement-values", name="Di")
    overwrite = other.cmd(cmd="save", path=str(good), passphrase=PASS)
    assert overwrite["event"] == "error" and "another meeting" in overwrite["message"]
    wrong = other.cmd(cmd="save", path=str(good), passphrase="some other passphrase")  # noqa: S106
    assert wrong["event"] == "error" and "does not open" in wrong["message"]
    busy = other.cmd(cmd="resume", path=str(good), passphrase=PASS)
    assert busy["event"] == "error" and "already in a meeting" in busy["message"]
    # --save pointed at another meeting's save: the automatic save says so
    # once, stops, and leaves the file alone.
    keeper = PeerProcess("--save", str(good), env={**sandbox.env, "RELSEC_PASSPHRASE": PASS})
    peers.append(keeper)
    keeper.ok(cmd="start", template="healing", name="Ed")
    failed = keeper.wait_event(lambda e: e.get("event") == "save_failed")
    assert "another meeting" in failed["message"]

    # Nothing was lost or overwritten (not even by a last save at quit), and
    # nothing else was written.
    quit_all(peers)
    assert good.read_bytes() == kept
    assert truncated.read_bytes() == kept[: len(kept) // 2]
    sandbox.check_only(good, truncated)
