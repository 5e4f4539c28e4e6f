"""Attacks on anonymity by modified members, in a room of seven (issue 12.1, 12.2).

Each test runs real Sessions on the fake network (tests/fakenet.py); the
modified members run a subclass of ``Round`` (their channel's
``round_class``) or a changed schedule, as a changed program would. Every
honest member sends one item; after the attack the test measures each
sender's **anonymity set** as the attackers know it: the intersection, over
every round in which the attackers could read the item (a round they
opened with every other key, or a release in the log), of that round's
participants who are not attackers. It must equal the honest participants
of the first round that could show the item (SPEC §13.5 "No narrowing"),
for every honest sender, and every honest laptop must hold the same meeting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fakenet import FakeNetwork
from test_anon_state import ANON_AGENDA, DECIDE, UNSAID

from relsec_p2p.core import anon, shuffle
from relsec_p2p.core.anon_rules import decode_item
from relsec_p2p.core.feed import Entry, encode_entry
from relsec_p2p.core.onion import onion_hash
from relsec_p2p.core.requests import AnonymousAnswer, AnonymousVote
from relsec_p2p.core.session import Session
from relsec_p2p.core.shuffle_round import Round

Sends = list[tuple[bytes, dict[str, Any]]]


def why_ignored_code(session: Session, entry: Entry) -> str | None:
    """Why the fold of ``session`` ignored ``entry`` (its refusal code)."""
    for ignored, refused in session.state.ignored:
        if ignored == entry.hash:
            return str(refused.code)
    return None


MEMBERS = 7


@dataclass
class Spy:
    """What the attackers read: (participants, item contents) per round."""

    read: list[tuple[frozenset[bytes], list[bytes]]] = field(default_factory=list)

    def note(self, round_: Round) -> None:
        if round_.opened is not None:
            self.read.append((frozenset(round_.parts), list(round_.opened)))


def withholder(spy: Spy, kinds: tuple[str, ...], *, not_with: bytes = b"") -> type[Round]:
    """Says GO, then keeps back its messages of ``kinds`` (its inner key,
    ``anon.reveal``, or its release signature, ``anon.ack``) after reading
    every item with the keys the others sent; plays fair in rounds that hold
    ``not_with`` (so that two attackers take turns)."""

    class Withholder(Round):
        def _keep(self, sends: Sends) -> Sends:
            if self.opened is not None and all(self.opened != r for _, r in spy.read):
                spy.note(self)
            if not_with in self.parts:
                return sends
            return [(p, m) for p, m in sends if m["t"] not in kinds]

        def begin(self) -> Sends:
            return self._keep(super().begin())

        def receive(self, sender: bytes, message: dict[str, Any], now_ms: int) -> Sends:
            return self._keep(super().receive(sender, message, now_ms))

        def tick(self, now_ms: int) -> Sends:
            return self._keep(super().tick(now_ms))

    return Withholder


def copier(victim: bytes) -> type[Round]:
    """Submits, as its own, a copy of ``victim``'s onion (signed by itself):
    the duplicate would mark the victim's item in the final batch."""

    class Copier(Round):
        copied = False

        def _step(self) -> Sends | None:
            if self.phase.value == "keys" and len(self.keys) == self.n:
                self._enter(shuffle.Phase.SUBMIT)  # no onion of its own
                return []
            return super()._step()

        def receive(self, sender: bytes, message: dict[str, Any], now_ms: int) -> Sends:
            sends = super().receive(sender, message, now_ms)
            if message["t"] == "anon.submit" and sender == victim and not self.copied:
                self.copied = True
                onion = message["o"]
                signature = self.sign("submit", onion_hash(onion))
                self.submissions[self.me] = (onion, signature)
                sends += self._to_others(self.message("anon.submit", o=onion, g=signature))
                sends += self._advance()
            return sends

    return Copier


# --- the room --------------------------------------------------------------------------


