"""The GraphQL documents on webhook endpoints that more than one test module sends."""

ENDPOINT_FIELDS = "id url description events isActive status disabledReason consecutiveFailures previousSecretExpiresAt createdAt"
CREATE = (
    """mutation($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
  secret endpoint { %s } errors { field message code } } }"""
    % ENDPOINT_FIELDS
)
