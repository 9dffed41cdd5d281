"""What GraphQL errors may say: ours and the request's, never an internal exception's.

Every error of a request goes through `Schema.process_errors` before the response is
built, whatever the step that raised it (parse, validation, execution, an extension),
so the one place to mask is there. Kept as they are: errors about the request
(syntax, validation, variables: no field path, a place in the document), errors we
raise ourselves (GraphQLError, domain errors). Anything else becomes a generic message
with a reference, logged with its traceback under that reference.
"""

import re
from typing import Any

import strawberry
from graphql import GraphQLError

from pim import incidents
from resolvers.errors import DomainError

# graphql-core appends its suggestions at the end of a message, in every form
# ("Did you mean 'first'?", "Did you mean the enum value 'ASC'?").
_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


def _cause(error: GraphQLError) -> BaseException | None:
    cause: BaseException | None = error.original_error
    while isinstance(cause, GraphQLError) and cause.original_error is not None:
        cause = cause.original_error
    return cause


def is_unexpected(error: GraphQLError) -> bool:
    cause = _cause(error)
    if cause is None or isinstance(cause, GraphQLError | DomainError):
        return False
    # A variable's value refused by its type: about the request, located in the document.
    return error.path is not None or not error.nodes


def masked(error: GraphQLError, reference: str) -> GraphQLError:
    return GraphQLError(
        incidents.public_message(reference),
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "errorId": reference},
    )


class MaskingSchema(strawberry.Schema):
    @staticmethod
    def remove_field_suggestion(error: GraphQLError) -> None:
        # Strawberry strips only "Cannot query field" suggestions; arguments, enum
        # values and input fields name the schema as much.
        error.message = _SUGGESTION.sub("", error.message)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        expected = []
        for index, error in enumerate(errors):
            if is_unexpected(error):
                where = f"GraphQL {'.'.join(map(str, error.path or ())) or 'request'}"
                errors[index] = masked(error, incidents.record(_cause(error), where))  # type: ignore[arg-type]
            else:
                expected.append(error)
        super().process_errors(expected, execution_context)
