"""What the strict fakes of SFCC, SAP Commerce, Sylius and WiziShop share: the key of
every create they processed (a create sent twice shows twice), the logins they
answered, a bearer token checked on every call, and JWTs carrying an expiry."""

import base64
import json
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse


def jwt(subject: str, lifetime: float = 3600.0) -> str:
    """An unsigned JWT whose `exp` is `lifetime` seconds away (the adapters read it)."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"sub": subject, "exp": int(time.time() + lifetime)}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


@dataclass
class Sessions:
    """Creates processed (in order, by the key the test expects once each), logins
    answered, and the bearer token the platform hands out."""

    token: str
    creates: list[str] = field(default_factory=list)
    logins: int = 0

    def login(self) -> str:
        self.logins += 1
        return self.token

    def refused(self, request: Request) -> JSONResponse | None:
        """A 401 unless the request carries the token handed out."""
        if request.headers.get("authorization") == f"Bearer {self.token}":
            return None
        return JSONResponse({"message": "Unauthorized"}, status_code=401)
