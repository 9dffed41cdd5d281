"""Domain errors, request-validation errors and unknown routes, each mapped once to the
envelope of the surface the request addressed."""

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from pim.responses import OrjsonResponse
from resolvers.errors import DomainError, FieldError, NotFound, ValidationFailed
from resolvers.validation import field_errors_from_list
from rest_compat import ext, windev
from rest_compat.common import status_of

ErrorMapper = Callable[[DomainError], Response]


def field_error_out(error: FieldError) -> dict[str, str]:
    return {"field": error.field, "message": error.message, "code": error.code}


def plain_error(exc: DomainError) -> Response:
    """Plain JSON for the Products, Imports and Connectors APIs: names the field and the reason."""
    errors = exc.errors if isinstance(exc, ValidationFailed) else []
    body = {
        "detail": exc.message,
        "code": exc.code,
        "field": exc.field,
        "errors": [field_error_out(e) for e in errors],
    }
    return OrjsonResponse(body, status_code=status_of(exc))


SURFACES: list[tuple[str, ErrorMapper]] = [
    (ext.PREFIX, ext.error_response),
    (windev.PREFIX, windev.error_response),
]


def mapper_for(path: str) -> ErrorMapper:
    for prefix, mapper in SURFACES:
        if path == prefix or path.startswith(prefix + "/"):
            return mapper
    return plain_error


def _with_retry_after(exc: DomainError, response: Response) -> Response:
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def on_domain_error(request: Request, exc: DomainError) -> Response:
        return _with_retry_after(exc, mapper_for(request.url.path)(exc))

    @app.exception_handler(RequestValidationError)
    async def on_request_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors_from_list(list(exc.errors())) or [FieldError("", "requête invalide")]
        return mapper_for(request.url.path)(ValidationFailed.of(errors))

    @app.exception_handler(ClientDisconnect)
    async def on_client_gone(_request: Request, _exc: ClientDisconnect) -> Response:
        # The client left while its body was being read: nobody to answer, nothing to
        # report (else a traceback in the log for every load test that stops mid-flight).
        return Response(status_code=499)  # "client closed request", as proxies log it

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            error: DomainError = NotFound(message="Route introuvable.")
        elif exc.status_code == 405:
            error = DomainError(
                message="Méthode non autorisée pour cette route.", code="method_not_allowed"
            )
        else:
            error = DomainError(message=str(exc.detail), code="http_error")
        response = mapper_for(request.url.path)(error)
        response.status_code = exc.status_code
        return response


def internal_error(path: str, error_id: str) -> Response:
    """An error nothing else handled, in the surface's envelope and without internals:
    the id, which is also the request's id, finds the full log line."""
    error = DomainError(message=f"Erreur interne (référence : {error_id}).", code="internal_error")
    response = mapper_for(path)(error)
    response.status_code = 500
    return response