class Room:
    def __init__(self, attackers: int = 1, *, lowest: bool = True) -> None:
        self.net = FakeNetwork.meeting(MEMBERS, agenda=ANON_AGENDA)
        keys = sorted(self.net.sessions)
        # The attackers: the lowest keys (the natural leader and appender) or
        # keys in the middle of the cascade.
        chosen = keys[:attackers] if lowest else keys[2 : 2 + attackers]
        self.attackers = [self.net.sessions[k] for k in chosen]
        self.bad = {s.me for s in self.attackers}
        self.honest = [s for s in self.net if s.me not in self.bad]
        self.spy = Spy()
        self.texts: dict[str, bytes] = {}  # text -> its sender

    def open_step(self) -> None:
        self.net[0].open_step(UNSAID)
        self.net.settle()

    def everyone_speaks(self) -> None:
        for session in self.honest:
            text = f"hard to say, from member {sorted(self.net.sessions).index(session.me)}"
            session.submit_anonymous(AnonymousAnswer(UNSAID, text))
            self.texts[text] = session.me
        self.net.advance(anon.BEAT_MS)  # every item ready for the next round

    def read_ours(self) -> bool:
        """The attackers have read a round that carried honest items."""
        return any(
            (decode_item(raw) or {}).get("text") in self.texts
            for _, items in self.spy.read
            for raw in items
        )

    def shown(self, session: Session) -> set[str]:
        return {c.text for c in session.state.anonymous_contributions}

    def run_until_delivered(self, max_ms: int = 180_000) -> None:
        self.net.run_rounds(
            lambda: all(self.shown(s) >= set(self.texts) for s in self.honest), max_ms=max_ms
        )
        self.net.settle()

    def released(self) -> list[tuple[frozenset[bytes], list[bytes]]]:
        """Rounds in the log, as any member reads them."""
        return [
            (frozenset(e.data["members"]), list(e.data["items"]))
            for e in self.honest[0].log.entries()
            if e.type == "anon.round"
        ]

    def anonymity_sets(self) -> dict[bytes, frozenset[bytes]]:
        """Each honest sender's set: the honest participants of every round
        the attackers could read its item in, intersected; with the first
        such round's honest participants, to compare."""
        sets: dict[bytes, frozenset[bytes]] = {}
        firsts: dict[bytes, frozenset[bytes]] = {}
        for parts, items in [*self.spy.read, *self.released()]:
            for raw in items:
                item = decode_item(raw)
                if item is None or item.get("text") not in self.texts:
                    continue
                sender = self.texts[item["text"]]
                honest = parts - self.bad
                sets[sender] = sets.get(sender, honest) & honest
                firsts.setdefault(sender, honest)
        for sender, first in firsts.items():
            assert sets[sender] == first, "narrowed below the first round that showed it"
        return sets

    def check_outcome(self, expected_set: int) -> None:
        """Every honest item counted once on every honest laptop, nothing
        pending, one meeting, and every sender hidden among ``expected_set``
        honest members."""
        for session in self.honest:
            assert sorted(c.text for c in session.state.anonymous_contributions) == sorted(
                self.texts
            )
            assert session.anonymous.pending() == 0
        assert len({s.digest() for s in self.honest}) == 1
        sets = self.anonymity_sets()
        assert set(sets) == {s.me for s in self.honest}
        for sender, members in sets.items():
            assert sender in members
            assert len(members) == expected_set, (len(members), expected_set)

    def narrowed_rounds_led_by(self, leader: bytes, session: Session) -> list[shuffle.Outcome]:
        """Rounds ``session`` took part in that ``leader`` started without
        some members."""
        return [
            r
            for r in session.take_round_reports()
            if not isinstance(r, anon.RoundStarted)
            and r.start.leader == leader
            and len(r.start.parts) < MEMBERS
        ]


def leave_out(session: Session, others: list[bytes]) -> None:
    """The modified laptop leads rounds without ``others``."""

    def leading(state: Any, now: int) -> list[bytes]:
        return sorted(m.key for m in state.active_members() if m.key not in others)

    session.anonymous._participants = leading  # type: ignore[method-assign]


# --- the attacks -----------------------------------------------------------------------


