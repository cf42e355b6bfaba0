"""What the stock benchmarks (P3, P6) share: the record of what the Shopify
simulator applied."""

import collections
import threading
import time


class Propagation:
    """What the simulator applied, per (inventory item, location): the
    moments and quantities of the ``inventorySetQuantities`` calls (a
    listener of the store's inventory)."""

    def __init__(self):
        self.applied = collections.defaultdict(list)
        self.lock = threading.Lock()

    def __call__(self, row):
        moment = time.monotonic()
        with self.lock:
            self.applied[row["inventory_item_id"], row["location_id"]].append(
                (moment, row["available"])
            )

    def first_at_least(self, key, quantity):
        """When the store first showed ``quantity`` or more for ``key`` (None: not yet)."""
        with self.lock:
            return next((t for t, available in self.applied[key] if available >= quantity), None)

    def first_at_most(self, key, quantity, since):
        """When Shopify first showed ``quantity`` or less for ``key`` after
        ``since`` (None: not yet)."""
        with self.lock:
            return next(
                (t for t, available in self.applied[key] if t >= since and available <= quantity),
                None,
            )
