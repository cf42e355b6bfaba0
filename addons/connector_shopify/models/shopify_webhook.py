from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.topics import InboundTopic

from ..components.client import user_errors_message

WEBHOOK_ROUTE = "/connector/shopify/webhook"

SUBSCRIPTIONS = """
query Subscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    edges { node { id topic uri } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
SUBSCRIBE = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $input: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $input) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""
UNSUBSCRIBE = """
mutation Unsubscribe($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}
"""


def topic_enum(topic):
    """``orders/create`` as Shopify's ``WebhookSubscriptionTopic`` value ``ORDERS_CREATE``."""
    return topic.replace("/", "_").upper()


class ShopifyWebhookSubscriptions(models.AbstractModel):
    """The store's webhook subscriptions to this Odoo, compared with what the
    connector processes: one subscription per inbound topic at the backend's
    webhook address.

    Subscriptions to other addresses belong to other apps or environments and
    are left alone; subscriptions to our address for topics we no longer
    process are removed, or Shopify would keep sending what we refuse.
    """

    _name = "shopify.webhook.subscriptions"
    _description = "Shopify Webhook Subscriptions"

    @api.model
    def _wanted_topics(self, backend):
        # Paused flows stay subscribed: their webhooks are stored and wait.
        return sorted(
            name
            for name, topic in backend._connector_topics().items()
            if isinstance(topic, InboundTopic)
        )

    @api.model
    def _compare(self, backend):
        """(address, {topic: subscription id} of ours, missing topics, ours not wanted)."""
        address = backend._shopify_webhook_address()
        client = backend._shopify_client()
        ours = {}
        for node in client.paginate(SUBSCRIPTIONS, {}, ["webhookSubscriptions"]):
            if node["uri"] == address:
                ours.setdefault(node["topic"], []).append(node["id"])
        wanted = {topic_enum(topic): topic for topic in self._wanted_topics(backend)}
        missing = [topic for enum, topic in wanted.items() if enum not in ours]
        unwanted = [sid for enum, ids in ours.items() if enum not in wanted for sid in ids]
        # Two subscriptions of one topic to one address: each delivery twice.
        unwanted += [sid for enum, ids in ours.items() if enum in wanted for sid in ids[1:]]
        return address, client, missing, unwanted

    @api.model
    def _subscribe(self, backend):
        address, client, missing, unwanted = self._compare(backend)
        for topic in missing:
            answer = client.execute(
                SUBSCRIBE,
                {"topic": topic_enum(topic), "input": {"uri": address, "format": "JSON"}},
            )["webhookSubscriptionCreate"]
            if answer["userErrors"]:
                raise UserError(
                    self.env._(
                        "Shopify refused the %(topic)s webhook: %(why)s",
                        topic=topic,
                        why=user_errors_message(answer["userErrors"]),
                    )
                )
        for subscription_id in unwanted:
            answer = client.execute(UNSUBSCRIBE, {"id": subscription_id})
            if answer["webhookSubscriptionDelete"]["userErrors"]:
                raise UserError(
                    self.env._(
                        "Shopify refused to remove webhook %(id)s: %(why)s",
                        id=subscription_id,
                        why=user_errors_message(answer["webhookSubscriptionDelete"]["userErrors"]),
                    )
                )
        note = self.env._(
            "%(count)d topics sent to %(address)s (%(added)d added, %(removed)d removed).",
            count=len(self._wanted_topics(backend)),
            address=address,
            added=len(missing),
            removed=len(unwanted),
        )
        self._write_state(backend, "ok", note)
        return note

    @api.model
    def _check(self, backend):
        address, _client, missing, unwanted = self._compare(backend)
        if not missing and not unwanted:
            state = "ok"
            note = self.env._(
                "All %(count)d topics are sent to %(address)s.",
                count=len(self._wanted_topics(backend)),
                address=address,
            )
        else:
            state = "mismatch"
            parts = []
            if missing:
                parts.append(self.env._("not subscribed: %s", ", ".join(missing)))
            if unwanted:
                parts.append(
                    self.env._("%d subscriptions to remove (unused or repeated)", len(unwanted))
                )
            note = self.env._(
                "Webhooks to %(address)s: %(what)s. Press Register webhooks.",
                address=address,
                what="; ".join(parts),
            )
        self._write_state(backend, state, note)
        return note

    @api.model
    def _write_state(self, backend, state, note):
        backend.write(
            {
                "shopify_webhook_state": state,
                "shopify_webhook_note": note,
                "shopify_webhook_checked_at": fields.Datetime.now(),
            }
        )