def test_a_last_revealer_withholds_then_leads_rounds_leaving_members_out() -> None:
    """(a) The leader reads every item, keeps its inner key back (the round
    aborts on every honest laptop after theirs are out), then starts rounds
    without two honest members, which two thirds of the room would pass.
    Honest laptops name it in the log, refuse its starts, and send their
    items again only in rounds holding all six honest members."""
    room = Room(1, lowest=True)
    (attacker,) = room.attackers
    attacker.anonymous.round_class = withholder(room.spy, ("anon.reveal", "anon.ack"))
    room.open_step()
    room.everyone_speaks()
    room.net.run_rounds(room.read_ours, max_ms=30_000)
    assert {len(parts) for parts, _ in room.spy.read} == {MEMBERS}  # it read a full round
    leave_out(attacker, [s.me for s in room.honest[:2]])  # at once
    room.run_until_delivered()
    for session in room.honest:
        assert room.narrowed_rounds_led_by(attacker.me, session) == []  # its starts refused
        assert session.state.anon_barred() == {attacker.me}  # named, in every fold
        assert attacker.me in session.anonymous.withholders
    room.check_outcome(MEMBERS - 1)


def test_b_repeated_aborts_by_two_members_narrow_nothing() -> None:
    """(b) One member keeps its inner key back; another, honest in that
    round, keeps its key back in the next: two aborted rounds in which items
    could be read, with different participants. Each item goes out again
    only where the honest members of every such round are."""
    room = Room(2, lowest=False)
    first, second = room.attackers
    first.anonymous.round_class = withholder(room.spy, ("anon.reveal", "anon.ack"))
    second.anonymous.round_class = withholder(
        room.spy, ("anon.reveal", "anon.ack"), not_with=first.me
    )
    room.open_step()
    room.everyone_speaks()
    room.run_until_delivered()
    read = {parts for parts, items in room.spy.read if items}
    assert len(read) >= 2  # two rounds with items read, with different participants
    for session in room.honest:
        assert session.state.anon_barred() == room.bad
    room.check_outcome(MEMBERS - 2)


def test_c_excluded_member_reconnects_and_is_still_refused() -> None:
    """(c) After withholding, the member drops its links and comes back (a
    reconnect used to clear its exclusion) and leads rounds leaving two
    honest members out: still refused, and no item goes into them."""
    room = Room(1, lowest=True)
    (attacker,) = room.attackers
    attacker.anonymous.round_class = withholder(room.spy, ("anon.reveal", "anon.ack"))
    room.open_step()
    room.everyone_speaks()
    room.net.run_rounds(room.read_ours, max_ms=30_000)
    leave_out(attacker, [s.me for s in room.honest[-2:]])  # at once
    room.net.run_rounds(lambda: all(attacker.me in s.anonymous.withholders for s in room.honest))
    others = [s.me for s in room.net if s is not attacker]
    room.net.partition(others, [attacker.me])
    room.net.heal()  # every honest laptop sees it connect again
    for session in room.honest:
        assert attacker.me in session.anonymous.excluded
    room.run_until_delivered()
    for session in room.honest:
        assert room.narrowed_rounds_led_by(attacker.me, session) == []
    room.check_outcome(MEMBERS - 1)


def test_d_copied_onion_convicts_the_copier_never_the_honest_hop() -> None:
    """(d) A member submits a copy of another member's onion (a duplicate
    would mark that member's item). The first hop refuses the batch; the
    blame replay names the copier on every honest laptop, never the hop
    that refused nor the member copied."""
    room = Room(1, lowest=False)
    (attacker,) = room.attackers
    victim = room.honest[-1].me
    attacker.anonymous.round_class = copier(victim)
    room.open_step()
    room.everyone_speaks()
    room.run_until_delivered()
    for session in room.honest:
        blamed = [r for r in session.take_round_reports() if isinstance(r, shuffle.Blamed)]
        assert blamed, "the copy made a round fail"
        for outcome in blamed:
            assert outcome.culprits == {attacker.me: "submitted a copy of another member's slot"}
        assert session.anonymous.excluded.get(attacker.me, 0) is None  # out for good
    room.check_outcome(MEMBERS - 1)


