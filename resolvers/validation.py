"""Turning Pydantic validation errors into domain field errors, in French."""

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from resolvers.bounds import nul_errors
from resolvers.errors import FieldError

M = TypeVar("M", bound=BaseModel)

_MESSAGES: dict[str, str] = {
    "missing": "champ obligatoire",
    "float_parsing": "nombre attendu",
    "float_type": "nombre attendu",
    "int_parsing": "entier attendu",
    "int_type": "entier attendu",
    "int_from_float": "entier attendu",
    "bool_parsing": "booléen attendu (true ou false)",
    "bool_type": "booléen attendu (true ou false)",
    "string_type": "texte attendu",
    "string_too_short": "ne peut pas être vide",
    "string_too_long": "trop long (au plus {max_length} caractères)",
    "greater_than_equal": "doit être supérieur ou égal à {ge}",
    "greater_than": "doit être supérieur à {gt}",
    "less_than_equal": "doit être inférieur ou égal à {le}",
    "uuid_parsing": "UUID invalide",
    "uuid_type": "UUID invalide",
    "date_from_datetime_parsing": "date invalide (AAAA-MM-JJ attendu)",
    "date_parsing": "date invalide (AAAA-MM-JJ attendu)",
    "date_type": "date invalide (AAAA-MM-JJ attendu)",
    "literal_error": "valeur non autorisée (attendu : {expected})",
    "dict_type": "objet JSON attendu",
    "model_type": "objet JSON attendu",
    "list_type": "tableau JSON attendu",
    "finite_number": "nombre fini attendu",
    "json_too_large": "JSON trop volumineux (au plus {max_bytes} octets)",
    "json_too_deep": "JSON trop imbriqué",
    "json_number_out_of_range": "nombre hors limites (entre {min} et {max})",
}


def field_errors(exc: ValidationError) -> list[FieldError]:
    return field_errors_from_list(list(exc.errors(include_url=False)))


def field_errors_from_list(details: list[Any]) -> list[FieldError]:
    """Pydantic's error dicts (also what FastAPI reports for query parameters)."""
    errors: list[FieldError] = []
    for error in details:
        # FastAPI prefixes the location with where the value came from.
        parts = [p for p in error["loc"] if p not in ("query", "path", "body", "header")]
        location = ".".join(str(part) for part in parts)
        template = _MESSAGES.get(error["type"])
        context = {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
        message = template.format(**context) if template else str(error["msg"])
        errors.append(FieldError(field=location, message=message, code=error["type"]))
    return errors


def _number(value: Any) -> Any:
    """Bounds of float fields read as 0.0 or 100.0; French messages want 0 and 100."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse(model: type[M], data: Any) -> tuple[M | None, list[FieldError]]:
    """The model, or the errors; a NUL anywhere in `data` is refused before the model
    sees it (one walk for every input the resolvers parse)."""
    if errors := nul_errors(data):
        return None, errors
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, field_errors(exc)
