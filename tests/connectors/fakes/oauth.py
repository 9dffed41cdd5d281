"""The OAuth2 refresh-token grant as Login with Amazon and Google's token endpoint
read it (RFC 6749 §6): a form with the grant, the refresh token and the client's
id and secret, nothing else."""

import urllib.parse

from starlette.requests import Request


async def is_refresh_grant(request: Request, credentials: dict[str, str]) -> bool:
    form = urllib.parse.parse_qs((await request.body()).decode())
    expected = {"grant_type": "refresh_token", **credentials}
    return form == {name: [value] for name, value in expected.items()}
