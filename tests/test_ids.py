"""uuid7 and uuid7s make real version-7 UUIDs, ordered by the millisecond they were made
in."""

import pickle
import time
import uuid

from pim.ids import uuid7, uuid7s


def test_uuid7_is_a_version_7_uuid_like_any_other() -> None:
    made = uuid7()
    assert (made.version, made.variant) == (7, uuid.RFC_4122)
    parsed = uuid.UUID(str(made))
    assert parsed == made and hash(parsed) == hash(made) and parsed.bytes == made.bytes
    assert pickle.loads(pickle.dumps(made)) == made
    assert abs((made.int >> 80) - time.time_ns() // 1_000_000) < 1000


def test_uuid7_sorts_by_time_and_never_repeats() -> None:
    first = uuid7()
    time.sleep(0.002)
    later = [uuid7() for _ in range(10_000)]
    assert all(first < made for made in later)
    assert len(set(later)) == len(later)


def test_uuid7s_are_version_7_uuids_in_the_order_given_and_after_earlier_ones() -> None:
    first = uuid7()
    time.sleep(0.002)
    made = uuid7s(10_000)
    assert {(m.version, m.variant) for m in made} == {(7, uuid.RFC_4122)}
    assert all(uuid.UUID(str(m)) == m and m.bytes == uuid.UUID(str(m)).bytes for m in made)
    assert made == sorted(made) and len(set(made)) == len(made)
    assert first < made[0]
    time.sleep(0.002)
    assert made[-1] < uuid7s(1)[0]
    assert uuid7s(0) == []
