"""The one hierarchy of domain errors; each surface maps it once to its own wire shape."""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.field} : {self.message}" if self.field else self.message


@dataclass
class DomainError(Exception):
    message: str
    code: str = "error"
    field: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class Unauthenticated(DomainError):
    message: str = "Clé API manquante ou invalide."
    code: str = "unauthenticated"


@dataclass
class Forbidden(DomainError):
    code: str = "forbidden"


@dataclass
class NotFound(DomainError):
    code: str = "not_found"


@dataclass
class Conflict(DomainError):
    code: str = "conflict"


@dataclass
class ValidationFailed(DomainError):
    code: str = "validation_failed"
    errors: list[FieldError] = field(default_factory=list)

    @classmethod
    def of(cls, errors: list[FieldError]) -> "ValidationFailed":
        first = errors[0]
        return cls(message=str(first), field=first.field, errors=errors)


@dataclass
class RateLimited(DomainError):
    message: str = "Trop de requêtes : limite de la clé atteinte, réessayez plus tard."
    code: str = "rate_limited"
    retry_after: int = 60


@dataclass
class PayloadTooLarge(DomainError):
    code: str = "payload_too_large"


@dataclass
class RequestTimeout(DomainError):
    code: str = "request_timeout"


@dataclass
class InternalError(DomainError):
    """What a surface says instead of an unexpected exception (see pim/incidents.py)."""

    message: str = "Erreur interne du serveur."
    code: str = "internal_error"


def product_not_found(ean: str) -> NotFound:
    return NotFound(message=f"Produit avec EAN '{ean}' introuvable.", field="ean")
