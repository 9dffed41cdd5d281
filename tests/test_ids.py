"""uuid7 makes real version-7 UUIDs, ordered by the millisecond they were made in."""

import pickle
import time
import uuid

from pim.ids import uuid7


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
