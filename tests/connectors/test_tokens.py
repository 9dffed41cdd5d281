"""Access tokens are fetched once for the requests that need one at the same time,
and renewed once when they are refused, however many requests were refused together."""

import asyncio

from connectors.tokens import CachedToken, bearer


def counted() -> tuple[list[str], CachedToken]:
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        await asyncio.sleep(0)  # a token endpoint answers later
        issued.append(f"t{len(issued) + 1}")
        return issued[-1], 3600.0

    return issued, CachedToken(fetch)


async def test_requests_sent_at_once_share_one_token() -> None:
    issued, token = counted()
    sent = await asyncio.gather(*(bearer(token)(False) for _ in range(5)))
    assert sent == [{"Authorization": "Bearer t1"}] * 5 and issued == ["t1"]


async def test_a_token_refused_to_several_requests_is_renewed_once() -> None:
    issued, token = counted()
    requests = [bearer(token) for _ in range(3)]
    for auth in requests:
        await auth(False)
    renewed = await asyncio.gather(*(auth(True) for auth in requests))
    assert renewed == [{"Authorization": "Bearer t2"}] * 3 and issued == ["t1", "t2"]
