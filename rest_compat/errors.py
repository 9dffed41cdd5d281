"""Domain errors, request-validation errors, unknown routes and unexpected exceptions,
each mapped once to the envelope of the surface the request addressed."""

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from pim import incidents
from pim.request_body import BodyRefused, BodyTooLarge
from pim.responses import OrjsonResponse
from resolvers.errors import (
    DomainError,
    FieldError,
    InternalError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ValidationFailed,
)
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


def graphql_error(exc: DomainError) -> Response:
    """/graphql's shape for a request refused before it is executed (GraphQL over HTTP:
    `errors` and no `data`); a malformed request is a 400 there, not a 422."""
    extensions = {"code": exc.code.upper(), "field": exc.field}
    status = status_of(exc)
    return OrjsonResponse(
        {"errors": [{"message": exc.message, "extensions": extensions}]},
        status_code=400 if status == 422 else status,
    )


SURFACES: list[tuple[str, ErrorMapper]] = [
    (ext.PREFIX, ext.error_response),
    (windev.PREFIX, windev.error_response),
    ("/graphql", graphql_error),
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


GRAPHQL_PATH = "/graphql"


def internal_error(path: str, reference: str) -> Response:
    """A 500 in the addressed surface's own shape, naming only the incident's reference."""
    message = incidents.public_message(reference)
    if path == GRAPHQL_PATH or path.startswith(GRAPHQL_PATH + "/"):
        extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": reference}
        error = {"message": message, "extensions": extensions}
        return OrjsonResponse({"data": None, "errors": [error]}, status_code=500)
    return mapper_for(path)(InternalError(message=message))


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

    @app.exception_handler(BodyRefused)
    async def on_body_refused(request: Request, exc: BodyRefused) -> Response:
        kind = PayloadTooLarge if isinstance(exc, BodyTooLarge) else RequestTimeout
        return mapper_for(request.url.path)(kind(message=str(exc)))

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
