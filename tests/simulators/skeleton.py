"""Common ground of the simulators whose API arrives with their connector (POS, 3PL, finance).

Each serves ``GET /api/health`` (an API endpoint: faults apply to it, unlike
``/_sim/health``) and seeds the reference data its remote system would hold,
drawn from the same generator as the Shopify shop so the SKUs agree.
"""

from werkzeug.routing import Rule

from .base import Simulator, iso, json_response, utcnow
from .retail_data import RetailDataGenerator


class SkeletonSimulator(Simulator):
    """A simulator with its base, a health endpoint and seeded reference data."""

    products = 24
    locations = 3

    def __init__(self, *, seed=0, epoch=None, **options):
        self.epoch = (epoch or utcnow()).replace(microsecond=0)
        self.reference = {}
        super().__init__(seed=seed, **options)

    def api_rules(self):
        return [Rule("/api/health", endpoint="health", methods=["GET"])]

    def health(self, request):
        return json_response({"status": "ok", "system": self.name, "time": iso(utcnow())})

    def seed_state(self, rng):
        generator = RetailDataGenerator(rng, self.epoch)
        self.reference = {
            "locations": generator.locations(self.locations),
            "skus": sorted(
                variant["sku"]
                for product in generator.products(self.products)
                for variant in product["variants"]
            ),
        }

    def snapshot(self, parts=None):
        state = {"system": self.name, **self.reference}
        return {k: v for k, v in state.items() if parts is None or k in parts}
