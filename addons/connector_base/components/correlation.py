"""What a business key names on one backend: a connector's answer to a
correlation search (see ``connector.backend._correlate``)."""

from dataclasses import dataclass, field


@dataclass
class CorrelationScope:
    """What a business key (an order number, a SKU) names on one backend.

    The framework reads the key as the messages store it (a sequence key, a
    coalescing key); a connector adds what its business keys name: the
    sequence keys of the inbound events about it, the coalescing keys of the
    outbound changes about it, and the Odoo records it became. The
    correlation view then lists all of them, with their jobs, in time order.

    :param meanings: how the key was understood, in the user's words
        ("Shopify order #1001, sale order S00012"), one line each.
    :param sequence_keys: the events of these sequence keys are about it.
    :param coalescing_keys: the outbound changes of these keys are about it.
    :param records: Odoo recordsets about it (a sale order, its deliveries).
    """

    meanings: list = field(default_factory=list)
    sequence_keys: set = field(default_factory=set)
    coalescing_keys: set = field(default_factory=set)
    records: list = field(default_factory=list)

    def add(self, meaning=None, sequence_keys=(), coalescing_keys=(), records=()):
        """Add what one reading of the key names (``records``: recordsets, of
        any models); returns the scope."""
        if meaning and meaning not in self.meanings:
            self.meanings.append(meaning)
        self.sequence_keys.update(key for key in sequence_keys if key)
        self.coalescing_keys.update(key for key in coalescing_keys if key)
        self.records.extend(recordset for recordset in records if recordset)
        return self
