"""Unexpected errors: the client sees a reference, the log holds the traceback under it.

An exception nobody planned for can carry SQL, bound parameters (an account id, a
credential's ciphertext), driver names or Python internals in its text. None of it
may reach a client; the reference lets support find the full story in the log.
"""

import logging
import secrets

from pim import logs

log = logging.getLogger("pim.incidents")


def record(exc: BaseException, where: str) -> str:
    """Log `exc` with its traceback and return the reference to show the client: the
    request's id when there is one, so the request's own log line is found by it too."""
    reference = logs.current_request_id() or secrets.token_hex(8)
    log.error(
        "unexpected error %s in %s", reference, where, exc_info=exc, extra={"error_id": reference}
    )
    return reference


def public_message(reference: str) -> str:
    return f"Erreur interne du serveur (référence {reference})."
