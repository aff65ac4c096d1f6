"""The FIX 4.4 session layer, sans I/O: one end's sequence numbers, gap recovery and resends.

A `FixEnd` numbers what its side sends (MsgSeqNum 34) and keeps its application messages for resends; it
checks every message it receives against the next number it expects:

- in sequence: delivered (application) or acted on (administrative);
- higher: a gap. It asks for everything from the expected number on (ResendRequest 35=2, EndSeqNo 0) and
  drops what comes past the gap (the resend brings it again, in order). A peer that has not filled the gap
  within `resend_timeout_s` is logged out, with a text that says so;
- lower: a PossDupFlag(43)=Y resend already seen is ignored; anything else is a protocol error: Logout with
  "MsgSeqNum too low, expecting X but received Y", and the session ends.

A ResendRequest is answered with the stored application messages again, marked PossDupFlag=Y with their
OrigSendingTime(122), and the administrative ones in the range (Logon, Heartbeat, ResendRequest, …) replaced by
one SequenceReset-GapFill (35=4, 123=Y) per run. A SequenceReset-GapFill in sequence moves the expected number
to its NewSeqNo(36); a SequenceReset-Reset moves it whatever its own number.

The numbers outlive a connection: the venue keeps one FixEnd per user, a client keeps its own, so a reconnect
picks up where the last connection stopped (unless the Logon asks for ResetSeqNumFlag 141=Y).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from latlab.wire import fix44

RESEND_REQUEST, SEQUENCE_RESET, TEST_REQUEST = "2", "4", "1"
ADMIN = frozenset({fix44.HEARTBEAT, TEST_REQUEST, RESEND_REQUEST, fix44.REJECT, SEQUENCE_RESET, fix44.LOGOUT,
                   fix44.LOGON})
MAX_SEQ = 2**31 - 1


@dataclass
class Sent:
    """An application message as first sent: what a resend repeats."""

    msg_type: str
    fields: list[tuple[int, str | int]]
    sending_time: str


@dataclass
class FixEnd:
    """One end of a FIX 4.4 session (see the module's text). `out` collects the bytes to send."""

    sender: str
    target: str
    resend_timeout_s: float = 5.0
    next_out: int = 1
    next_in: int = 1
    sent: dict[int, Sent] = field(default_factory=dict)
    out: list[bytes] = field(default_factory=list)
    closed: str | None = None
    gap_since: float | None = None  # when the outstanding ResendRequest was sent
    gap_until: int = 0              # the highest number seen past the gap
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("gaps", "resend_requests_sent", "resend_requests_answered", "resent", "gap_fills_sent", "gap_fills_received",
         "duplicates_ignored", "dropped_past_gap"), 0))

    # ---- sending

    def send(self, msg_type: str, fields: list[tuple[int, str | int]], sending_time: str | None = None) -> int:
        """Number and encode a message into `out`; application messages are kept for resends. Its MsgSeqNum."""
        seq = self.next_out
        self.next_out += 1
        stamp = sending_time or fix44.utc_timestamp()
        if msg_type not in ADMIN:
            self.sent[seq] = Sent(msg_type, list(fields), stamp)
        self.out.append(fix44.encode(msg_type, self.sender, self.target, seq, fields, sending_time=stamp))
        return seq

    def logout(self, text: str) -> None:
        """Say why and end the session (the owner closes the connection once `out` is sent)."""
        if self.closed is None:
            self.send(fix44.LOGOUT, [(58, text)])
            self.closed = text

    def take(self) -> bytes:
        """What is to be sent, once."""
        data = b"".join(self.out)
        self.out.clear()
        return data

    def resend(self, begin: int, end: int) -> None:
        """Answer a ResendRequest for begin..end (0: up to the last sent)."""
        last = self.next_out - 1 if end == 0 else min(end, self.next_out - 1)
        seq = begin
        while seq <= last:
            kept = self.sent.get(seq)
            if kept is not None:
                self.out.append(fix44.encode(kept.msg_type, self.sender, self.target, seq, kept.fields,
                                             poss_dup_of=kept.sending_time))
                self.counts["resent"] += 1
                seq += 1
                continue
            upto = seq
            while upto <= last and upto not in self.sent:
                upto += 1
            # the run seq..upto-1 held administrative messages: one GapFill in their place, to the next kept one
            self.out.append(fix44.encode(SEQUENCE_RESET, self.sender, self.target, seq, [(123, "Y"), (36, upto)],
                                         poss_dup_of=fix44.utc_timestamp()))
            self.counts["gap_fills_sent"] += 1
            seq = upto

    # ---- receiving

    def receive(self, msg: fix44.FixMessage, now: float) -> fix44.FixMessage | None:
        """Check one received message; the message when it is the owner's to handle in sequence (an application
        message, or a Logon, Logout or Reject), None when the session layer took it (or dropped it)."""
        if self.closed is not None:
            return None
        try:
            seq = fix44.int_field(msg, 34, 1, MAX_SEQ)
        except fix44.FieldError as exc:
            self.logout(f"MsgSeqNum: {exc}")
            return None
        if msg.type == SEQUENCE_RESET and msg.get(123) != "Y":
            return self._reset(msg)  # SequenceReset-Reset: its own number does not count
        if seq < self.next_in:
            if msg.get(43) == "Y":
                self.counts["duplicates_ignored"] += 1
                return None
            self.logout(f"MsgSeqNum too low, expecting {self.next_in} but received {seq}")
            return None
        if seq > self.next_in:
            return self._past_gap(msg, seq, now)
        self.next_in = seq + 1
        if self.gap_since is not None and self.next_in > self.gap_until:
            self.gap_since = None  # the gap is filled
        return self._in_sequence(msg)

    def _in_sequence(self, msg: fix44.FixMessage) -> fix44.FixMessage | None:
        if msg.type == SEQUENCE_RESET:  # GapFill, in sequence
            self.counts["gap_fills_received"] += 1
            return self._gap_fill(msg)
        if msg.type == RESEND_REQUEST:
            self._answer_resend(msg)
            return None
        if msg.type == TEST_REQUEST:
            self.send(fix44.HEARTBEAT, [(112, msg.get(112))])
            return None
        if msg.type == fix44.HEARTBEAT:
            return None
        return msg

    def request_resend(self, now: float) -> None:
        """Ask for everything from the next expected number on (once per gap)."""
        if self.gap_since is None:
            self.gap_since = now
            self.counts["gaps"] += 1
            self.counts["resend_requests_sent"] += 1
            self.send(RESEND_REQUEST, [(7, self.next_in), (16, 0)])

    def after_logon(self, now: float) -> None:
        """The owner has answered (or sent) the Logon: if it revealed a gap, ask for the rest now."""
        if self.gap_since is None and self.gap_until >= self.next_in:
            self.request_resend(now)

    def _past_gap(self, msg: fix44.FixMessage, seq: int, now: float) -> fix44.FixMessage | None:
        self.gap_until = max(self.gap_until, seq)
        if msg.type == fix44.LOGON:
            return msg  # answered first by the owner, which then calls after_logon
        self.request_resend(now)
        if msg.type == RESEND_REQUEST:
            self._answer_resend(msg)  # the peer's own request is answered at once, gap or not
        elif msg.type == fix44.LOGOUT:
            return msg
        else:
            self.counts["dropped_past_gap"] += 1
        return None

    def _answer_resend(self, msg: fix44.FixMessage) -> None:
        try:
            begin = fix44.int_field(msg, 7, 1, MAX_SEQ)
            end = fix44.int_field(msg, 16, 0, MAX_SEQ)
        except fix44.FieldError as exc:
            self.send(fix44.REJECT, [(45, msg.get(34)), (371, exc.tag), (58, str(exc))])
            return
        self.counts["resend_requests_answered"] += 1
        self.resend(begin, end)

    def _gap_fill(self, msg: fix44.FixMessage) -> None:
        try:
            new = fix44.int_field(msg, 36, 1, MAX_SEQ)
        except fix44.FieldError as exc:
            self.send(fix44.REJECT, [(45, msg.get(34)), (371, exc.tag), (58, str(exc))])
            return
        if new < self.next_in:
            self.send(fix44.REJECT, [(45, msg.get(34)), (371, 36),
                                     (58, f"GapFill NewSeqNo {new} is below the next expected {self.next_in}")])
            return
        self.next_in = new
        if self.gap_since is not None and self.next_in > self.gap_until:
            self.gap_since = None

    def _reset(self, msg: fix44.FixMessage) -> None:
        try:
            self.next_in = fix44.int_field(msg, 36, 1, MAX_SEQ)
        except fix44.FieldError as exc:
            self.send(fix44.REJECT, [(45, msg.get(34)), (371, exc.tag), (58, str(exc))])
        return None

    def tick(self, now: float) -> None:
        """A peer that has not filled a gap within resend_timeout_s is logged out."""
        if self.gap_since is not None and self.closed is None and now - self.gap_since > self.resend_timeout_s:
            self.logout(f"no answer to ResendRequest within {self.resend_timeout_s:g} s "
                        f"(expecting MsgSeqNum {self.next_in})")

    def reset(self) -> None:
        """ResetSeqNumFlag(141)=Y: both directions start again at 1, nothing kept."""
        self.next_out = self.next_in = 1
        self.sent.clear()
        self.gap_since, self.gap_until = None, 0
