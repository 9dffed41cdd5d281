"""The canonical GraphQL schema: Strawberry types over resolvers/."""

from pathlib import Path

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from pim.settings import Settings
from schema.activation import ActivationMutation
from schema.audit import AuditQuery
from schema.automations import AutomationMutation, AutomationQuery
from schema.catalog import CatalogMutation, CatalogQuery
from schema.connectors import ConnectorMutation, ConnectorQuery, ConnectorSubscription
from schema.cost import cost_limit
from schema.execution import PlainLeafExecutor
from schema.imports import ImportMutation, ImportQuery, ImportSubscription
from schema.keys import KeyMutation, KeyQuery
from schema.masking import MaskingSchema
from schema.prices import PriceMutation
from schema.products import ProductMutation, ProductQuery
from schema.stock import StockMutation
from schema.telemetry import OperationTelemetry
from schema.viewer import ViewerQuery
from schema.webhooks import WebhookMutation, WebhookQuery

Query = merge_types(
    "Query",
    (
        ViewerQuery, ProductQuery, CatalogQuery, ImportQuery, AutomationQuery, ConnectorQuery,
        WebhookQuery, KeyQuery, AuditQuery,
    ),
)  # fmt: skip
Mutation = merge_types(
    "Mutation",
    (
        ProductMutation, CatalogMutation, StockMutation, PriceMutation, ActivationMutation,
        ImportMutation, AutomationMutation, ConnectorMutation, WebhookMutation, KeyMutation,
    ),
)  # fmt: skip
Subscription = merge_types("Subscription", (ImportSubscription, ConnectorSubscription))

SDL_PATH = Path(__file__).resolve().parent.parent / "schema.graphql"


def build_schema(settings: Settings) -> strawberry.Schema:
    # The limits' validation rules (stateless classes) are made once: rule classes made
    # per request are part of the ValidationCache's key, so every request would miss
    # it, validate the document again and push a dead entry into the cache.
    limits = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    extensions: list = [
        # Factories, not instances: an instance would share state across requests.
        lambda: AddValidationRules(limits),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        cost_limit(settings),
        OperationTelemetry,
    ]
    if not settings.graphql_introspection:
        extensions.append(DisableIntrospection)
    return MaskingSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=PlainLeafExecutor,
        # Suggestions ("Did you mean 'price'?") would tell the schema's names to whoever
        # may not read them through introspection.
        config=StrawberryConfig(disable_field_suggestions=not settings.graphql_introspection),
    )


def export_sdl(settings: Settings) -> str:
    return build_schema(settings).as_str() + "\n"