def test_e_a_release_given_a_clock_before_the_poll_does_not_swallow_votes() -> None:
    """(e) The appender (first in key order) writes the released round with a
    clock from before the poll opened. The fold refuses that entry (it sorts
    before the round began); the next participant appends it, and every vote
    counts on every laptop. A leader that instead starts its round with an
    old clock gets no vote in it: the votes stay pending on their laptops."""
    room = Room(1, lowest=True)
    (attacker,) = room.attackers
    net = room.net
    net[0].open_step(DECIDE)
    net.settle()
    proposal = net[1].propose(DECIDE, "We do X")
    net.settle()
    poll = net[0].open_poll(proposal.hash).hash
    net.settle()
    opened = next(e for e in attacker.log.entries() if e.hash == poll)
    backdated: list[Entry] = []

    def back_date(kind: str, data: dict[str, Any]) -> Entry:
        """The modified appender: its entry claims to have seen the
        facilitator's feed only up to just before the poll opened (``deps``),
        so its computed clock comes from before the poll (its own feed is
        empty, so nothing else stops it)."""
        head = attacker.log.head(attacker.me)
        assert head is None
        before = attacker.log.feed(opened.author)[opened.seq - 2]
        lam = before.lam + 1
        assert lam < opened.lam
        entry = encode_entry(
            attacker.identity,
            mid=attacker.mid,
            seq=1,
            prev=None,
            deps=[(opened.author, opened.seq - 1)],
            lam=lam,
            ts=net.now_ms,
            kind=kind,
            data=data,
        )
        backdated.append(entry)
        attacker._take(attacker.log.add(entry), [])
        attacker._new_entries.append(entry)  # gossiped like any of its entries
        return entry

    attacker.anonymous._append = back_date  # type: ignore[method-assign]
    choices = ["block", "agree", "agree", "stand_aside", "agree", "agree"]
    for session, choice in zip(room.honest, choices, strict=True):
        session.submit_anonymous(AnonymousVote(poll, choice))
    net.run_rounds(
        lambda: all(len(s.state.polls[poll].latest_anonymous()) == 6 for s in room.honest),
        max_ms=60_000,
    )
    net.settle()
    assert backdated, "the attacker appended first"
    for session in room.honest:
        for entry in backdated:  # in every log, refused by every fold
            assert session.log.feed(attacker.me)[entry.seq - 1] == entry
            assert why_ignored_code(session, entry) == "release_before_start"
        counted = sorted(session.state.polls[poll].latest_anonymous().values())
        assert counted == sorted(choices)  # the block is there
        assert session.anonymous.pending() == 0
    assert len({s.digest() for s in room.honest}) == 1


def test_e_a_round_started_with_an_old_clock_gets_no_vote_and_none_vanishes() -> None:
    """(e, the leader's variant) The leader starts its rounds with ``after``
    0, so that its release could sort before the poll. No honest laptop puts
    its vote in such a round: each keeps it, shown as waiting, and sends it
    once a round fits; every vote then counts on every laptop."""
    room = Room(1, lowest=True)
    (attacker,) = room.attackers
    net = room.net
    net[0].open_step(DECIDE)
    net.settle()
    proposal = net[1].propose(DECIDE, "We do X")
    net.settle()
    poll = net[0].open_poll(proposal.hash).hash
    net.settle()
    attacker.anonymous._log_clock = lambda: 0  # type: ignore[method-assign]
    choices = ["block", "agree", "agree", "stand_aside", "agree", "agree"]
    for session, choice in zip(room.honest, choices, strict=True):
        session.submit_anonymous(AnonymousVote(poll, choice))
    for _ in range(3):  # three beats of rounds led by the attacker
        for _ in range(anon.BEAT_MS // 100):
            net.advance(100)
            net.tick_rounds()
            net.deliver_all()
    net.settle()
    released = [r for r in attacker.take_round_reports() if isinstance(r, shuffle.Released)]
    assert released and all(r.start.after == 0 for r in released)  # its rounds ran
    for session in room.honest:
        assert session.state.polls[poll].anon_votes == []  # nothing counted ...
        assert session.anonymous.pending() == 1  # ... and nothing lost: still waiting
    attacker.anonymous._log_clock = lambda: attacker.log.max_lamport  # type: ignore[method-assign]
    net.run_rounds(
        lambda: all(len(s.state.polls[poll].latest_anonymous()) == 6 for s in room.honest)
    )
    for session in room.honest:
        assert sorted(session.state.polls[poll].latest_anonymous().values()) == sorted(choices)
        assert session.anonymous.pending() == 0
