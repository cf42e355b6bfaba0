from odoo import models

from ..components.correlation import CorrelationScope


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    def _correlate(self, key):
        """What the business key ``key`` names on this backend: a
        :class:`~..components.correlation.CorrelationScope`.

        The framework's reading is the key as messages store it: the sequence
        key of inbound events (``order:4501``), the coalescing key of outbound
        changes. A connector extends it with its business keys (an order
        number, a SKU): ``scope = super()._correlate(key)``, then
        ``scope.add(...)`` what the key names on its remote, looked up on
        indexed columns only. Called with the user's rights on a backend the
        user can read.
        """
        self.ensure_one()
        return CorrelationScope(sequence_keys={key}, coalescing_keys={key})
