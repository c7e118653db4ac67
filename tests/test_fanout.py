"""The fan-out's direct path as a unit: one encoding per batch, the hand-off from the
socket's own task, and the frames-behind bound, against a transport that buffers like
asyncio's (what the kernel refuses waits in the transport)."""

from __future__ import annotations

from typing import Any

from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

from livectl.console.hub import Frame, Subscriber, _Batch, encode


class BufferingTransport:
    """Accepts up to ``room`` bytes into "the kernel" while the peer is not reading; the
    rest waits in the transport, as asyncio's does."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.kernel = bytearray()
        self.buffered = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.buffered += data
        self._flush()

    def read_all(self) -> bytes:
        """The peer reads everything there is."""
        self._flush()
        taken, self.kernel = bytes(self.kernel), bytearray()
        self._flush()
        taken += bytes(self.kernel)
        self.kernel = bytearray()
        return taken

    def _flush(self) -> None:
        accepted = max(0, self.room - len(self.kernel))
        self.kernel += self.buffered[:accepted]
        del self.buffered[:accepted]

    def get_write_buffer_size(self) -> int:
        return len(self.buffered)

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> Any:
        return None


def frames(first: int, count: int, *, staff_every: int = 0) -> list[Frame]:
    return [
        Frame(seq, f'{{"seq":{seq}}}', bool(staff_every) and seq % staff_every == 0)
        for seq in range(first, first + count)
    ]


def texts_in(data: bytes) -> list[str]:
    """Decode unmasked server text frames (short and 16-bit lengths)."""
    texts = []
    while data:
        assert data[0] == 0x81
        size, start = data[1], 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        texts.append(data[start : start + size].decode())
        data = data[start + size :]
    return texts


def test_encode_is_one_frame_per_batch_or_one_per_message() -> None:
    batch = frames(1, 3)
    assert texts_in(encode(batch, batch=True)) == ['{"seq":1}\n{"seq":2}\n{"seq":3}']
    assert texts_in(encode(batch, batch=False)) == ['{"seq":1}', '{"seq":2}', '{"seq":3}']
    assert encode(batch[:1], batch=True) == WireFrame(Opcode.TEXT, b'{"seq":1}').serialize(
        mask=False
    )


def test_a_batch_is_encoded_once_per_view_and_host_views_skip_staff_frames() -> None:
    batch = _Batch(frames(1, 4, staff_every=2))
    host = batch.encoded(staff=False, batch=True)
    assert batch.encoded(staff=False, batch=True) is host
    assert texts_in(host) == ['{"seq":1}\n{"seq":3}']
    assert texts_in(batch.encoded(staff=True, batch=True)) == [
        '{"seq":1}\n{"seq":2}\n{"seq":3}\n{"seq":4}'
    ]


def test_a_socket_written_directly_skips_what_it_was_sent_already() -> None:
    transport = BufferingTransport(room=1 << 20)
    subscriber = Subscriber(10, staff=False, batch=False)
    subscriber.write_directly(transport, last_sent=5)
    assert subscriber.offer(_Batch(frames(3, 5)))  # 3..7: 3, 4 and 5 went with the history
    assert subscriber.offer(_Batch(frames(8, 2)))
    assert texts_in(transport.read_all()) == [f'{{"seq":{s}}}' for s in (6, 7, 8, 9)]
    assert subscriber.frames == []  # nothing for the socket's own task to send


def test_a_reader_behind_in_a_burst_is_kept_and_a_stalled_one_is_dropped_at_the_bound() -> None:
    reading, stalled = BufferingTransport(room=100), BufferingTransport(room=100)
    keeps_up = Subscriber(10, staff=True)
    stops = Subscriber(10, staff=True)
    keeps_up.write_directly(reading, 0)
    stops.write_directly(stalled, 0)
    seq = 1
    for _ in range(20):  # batches of 3 frames, each ~40 bytes on the wire
        batch = _Batch(frames(seq, 3))
        seq += 3
        assert keeps_up.offer(batch)
        reading.read_all()
        if not stops.offer(batch):
            break
    assert stops.overflowed
    assert not keeps_up.overflowed
    assert len(stalled.kernel) == 100  # the kernel's share filled first
    # Three batches (~31 bytes each) fit the kernel; the fourth spills, and the seventh makes
    # 12 frames waiting in the transport, past the bound of 10.
    assert (seq - 1) // 3 == 7
